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
from interpolants.coupling import _sparse_sinkhorn as sparse_mod


def _problem(n: int, dtype: torch.dtype, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, 2, generator=gen, dtype=dtype)
    x1 = torch.randn(n, 2, generator=gen, dtype=dtype)
    return SquaredEuclideanCost()(x0, x1), torch.full((n,), 1.0 / n, dtype=dtype)


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
