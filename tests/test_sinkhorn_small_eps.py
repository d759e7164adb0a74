"""Sinkhorn at small ε: ε-scaling on truncated sparse kernels (issue 17).

The truncated path (``sinkhorn(..., truncate=True)``, the default below 0.02 × the cost's
spread) must return the plan of the dense iterations: same potentials up to the tolerance,
marginals checked on the *dense* plan, honest ``error``/``converged`` fields.
"""

import numpy as np
import ot
import pytest
import torch

from interpolants.coupling import SquaredEuclideanCost, sinkhorn
from interpolants.coupling import _sinkhorn_loop as loop_mod
from interpolants.coupling import _sparse_kernels as kernels_mod
from interpolants.coupling import _sparse_loop as loop_sparse
from interpolants.coupling import _sparse_sinkhorn as sparse_mod


@pytest.fixture(autouse=True, params=["compiled", "torch"])
def formulation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with the CPU kernels and with the torch formulation (what the other
    devices and small problems run)."""
    monkeypatch.setattr(kernels_mod, "ENABLED", request.param == "compiled")
    monkeypatch.setattr(kernels_mod, "MIN_ENTRIES", 0)  # the compiled kernels at any size
    if request.param == "compiled":
        assert kernels_mod.native(torch.zeros(1))
    return str(request.param)


def _problem(n: int, dtype: torch.dtype, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, 2, generator=gen, dtype=dtype)
    x1 = torch.randn(n, 2, generator=gen, dtype=dtype)
    return SquaredEuclideanCost()(x0, x1), torch.full((n,), 1.0 / n, dtype=dtype)


def _clustered(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Both sides drawn from the same 20 tight clusters, with unequal counts: mass must
    cross between clusters (the slow mode of Sinkhorn)."""
    gen = torch.Generator().manual_seed(seed)
    centres = 5 * torch.randn(20, 2, generator=gen, dtype=torch.float64)

    def draw() -> torch.Tensor:
        pick = torch.randint(0, 20, (n,), generator=gen)
        return centres[pick] + 0.1 * torch.randn(n, 2, generator=gen, dtype=torch.float64)

    x0, x1 = draw(), draw()
    return SquaredEuclideanCost()(x0, x1), torch.full((n,), 1.0 / n, dtype=torch.float64)


@pytest.fixture
def sparse_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the sparse stages run, so that a test knows the truncated path was taken."""
    runs: list[int] = []
    original = sparse_mod._SparseLoop.run

    def run(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        runs.append(int(self.rows.numel()))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(sparse_mod._SparseLoop, "run", run)
    return runs


def _dense_errors(res, cost, a):  # type: ignore[no-untyped-def]
    plan = res.log_plan(cost).exp()
    row = float(torch.linalg.vector_norm(plan.sum(1) - a.to(plan.dtype)))
    col = float(torch.linalg.vector_norm(plan.sum(0) - a.to(plan.dtype)))
    return plan, row, col


def test_truncated_plan_matches_dense_iterations_and_pot(
    monkeypatch: pytest.MonkeyPatch, sparse_runs: list[int]
) -> None:
    # a small problem that converges quickly; truncation forced from a denser kernel on
    monkeypatch.setattr(sparse_mod, "DENSE_FRACTION", 0.6)
    monkeypatch.setattr(sparse_mod, "FINAL_FRACTION", 0.9)
    n, tol = 150, 1e-8
    cost, a = _problem(n, torch.float64)
    eps = 1e-2 * float(cost.mean())
    res = sinkhorn(cost, a, a, eps, tol=tol, max_iter=50_000)
    assert sparse_runs and max(sparse_runs) < 0.6 * n * n  # the kernel was truncated
    ref = sinkhorn(cost, a, a, eps, tol=tol, max_iter=50_000, truncate=False)
    assert res.converged and ref.converged
    plan, row, col = _dense_errors(res, cost, a)
    # the reported error is the dense plan's row error (not the truncated kernel's)
    assert row == pytest.approx(res.error, rel=1e-6, abs=1e-15)
    assert row < tol and col < 1e-12  # columns exact up to the truncated mass (< e^-30)
    # Both plans are within tol of the same marginals, so they differ by about tol (the
    # unique entropic plan is Lipschitz in the marginals; measured 9e-9 here) on entries of
    # ~1/n = 7e-3: 1e-7 leaves a 10x margin. POT stops at 1e-6, so 1e-5 against it.
    torch.testing.assert_close(plan, ref.log_plan(cost).exp(), atol=1e-7, rtol=0)
    pot = ot.sinkhorn(
        a.numpy(),
        a.numpy(),
        cost.numpy(),
        eps,
        method="sinkhorn_log",
        stopThr=1e-6,
        numItermax=100_000,
    )
    np.testing.assert_allclose(plan.numpy(), pot, atol=1e-5, rtol=0)


def test_reg_1e3_takes_the_truncated_path_and_checks_it_densely(sparse_runs: list[int]) -> None:
    n, tol = 800, 1e-7
    cost, a = _problem(n, torch.float64)
    res = sinkhorn(cost, a, a, 2e-3 * float(cost.mean()), tol=tol, max_iter=20_000)
    assert sparse_runs and max(sparse_runs) < n * n / 4
    _, row, col = _dense_errors(res, cost, a)
    assert res.converged and row < tol and col < 1e-12
    assert row == pytest.approx(res.error, rel=1e-6, abs=1e-15)


def test_float32_small_eps_keeps_its_contract(sparse_runs: list[int]) -> None:
    n = 400
    cost, a = _problem(n, torch.float32, seed=1)
    for reg in (5e-3, 1e-3):  # float32 iterations, then float64 ones (see sinkhorn)
        res = sinkhorn(cost, a, a, reg * float(cost.mean()), tol=1e-6, max_iter=50_000)
        assert torch.isfinite(res.f).all() and torch.isfinite(res.g).all()
        assert res.converged
        _, row, col = _dense_errors(res, cost, a)
        # recomputed from the float32 or float64 plan: 400 sums of ~1/400 each, rounded
        assert row == pytest.approx(res.error, abs=2e-8) and row < 1e-6 + 2e-8
        assert col < 1e-6
        if res.f.dtype == torch.float64:  # the sparse path (float32 entries at reg 1e-3):
            # its last column update is in float64, so the float64 plan's columns are exact
            _, _, col64 = _dense_errors(res, cost.double(), a.double())
            assert col64 < 1e-13
    assert sparse_runs


def test_too_aggressive_truncation_is_caught_by_the_dense_check(
    monkeypatch: pytest.MonkeyPatch, sparse_runs: list[int]
) -> None:
    """With θ = 1 the truncated kernel drops real mass; the final dense check must see it
    and the result must still be the dense plan within tol (rebuilt support or dense
    iterations), never a truncated one reported as converged."""
    monkeypatch.setattr(sparse_mod, "_theta", lambda n0, n1, base: 1.0)
    n, tol = 250, 1e-8
    cost, a = _problem(n, torch.float64, seed=2)
    eps = 2e-3 * float(cost.mean())
    res = sinkhorn(cost, a, a, eps, tol=tol, max_iter=100_000)
    _, row, _ = _dense_errors(res, cost, a)
    assert row == pytest.approx(res.error, rel=1e-6, abs=1e-15)
    assert res.converged and row < tol


def test_duplicates_and_outliers_never_give_nan() -> None:
    gen = torch.Generator().manual_seed(3)
    x0 = torch.randn(200, 2, generator=gen).double()
    x0[:50] = x0[0]  # a quarter of the points on one spot
    x1 = torch.randn(200, 2, generator=gen).double()
    x1[-1] = 30.0  # a far outlier
    cost = SquaredEuclideanCost()(x0, x1)
    a = torch.full((200,), 1 / 200, dtype=torch.float64)
    for reg in (1e-3, 1e-4):
        res = sinkhorn(cost, a, a, reg * float(cost.mean()), tol=1e-6, max_iter=3_000)
        assert torch.isfinite(res.f).all() and torch.isfinite(res.g).all()
        _, row, _ = _dense_errors(res, cost, a)
        assert row == pytest.approx(res.error, rel=1e-6, abs=1e-15)
        assert res.converged == (row < 1e-6)


def test_large_eps_does_not_take_the_truncated_path(sparse_runs: list[int]) -> None:
    cost, a = _problem(200, torch.float32)
    res = sinkhorn(cost, a, a, 0.05 * float(cost.mean()))
    assert res.converged and not sparse_runs


def test_extrapolated_stages_give_the_dense_plan(
    monkeypatch: pytest.MonkeyPatch, sparse_runs: list[int]
) -> None:
    """Several sparse stages (so the later ones start from potentials extrapolated in ε, on
    supports built for the next ε): same plan as the dense iterations."""
    monkeypatch.setattr(sparse_mod, "DENSE_FRACTION", 0.5)
    extrapolated: list[int] = []
    original = sparse_mod._extrapolate

    def extrapolate(done, f, g, to):  # type: ignore[no-untyped-def]
        extrapolated.append(len(done))
        return original(done, f, g, to)

    monkeypatch.setattr(sparse_mod, "_extrapolate", extrapolate)
    n, tol = 300, 1e-7  # (1e-8 is not reached in 50 000 iterations here, before or after)
    cost, a = _problem(n, torch.float64, seed=4)
    eps = 2e-3 * float(cost.mean())
    res = sinkhorn(cost, a, a, eps, tol=tol, max_iter=50_000)
    assert len(sparse_runs) >= 3 and max(extrapolated) >= 2
    ref = sinkhorn(cost, a, a, eps, tol=tol, max_iter=50_000, truncate=False)
    assert res.converged and ref.converged
    plan, row, col = _dense_errors(res, cost, a)
    assert row == pytest.approx(res.error, rel=1e-6, abs=1e-15)
    assert row < tol and col < 1e-12
    torch.testing.assert_close(plan, ref.log_plan(cost).exp(), atol=1e-6, rtol=0)


def _balanced(n0: int, n1: int, dtype: torch.dtype, eps: float, seed: int = 5):  # type: ignore[no-untyped-def]
    """A rectangular cost and potentials (f, g) balanced at ε by a few log-domain steps."""
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n0, 2, generator=gen, dtype=torch.float64)
    x1 = 1.5 * torch.randn(n1, 2, generator=gen, dtype=torch.float64)
    cost = SquaredEuclideanCost()(x0, x1)
    a = torch.full((n0,), 1.0 / n0, dtype=torch.float64)
    b = torch.full((n1,), 1.0 / n1, dtype=torch.float64)
    loop = loop_mod._Loop(cost, a, b, cost.min(), float(cost.max() - cost.min()), 10, False)
    f, g = torch.zeros(n0, dtype=torch.float64), torch.zeros(n1, dtype=torch.float64)
    for _ in range(30):
        f, g = loop.log_step(f, g, eps)
    return cost.to(dtype), a, b, f, g


@pytest.mark.parametrize("formulation", ["compiled"], indirect=True)  # switches it itself
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_support_kernels_equal_the_torch_formulation(
    monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype
) -> None:
    """Each CPU kernel against the torch formulation on the same support: the same entries
    (masks in the cost's dtype on both sides), potentials and kernel values to float64
    rounding."""
    eps = 0.05
    cost, a, b, f, g = _balanced(130, 97, dtype, eps)

    def both(fn, *args):  # type: ignore[no-untyped-def]
        monkeypatch.setattr(kernels_mod, "ENABLED", True)
        compiled = fn(*args)
        monkeypatch.setattr(kernels_mod, "ENABLED", False)
        return compiled, fn(*args)

    for args in [(eps, -8.0, True, False), (eps, float(np.log(1 / 130)) - 6.0, True, False),
                 (2 * eps, -5.0, False, True)]:  # fmt: skip
        got, want = both(loop_sparse._dense_support, cost, f, g, *args)
        assert got is not None and want is not None
        for x, y in zip(got[:3], want[:3], strict=True):
            assert torch.equal(x.to(y.dtype), y)  # (the compiled indices are int32)
        torch.testing.assert_close(got[3], want[3], rtol=1e-13, atol=0)
    # a row that would be empty
    assert both(loop_sparse._dense_support, cost, f, g - 1e3, eps, -1.0) == (None, None)

    support = loop_sparse._dense_support(cost, f, g, eps, -12.0, True)
    assert support is not None

    def loop() -> sparse_mod._SparseLoop:
        built = sparse_mod._SparseLoop(cost, a, b, 30.0, 10, False)
        built.reset(support)  # (the same support, whatever the labels)
        return built

    native, plain = both(loop)
    assert native.native and not plain.native
    for name in ("crow", "col_idx", "ccol", "row_idx", "order"):
        x, y = getattr(native, name), getattr(plain, name)
        assert torch.equal(x.to(y.dtype), y), name
    f1, g1 = native.log_step(f, g, 0.8 * eps)
    f2, g2 = plain.log_step(f, g, 0.8 * eps)
    torch.testing.assert_close(f1, f2, rtol=0, atol=1e-13)
    torch.testing.assert_close(g1, g2, rtol=0, atol=1e-13)
    k1, s1 = native._rebuilt(f1, g1, 0.8 * eps)
    k2, s2 = plain._rebuilt(f1, g1, 0.8 * eps)
    torch.testing.assert_close(s1, s2, rtol=1e-13, atol=0)
    for m1, m2 in ((k1.fwd, k2.fwd), (k1.T, k2.T)):
        torch.testing.assert_close(m1.to_dense(), m2.to_dense(), rtol=1e-13, atol=0)
    native.restrict(f1, g1, 0.8 * eps, -10.0)  # (z ≤ log a = -4.9 on the support)
    plain.restrict(f1, g1, 0.8 * eps, -10.0)
    assert native.rows.numel() < support[0].numel()  # it dropped entries
    for name in ("rows", "cols", "c", "crow", "col_idx", "ccol", "row_idx", "order"):
        x, y = getattr(native, name), getattr(plain, name)
        assert torch.equal(x.to(y.dtype), y), name


@pytest.mark.parametrize("formulation", ["torch"], indirect=True)  # dense only: either
def test_halved_kernel_is_the_kernel_at_half_eps() -> None:
    """A dense stage started from the previous stage's returned potentials squares that
    stage's scaled kernel: the same as evaluating exp((f + g − C)/ε) (float64 rounding)."""
    cost, a, b, _, _ = _balanced(90, 110, torch.float64, 0.1)
    loop = loop_mod._Loop(cost, a, b, cost.min(), float(cost.max() - cost.min()), 10, True)
    loop.keep_kernel = True
    zeros0, zeros1 = torch.zeros_like(a), torch.zeros_like(b)
    f, g, _, _ = loop.run(zeros0, zeros1, 0.2, 1e-9, 30, cold=True)
    assert loop.last is not None
    expected = loop.kernel(f, g, 0.1)
    halved = loop._halved(f, g, 0.1)
    assert halved is not None and loop.last is None
    torch.testing.assert_close(halved, expected, rtol=1e-11, atol=1e-300)
    assert loop._halved(f, g, 0.1) is None  # used once
    loop.run(f, g, 0.1, 1e-9, 5, cold=False, rebalance=False)
    assert loop.last is not None and loop._halved(f.clone(), g, 0.05) is None  # other (f, g)


def test_float32_entries_and_their_float64_fallback(
    monkeypatch: pytest.MonkeyPatch, sparse_runs: list[int]
) -> None:
    """Float32 costs at tol 1e-6 iterate on float32 kernel entries; once a dense check finds
    the tolerance missed (forced here: a check after 5 iterations), the entries go to float64
    and the result is still within tol on the dense plan."""
    monkeypatch.setattr(sparse_mod, "FINAL_CHUNK", 5)
    seen: list[torch.dtype] = []
    original = sparse_mod._SparseLoop.set_values

    def set_values(self, dtype):  # type: ignore[no-untyped-def]
        seen.append(dtype)
        original(self, dtype)

    monkeypatch.setattr(sparse_mod._SparseLoop, "set_values", set_values)
    cost, a = _problem(800, torch.float32, seed=0)
    tol = 1e-6
    res = sinkhorn(cost, a, a, 2e-3 * float(cost.mean()), tol=tol, max_iter=20_000)
    # float32 for the stages, back to float64 after the first check
    assert sparse_runs and seen[:2] == [torch.float32, torch.float64]
    _, row, col = _dense_errors(res, cost.double(), a.double())
    assert res.converged and res.error < tol and row < tol + 1e-12 and col < 1e-9
    assert row == pytest.approx(res.error, rel=1e-6, abs=1e-13)
    # float64 costs keep float64 entries; float32 ones below VALUES32_TOL too, and where a
    # heavy point's row sum would be rounded by more than tol/10
    even = torch.full((4096,), 1 / 4096, dtype=torch.float64)
    heavy = torch.cat([torch.tensor([0.5]), torch.full((4095,), 0.5 / 4095)]).double()
    assert sparse_mod._entry_dtype(torch.float64, 1e-3, even, even) == torch.float64
    assert sparse_mod._entry_dtype(torch.float32, 1e-6, even, even) == torch.float32
    assert sparse_mod._entry_dtype(torch.float32, 1e-8, even, even) == torch.float64
    assert sparse_mod._entry_dtype(torch.float32, 1e-6, even, heavy) == torch.float64


def test_only_the_last_stage_sparse(
    monkeypatch: pytest.MonkeyPatch, sparse_runs: list[int]
) -> None:
    """With no intermediate switch the last stage alone goes sparse (``FINAL_FRACTION``: a
    denser kernel is still worth truncating for the last stage's many iterations), at θ
    from the tolerance (21.8 < 30 here), starting from potentials extrapolated from the two
    dense stages before it (both within ``CLOSE`` × their tolerance); its plan is the dense
    iterations'."""
    monkeypatch.setattr(sparse_mod, "DENSE_FRACTION", 0.0)
    stages: list[tuple[float, float | None]] = []
    original = sparse_mod._SparseLoop.run

    def run(self, f, g, eps, *args, theta=None, **kwargs):  # type: ignore[no-untyped-def]
        stages.append((eps, theta))
        return original(self, f, g, eps, *args, theta=theta, **kwargs)

    starts: list[tuple[float, list[float]]] = []
    extrapolate = sparse_mod._extrapolate

    def spy(done, f, g, to):  # type: ignore[no-untyped-def]
        starts.append((to, [e for _, _, e in done]))
        return extrapolate(done, f, g, to)

    monkeypatch.setattr(sparse_mod._SparseLoop, "run", run)
    monkeypatch.setattr(sparse_mod, "_extrapolate", spy)
    n, tol = 800, 1e-7
    cost, a = _problem(n, torch.float64)
    eps = 2e-3 * float(cost.mean())
    res = sinkhorn(cost, a, a, eps, tol=tol, max_iter=20_000)
    assert stages and {e for e, _ in stages} == {eps}  # sparse at the last ε only
    theta = float(np.log(10 * np.sqrt(n) * n / tol) - np.log(n))  # from the tolerance
    assert theta < 30 and all(t == pytest.approx(theta) for _, t in stages)
    assert starts == [(eps, pytest.approx([4 * eps, 2 * eps]))]  # the two dense stages
    assert max(sparse_runs) < sparse_mod.FINAL_FRACTION * n * n
    ref = sinkhorn(cost, a, a, eps, tol=tol, max_iter=20_000, truncate=False)
    plan, row, col = _dense_errors(res, cost, a)
    assert res.converged and ref.converged and row < tol and col < 1e-12
    # both within 1e-7 of the marginals: the plans differ by ~tol on entries ~1/n
    torch.testing.assert_close(plan, ref.log_plan(cost).exp(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("formulation", ["compiled"], indirect=True)
def test_compiled_kernels_serve_large_cpu_problems_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernels_mod, "MIN_ENTRIES", 1 << 22)
    assert kernels_mod.native(torch.zeros(2048, 2048))
    assert not kernels_mod.native(torch.zeros(2047, 2048))  # small: torch's passes
    assert not kernels_mod.native(torch.zeros(4096, 4096, device="meta"))  # not the CPU
    monkeypatch.setattr(kernels_mod, "ENABLED", False)
    assert not kernels_mod.native(torch.zeros(2048, 2048))


@pytest.mark.parametrize("formulation", ["torch"], indirect=True)  # the controller only
def test_overrelaxation_waits_out_the_transient_of_a_large_raise() -> None:
    """After ω is raised by more than ``BIG_RAISE`` the error may grow for a few iterations
    before it falls faster: not divergence, so ω is kept; steady growth still halves it,
    and after a small raise any growth over 20 iterations does."""
    cost, a = _problem(20, torch.float64)
    loop = loop_mod._Loop(cost, a, a, cost.min(), float(cost.max()), 1, True)

    def drive(errors: dict[int, float], raised: float | None = None) -> list[float]:
        loop.ceiling, loop.raised = 2.0, 0.0
        history: list[tuple[int, float]] = []
        omega, seen = 1.0, []
        for k in sorted(errors):
            omega = loop._relaxation(omega, k, errors[k], history)
            if k == 10 and raised is not None:
                loop.raised = raised  # pretend the raise was this large
            seen.append(omega)
        return seen

    plain = {k: 0.9**k for k in range(11)}  # the plain phase: rate 0.9, ω* ≈ 1.5
    # then ×3 over 5 iterations, and a fall at 0.97 an iteration
    transient = {k: 0.9**10 * (1 + 0.4 * (k - 10)) for k in range(11, 16)}
    transient |= {k: 3 * 0.9**10 * 0.97 ** (k - 15) for k in range(16, 80)}
    seen = drive(plain | transient)
    assert seen[10] > 1.3 and loop.raised > loop.BIG_RAISE  # relaxed at iteration 10
    assert min(seen[10:]) >= seen[10]  # never damped: the growth was the transient
    growth = {k: 0.9**10 * 1.02 ** (k - 10) for k in range(11, 80)}  # steady growth
    assert min(drive(plain | growth)[10:]) < seen[10]  # damped
    # a raise below BIG_RAISE: the transient's growth over 20 iterations damps ω
    assert min(drive(plain | transient, raised=0.05)[10:]) < seen[10]


def test_clustered_masses_are_settled_by_the_coarse_stages(sparse_runs: list[int]) -> None:
    """On clustered data the coarse stages must fix how much mass crosses between clusters
    (the truncated stages cannot move it): a dense stage still above 10 × its tolerance at
    ``STAGE_CAP_DENSE`` goes on. The plan is the dense iterations' (measured: 1 088
    iterations against 15 632 when those stages stop at the cap)."""
    cost, a = _clustered(400, seed=1)
    eps, tol = 1e-3 * float(cost.mean()), 1e-7
    res = sinkhorn(cost, a, a, eps, tol=tol, max_iter=20_000)
    assert sparse_runs and res.converged and res.n_iter < 5_000
    ref = sinkhorn(cost, a, a, eps, tol=tol, max_iter=20_000, truncate=False)
    plan, row, col = _dense_errors(res, cost, a)
    assert ref.converged and row < tol and col < 1e-12
    torch.testing.assert_close(plan, ref.log_plan(cost).exp(), atol=1e-6, rtol=0)


def test_potentials_that_leave_the_support_rebuild_it(
    monkeypatch: pytest.MonkeyPatch, sparse_runs: list[int]
) -> None:
    """With the coarse stages stopped at their cap, clustered masses are wrong when the
    support is cut, so the truncated problem has no balanced plan and the potentials drift
    without bound (measured: the dense plan's sums then overflow, and the iterations stop
    with non-finite potentials). The bound on the entries left out sees the drift and the
    support is rebuilt around the moved potentials (and a run that still drifts after
    ``REBUILDS`` returns to the dense check early): the result stays finite and close, with
    exact columns and an honest row error."""
    monkeypatch.setattr(sparse_mod, "STAGE_CAP_STALLED", sparse_mod.STAGE_CAP_DENSE)
    monkeypatch.setattr(sparse_mod, "_theta_tol", lambda *args: 30.0)  # the widest supports
    rebuilt: list[float] = []
    original = sparse_mod._SparseLoop.rebuild

    def rebuild(self, f, g, eps, thr, relative=False):  # type: ignore[no-untyped-def]
        rebuilt.append(thr)
        return original(self, f, g, eps, thr, relative)

    monkeypatch.setattr(sparse_mod._SparseLoop, "rebuild", rebuild)
    cost, a = _clustered(300, seed=1)
    res = sinkhorn(cost, a, a, 1e-3 * float(cost.mean()), tol=1e-6, max_iter=20_000)
    _, row, col = _dense_errors(res, cost, a)
    assert torch.isfinite(res.f).all() and torch.isfinite(res.g).all()
    assert row == pytest.approx(res.error, rel=1e-6) and row < 1e-4 and col < 1e-12
    assert sparse_runs and rebuilt


@pytest.mark.parametrize("formulation", ["torch"], indirect=True)  # dense only: either
def test_soft_cap_stops_only_a_stage_that_is_close() -> None:
    """``soft_cap=(k, e)``: the run stops at k iterations when the error (after a plain
    column update) is below e there, and otherwise goes on to ``tol``."""
    cost, a = _problem(120, torch.float64)
    eps = 2e-2 * float(cost.mean())
    loop = loop_mod._Loop(cost, a, a, cost.min(), float(cost.max() - cost.min()), 1, True)
    zeros = torch.zeros_like(a)
    _, _, free, _ = loop.run(zeros, zeros, eps, 1e-12, 5_000, cold=True)
    assert 40 < free < 5_000  # converges, in more than 40 iterations
    _, _, it, err = loop.run(zeros, zeros, eps, 1e-12, 5_000, cold=True, soft_cap=(20, 1.0))
    assert it == 20 and err > 1e-12
    _, _, it, err = loop.run(zeros, zeros, eps, 1e-12, 5_000, cold=True, soft_cap=(20, 1e-30))
    assert it == free and err < 1e-12


@pytest.mark.parametrize("formulation", ["torch"], indirect=True)  # a formula: either
def test_last_stage_theta_bounds_the_truncated_row_mass() -> None:
    """θ of the last stage from the tolerance: entries below e^(min log a − θ) left out in
    every row and column move the row error's norm by at most √n0 · n1 · e^(lmin − θ) =
    tol/10."""
    for n0, n1, tol in [(8192, 8192, 1e-6), (300, 500, 1e-8), (1000, 200, 1e-4)]:
        a, b = torch.full((n0,), 1.0 / n0), torch.full((n1,), 1.0 / n1)
        lmin = float(np.log(1.0 / max(n0, n1)))
        theta = sparse_mod._theta_tol(a, b, lmin, tol)
        assert np.sqrt(n0) * n1 * np.exp(lmin - theta) == pytest.approx(tol / 10, rel=1e-12)


@pytest.mark.parametrize("formulation", ["compiled", "torch"], indirect=True)
def test_local_labels_hold_the_same_support() -> None:
    """A support built in the local labels of ``_spatial_order`` is the cost-labelled one
    relabelled: same entries (i, j) = (p_k, q_l), same costs, same row sums; and the order
    is spatial (consecutive local rows are close points)."""
    eps = 0.05
    cost, _, _, f, g = _balanced(130, 97, torch.float64, eps)
    p, q = loop_sparse._spatial_order(cost)
    assert torch.equal(torch.sort(p).values, torch.arange(130))
    assert torch.equal(torch.sort(q).values, torch.arange(97))
    q_inv = torch.argsort(q)
    for relative, thr in ((False, float(np.log(1 / 130)) - 6.0), (True, -8.0)):
        plain = loop_sparse._dense_support(cost, f, g, eps, thr, True, relative)
        local = loop_sparse._dense_support(
            cost, f[p], g[q], eps, thr, True, relative, order=(p, q_inv)
        )
        assert plain is not None and local is not None
        key = lambda i, j: i.long() * 97 + j.long()  # noqa: E731
        want, got = key(plain.rows, plain.cols), key(p[local.rows.long()], q[local.cols.long()])
        assert torch.equal(torch.sort(want).values, torch.sort(got).values)
        torch.testing.assert_close(local.sums, plain.sums[p], rtol=1e-13, atol=0)
        # once set, a valid CSR matrix: each row's columns sorted and distinct
        even0, even1 = torch.full((130,), 1 / 130.0), torch.full((97,), 1 / 97.0)
        sparse = loop_sparse._SparseLoop(cost, even0.double(), even1.double(), 30.0, 10, False)
        sparse.reset(local)
        shape = (130, 97)
        torch.sparse_csr_tensor(sparse.crow, sparse.col_idx, sparse.c, shape, check_invariants=True)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2000, 2, generator=gen, dtype=torch.float64)
    rows, _ = loop_sparse._spatial_order(SquaredEuclideanCost()(x, x))
    step = (x[rows[1:]] - x[rows[:-1]]).norm(dim=1).mean()
    assert step < 0.1 * (x[1:] - x[:-1]).norm(dim=1).mean()  # random order: ~0.52
