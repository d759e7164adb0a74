"""Exact and entropic OT couplings: optimality against POT, equivariance, calibrated sampling."""

import itertools
import math
import warnings

import numpy as np
import ot
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from interpolants import OTCoupling
from interpolants.coupling import (
    AssignmentSolver,
    AuctionSolver,
    AutoAssignmentSolver,
    Cost,
    EuclideanCost,
    LapjvSolver,
    LapxSolver,
    NetworkSimplexSolver,
    SchrodingerBridgeCoupling,
    ScipySolver,
    SinkhornCoupling,
    SquaredEuclideanCost,
    certify_assignment,
    sinkhorn,
)
from interpolants.coupling import _assignment as assignment_module
from interpolants.coupling import _auction as auction_module
from interpolants.coupling import _auto as auto_module
from interpolants.coupling._plans import sample_columns


def _data(n, d, seed, dtype=torch.float64, n1=None):
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, d, generator=gen, dtype=dtype)
    x1 = torch.randn(n if n1 is None else n1, d, generator=gen, dtype=dtype) + 0.5
    return x0, x1


def _emd2(cost: torch.Tensor) -> float:
    n0, n1 = cost.shape
    return float(
        ot.emd2(np.full(n0, 1 / n0), np.full(n1, 1 / n1), cost.double().numpy(), numItermax=10**8)
    )


def _total(cost: torch.Tensor, p) -> float:
    return float(cost[p.index0, p.index1].sum()) / p.index0.numel()


# --- exact OT ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "d"), [(64, 2), (256, 2), (512, 2), (256, 16), (512, 128), (128, 3072)]
)
def test_ot_total_cost_equals_pot_emd2(n, d):
    # ot.emd2 is optimal to float64 round-off; 1e-6 relative is far above that round-off
    # (~n·1e-16) and far below the gap to the next-best permutation on random data.
    x0, x1 = _data(n, d, seed=n + d)
    cost = SquaredEuclideanCost()(x0, x1)
    p = OTCoupling()(x0, x1)
    assert _total(cost, p) == pytest.approx(_emd2(cost), rel=1e-6)


_HAVE_LAPX = assignment_module._lapx_lapjvr() is not None
_HAVE_NUMBA = auto_module._have_numba()
_SOLVERS = [
    pytest.param(
        AuctionSolver(),
        marks=pytest.mark.skipif(not _HAVE_NUMBA, reason="needs numba (pip install numba)"),
    ),
    NetworkSimplexSolver(),
    LapjvSolver(),
    ScipySolver(),
    pytest.param(
        LapxSolver(),
        marks=pytest.mark.skipif(not _HAVE_LAPX, reason="needs lapx (pip install lapx)"),
    ),
]


@pytest.mark.parametrize("solver", _SOLVERS)
@pytest.mark.parametrize("d", [2, 32])
def test_every_solver_is_optimal(solver, d):
    x0, x1 = _data(96, d, seed=d)
    cost = SquaredEuclideanCost()(x0, x1)
    p = OTCoupling(solver=solver)(x0, x1)
    assert _total(cost, p) == pytest.approx(_emd2(cost), rel=1e-6)


@pytest.mark.parametrize("solver", _SOLVERS)
@pytest.mark.parametrize("full", [True, False])
def test_every_solver_is_optimal_on_either_cost_form(solver, full):
    # the full ‖x0 − x1‖² and the reduced −2·x0·x1ᵀ (negative entries) share their optima
    x0, x1 = _data(80, 5, seed=11)
    cost = SquaredEuclideanCost()(x0, x1)
    form = (cost if full else -2.0 * x0 @ x1.T).numpy()
    before = form.copy()
    perm = torch.from_numpy(solver.solve(form, dim=5))
    assert np.array_equal(form, before)  # not modified without overwrite=True
    total = float(cost[torch.arange(80), perm].sum()) / 80
    assert total == pytest.approx(_emd2(cost), rel=1e-9)
    again = solver.solve(form.copy(), dim=5, overwrite=True)  # may reduce in place: same optimum
    assert float(cost[torch.arange(80), torch.from_numpy(again)].sum()) / 80 == pytest.approx(
        total, rel=1e-12
    )


def test_auto_solver_rule(monkeypatch):
    auto = AutoAssignmentSolver()
    monkeypatch.setattr(auto_module, "_lapx_lapjvr", lambda: None)
    monkeypatch.setattr(auto_module, "_have_numba", lambda: False)
    monkeypatch.setattr(auto_module, "_NUMBA_WARNED", True)
    assert isinstance(auto.select(2), NetworkSimplexSolver) and auto.prefers_full_cost(2)
    assert isinstance(auto.select(7), NetworkSimplexSolver)
    assert isinstance(auto.select(8), LapjvSolver) and not auto.prefers_full_cost(8)
    assert isinstance(auto.select(3072, 8192), LapjvSolver)


def test_auto_solver_prefers_the_auction_in_low_dimension_and_at_large_n(monkeypatch):
    monkeypatch.setattr(auto_module, "_lapx_lapjvr", lambda: lambda c, **kw: None)
    monkeypatch.setattr(auto_module, "_have_numba", lambda: True)
    auto = AutoAssignmentSolver()
    for dim in (1, 2, 7):  # low d: robust to structured data at every n
        assert isinstance(auto.select(dim), AuctionSolver)
        assert isinstance(auto.select(dim, 64), AuctionSolver)
    for dim in (8, 64, 3072):  # high d: LAPJV below min_auction_n, the auction from there
        assert isinstance(auto.select(dim), LapxSolver)
        assert isinstance(auto.select(dim, 2047), LapxSolver)
        assert isinstance(auto.select(dim, 2048), AuctionSolver)
    assert auto.prefers_full_cost(2) and not auto.prefers_full_cost(64)


def test_auto_solver_without_numba_warns_once_and_uses_the_network_simplex(monkeypatch):
    monkeypatch.setattr(auto_module, "_have_numba", lambda: False)
    monkeypatch.setattr(auto_module, "_NUMBA_WARNED", False)
    auto = AutoAssignmentSolver()
    with pytest.warns(RuntimeWarning, match="numba"):
        assert isinstance(auto.select(2), NetworkSimplexSolver)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(auto.select(2), NetworkSimplexSolver)


def test_auto_solver_falls_back_to_scipy_without_lap(monkeypatch):
    monkeypatch.setattr(auto_module, "_lapx_lapjvr", lambda: None)
    monkeypatch.setattr(auto_module, "_LAP_WARNED", False)
    real_find_spec = assignment_module.importlib.util.find_spec
    monkeypatch.setattr(
        assignment_module.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "lap" else real_find_spec(name, *a),
    )
    auto = AutoAssignmentSolver()
    with pytest.warns(RuntimeWarning, match="lap"):
        assert isinstance(auto.select(64), ScipySolver)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once only
        assert isinstance(auto.select(64), ScipySolver)
    x0, x1 = _data(64, 16, seed=3)
    cost = SquaredEuclideanCost()(x0, x1)
    assert _total(cost, OTCoupling(solver=auto)(x0, x1)) == pytest.approx(_emd2(cost), rel=1e-6)


def test_lapx_solver_without_lapx_raises(monkeypatch):
    monkeypatch.setattr(assignment_module, "_lapx_lapjvr", lambda: None)
    with pytest.raises(ImportError, match="lapx"):
        LapxSolver().solve(np.eye(3), dim=2)


def test_solver_output_is_checked_to_be_a_permutation():
    class Broken(AssignmentSolver):
        def assign(self, cost, dim, *, overwrite):
            return np.zeros(cost.shape[0], dtype=np.int64)

    with pytest.raises(RuntimeError, match="permutation"):
        OTCoupling(solver=Broken())(*_data(5, 2, seed=0))
    with pytest.raises(ValueError, match="square"):
        Broken().solve(np.zeros((2, 3)), dim=1)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_cost_matrix_is_rejected(bad):
    def cost(a, b):
        m = torch.cdist(a, b)
        m[1, 2] = bad
        return m

    with pytest.raises(ValueError, match="NaN or Inf"):
        OTCoupling(cost=cost)(*_data(4, 2, seed=0))


@pytest.mark.parametrize("d", [2, 64])
def test_overflowing_euclidean_costs_are_rejected(d):
    # finite inputs whose squared distances overflow float32: the entries are inf, not a pairing
    x0, x1 = _data(32, d, seed=1, dtype=torch.float32)
    with pytest.raises(ValueError, match="NaN or Inf"):
        OTCoupling()(x0 * 1e20, x1 * 1e20)
    with pytest.raises(ValueError, match="NaN or Inf"):
        OTCoupling(cost=EuclideanCost())(x0 * 1e20, x1 * 1e20)
    big = OTCoupling()(x0.double() * 1e20, x1.double() * 1e20)  # fine in float64
    small = OTCoupling()(x0.double(), x1.double())
    assert torch.equal(big.index0, small.index0)


def test_large_finite_float64_inputs_are_paired():
    # squared norms near 1e308 are finite in float64: no overflow in the bound, same pairing
    x0, x1 = _data(24, 3, seed=4)
    big = OTCoupling()(x0 * 1e150, x1 * 1e150)
    assert torch.equal(big.index0, OTCoupling()(x0, x1).index0)


def test_solve_never_modifies_its_input_unless_allowed():
    x0, x1 = _data(30, 16, seed=6)
    matrix = -2.0 * x0 @ x1.T

    class Tagged(np.ndarray):  # a subclass (like np.memmap): viewed as an ndarray, not copied
        pass

    plain = matrix.numpy().copy()
    for source in (plain, plain.copy().view(Tagged)):
        before = np.array(source, copy=True)
        LapxSolver().solve(source, dim=16)
        NetworkSimplexSolver().solve(source, dim=16)
        assert np.array_equal(np.asarray(source), before)


def test_a_cost_subclass_matrix_is_never_modified():
    x0, x1 = _data(40, 16, seed=3)
    stored = torch.cdist(x0, x1).double()

    class Stored(Cost):
        def matrix(self, a, b):
            return stored

    before = stored.clone()
    OTCoupling(cost=Stored())(x0, x1)
    assert torch.equal(stored, before)


def test_a_custom_cost_matrix_is_never_modified():
    # a float64 CPU matrix is handed to the solver without a copy: it must not be reduced in place
    x0, x1 = _data(40, 16, seed=2)
    fixed = torch.cdist(x0, x1).double()
    before = fixed.clone()
    OTCoupling(cost=lambda a, b: fixed)(x0, x1)
    assert torch.equal(fixed, before)


@given(n=st.integers(2, 40), d=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_ot_is_optimal_and_no_swap_improves(n, d, seed):
    x0, x1 = _data(n, d, seed)
    cost = SquaredEuclideanCost()(x0, x1)
    p = OTCoupling()(x0, x1)
    i, j = p.index0, p.index1
    assert _total(cost, p) == pytest.approx(_emd2(cost), rel=1e-6, abs=1e-12)
    # swapping the partners of any two pairs never lowers the cost (2-optimality)
    c = cost[i, j]
    swapped = cost[i[:, None], j[None, :]] + cost[i[None, :], j[:, None]]
    assert bool((swapped >= c[:, None] + c[None, :] - 1e-9).all())


@pytest.mark.parametrize("cost", [EuclideanCost(), lambda a, b: torch.cdist(a, b, p=1)])
def test_ot_other_costs(cost):
    x0, x1 = _data(50, 3, seed=5)
    c = OTCoupling(cost=cost)
    matrix = c.cost(x0, x1)
    assert _total(matrix, c(x0, x1)) == pytest.approx(_emd2(matrix), rel=1e-6)


@given(n=st.integers(2, 30), seed=st.integers(0, 2**16))
def test_ot_is_equivariant_to_permutations(n, seed):
    x0, x1 = _data(n, 3, seed)
    gen = torch.Generator().manual_seed(seed)
    s0, s1 = torch.randperm(n, generator=gen), torch.randperm(n, generator=gen)
    p = OTCoupling()(x0, x1)
    q = OTCoupling()(x0[s0], x1[s1])
    pairs_p = {(int(a), int(b)) for a, b in zip(p.index0, p.index1)}
    pairs_q = {(int(s0[a]), int(s1[b])) for a, b in zip(q.index0, q.index1)}
    assert pairs_p == pairs_q  # random data: the optimum is unique almost surely


def test_ot_preserves_image_shape_and_float32():
    x0, x1 = (t.reshape(16, 3, 4, 4).float() for t in _data(16, 48, seed=1))
    p = OTCoupling()(x0, x1)
    assert p.x0.shape == (16, 3, 4, 4) and p.x0.dtype == torch.float32
    flat = SquaredEuclideanCost()(x0.double().flatten(1), x1.double().flatten(1))
    assert _total(flat, p) == pytest.approx(_emd2(flat), rel=1e-6)


def test_ot_unequal_sizes_follow_the_exact_plan():
    x0, x1 = _data(7, 2, seed=2, n1=12)
    c = OTCoupling()
    p = c(x0, x1, generator=torch.Generator().manual_seed(0), return_plan=True)
    assert p.index1.tolist() == list(range(12))
    assert bool((p.plan[p.index0, p.index1] > 0).all())  # pairs lie in the plan's support
    cost = SquaredEuclideanCost()(x0, x1)
    assert float((p.plan * cost).sum()) == pytest.approx(_emd2(cost), rel=1e-9)


# --- Sinkhorn and the Schrödinger bridge ----------------------------------------------------------


def test_sinkhorn_marginals_and_potentials():
    x0, x1 = _data(40, 3, seed=0, dtype=torch.float64, n1=30)
    cost = SquaredEuclideanCost()(x0, x1)
    a, b = (
        torch.full((40,), 1 / 40, dtype=torch.float64),
        torch.full((30,), 1 / 30, dtype=torch.float64),
    )
    res = sinkhorn(cost, a, b, eps=0.5, tol=1e-9)
    plan = torch.exp(res.log_plan(cost))
    assert res.converged
    torch.testing.assert_close(plan.sum(0), b, atol=1e-12, rtol=0)  # columns exact
    assert float(torch.linalg.vector_norm(plan.sum(1) - a)) < 1e-9
    # agrees with POT's log-domain solver on the same problem
    ref = ot.sinkhorn(a.numpy(), b.numpy(), cost.numpy(), 0.5, method="sinkhorn_log", stopThr=1e-12)
    np.testing.assert_allclose(plan.numpy(), ref, atol=1e-8)


@pytest.mark.parametrize("check_every", [1, 7])
def test_sinkhorn_overrelaxation_reaches_the_same_plan_in_fewer_iterations(check_every):
    # Small ε: plain Sinkhorn needs hundreds of iterations, the adaptive over-relaxation far
    # fewer. Both stop within tol of the same fixed point (the row error bounds the distance
    # to it), and both end on an exact column update.
    x0, x1 = _data(100, 2, seed=5, dtype=torch.float64)
    cost = SquaredEuclideanCost()(x0, x1)
    a = torch.full((100,), 1 / 100, dtype=torch.float64)
    eps = 0.05 * float(cost.mean())
    runs = {
        relax: sinkhorn(
            cost, a, a, eps, tol=1e-10, max_iter=100_000, check_every=check_every, overrelax=relax
        )
        for relax in (False, True)
    }
    plans = {relax: torch.exp(res.log_plan(cost)) for relax, res in runs.items()}
    for relax, res in runs.items():
        assert res.converged and res.error < 1e-10
        torch.testing.assert_close(plans[relax].sum(0), a, atol=1e-14, rtol=0)  # columns exact
    torch.testing.assert_close(plans[True], plans[False], atol=1e-9, rtol=0)
    assert runs[True].n_iter < 0.6 * runs[False].n_iter


def test_sinkhorn_edge_cases_keep_the_contract():
    # converged at the very first check: the columns are still exact
    cost = torch.tensor([[0.0, 20.0]], dtype=torch.float64)
    res = sinkhorn(cost, torch.ones(1, dtype=torch.float64), torch.full((2,), 0.5).double(), 1.0)
    torch.testing.assert_close(torch.exp(res.log_plan(cost)).sum(0), torch.full((2,), 0.5).double())
    # the iteration cap covers the ε-scaling stages
    x0, x1 = _data(32, 2, seed=11)
    cost = SquaredEuclideanCost()(x0, x1)
    a = torch.full((32,), 1 / 32, dtype=torch.float64)
    for cap in (1, 7, 60):
        res = sinkhorn(cost, a, a, 1e-3 * float(cost.mean()), max_iter=cap)
        assert res.n_iter <= cap and not res.converged
    bad = cost.clone()
    bad[0, 0] = math.nan
    with pytest.raises(ValueError, match="finite"):
        sinkhorn(bad, a, a, 0.1)
    # ε far below float32's resolution of the cost: the iterations run in float64 instead of
    # overflowing float32 potentials
    tiny = sinkhorn(cost.float(), a.float(), a.float(), 1e-40, max_iter=50)
    assert tiny.f.dtype == torch.float64 and not tiny.converged
    assert bool(torch.isfinite(tiny.f).all() & torch.isfinite(tiny.g).all())


def test_sample_columns_in_float16_keeps_small_weights():
    p = torch.full((400,), 1e-4)
    p[0] = 1.0
    p = p / p.sum()  # P(row ≠ 0) = 399e-4 / (1 + 399e-4) ≈ 0.038 per column
    log_plan = torch.log(p)[:, None].expand(400, 3000).half()
    index0 = sample_columns(log_plan, torch.Generator().manual_seed(0))
    hits = int((index0 != 0).sum())  # Binomial(3000, 0.038): mean 115, sd 10.5
    assert 60 < hits < 170


def test_sample_columns_never_draws_zero_probability_rows():
    log_plan = torch.full((6, 5), -math.inf)
    support = {0: {5: 0.0}, 1: {0: 0.0, 3: 0.5}, 2: {2: 0.0}, 3: {1: 0.0, 4: -80.0, 5: 1.0}}
    support[4] = {0: 2.0}
    for j, rows in support.items():  # column -> {allowed row: log weight}
        for i, w in rows.items():
            log_plan[i, j] = w
    gen = torch.Generator().manual_seed(0)
    seen: list[set[int]] = [set() for _ in support]
    for _ in range(400):
        for j, i in enumerate(sample_columns(log_plan, gen).tolist()):
            assert i in support[j]
            seen[j].add(i)
    # both rows of columns 1 and 3 with weight ≥ e^-1 appear; weight ~e^-81 never does
    assert seen[1] == {0, 3} and seen[3] == {1, 5}


def test_sinkhorn_is_stable_in_float32_at_small_reg():
    x0, x1 = _data(64, 8, seed=3, dtype=torch.float32)
    for reg in (1e-2, 1e-3):
        c = SinkhornCoupling(reg=reg, tol=1e-4, max_iter=300)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # not converged in 300: fine here
            p = c(x0, x1, generator=torch.Generator().manual_seed(0), return_plan=True)
        assert bool(torch.isfinite(p.plan).all()) and p.plan.dtype == torch.float32
        torch.testing.assert_close(p.plan.sum(0), torch.full((64,), 1 / 64), atol=1e-6, rtol=0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_sinkhorn_cost_tends_to_exact_as_reg_decreases():
    # Entropic bound: 0 ≤ ⟨π_ε, C⟩ − OT ≤ ε·2·log n, so the gap shrinks with reg.
    x0, x1 = _data(32, 4, seed=4)
    cost = SquaredEuclideanCost()(x0, x1)
    exact = _emd2(cost)
    gaps = []
    for reg in (1.0, 0.1, 0.01, 0.002):
        plan = SinkhornCoupling(reg=reg, tol=1e-7, max_iter=3000).plan(x0, x1)
        gaps.append(float((plan * cost).sum()) / exact - 1)
    assert all(g >= -1e-6 for g in gaps)  # never below the optimum (up to the tolerance)
    assert all(a > b for a, b in itertools.pairwise(gaps))  # decreasing in reg
    assert gaps[-1] < 2 * 0.002 * float(cost.mean()) * math.log(32) / exact


def _bernstein_halfwidth(var: np.ndarray, delta: float) -> np.ndarray:
    """t with P(|X − EX| ≥ t) ≤ δ for a sum of independent [0, 1] variables of variance var."""
    log_term = math.log(2 / delta)
    return log_term / 3 + np.sqrt((log_term / 3) ** 2 + 2 * var * log_term)


@pytest.mark.parametrize(
    "coupling", [SinkhornCoupling(reg=0.05, tol=1e-8), SchrodingerBridgeCoupling(1.0, tol=1e-8)]
)
def test_sampled_pairs_follow_the_plan(coupling):
    # x1 is used exactly once per draw; each x0's count over R draws is a sum of independent
    # Bernoulli(π_ij / b_j) variables, bounded by Bernstein's inequality at δ = 1e-9 per point
    # (a false alarm probability below 1e-7 for the whole test).
    n, reps = 24, 120
    x0, x1 = _data(n, 2, seed=7)
    plan = coupling.plan(x0, x1)
    p_cond = (plan / plan.sum(0, keepdim=True)).numpy()  # column conditionals
    gen = torch.Generator().manual_seed(0)
    counts = np.zeros((n, n))
    for _ in range(reps):
        p = coupling(x0, x1, generator=gen)
        assert p.index1.tolist() == list(range(n))
        counts[p.index0.numpy(), np.arange(n)] += 1
    row_counts = counts.sum(1)
    mean = reps * p_cond.sum(1)
    var = reps * (p_cond * (1 - p_cond)).sum(1)
    assert np.all(np.abs(row_counts - mean) <= _bernstein_halfwidth(var, 1e-9))
    np.testing.assert_allclose(mean, reps, rtol=1e-5)  # the x0 marginal is exact in expectation


def test_bridge_uses_eps_two_sigma_squared():
    x0, x1 = _data(20, 3, seed=8)
    sigma = 0.7
    bridge = SchrodingerBridgeCoupling(sigma, tol=1e-10)
    assert bridge.eps == pytest.approx(2 * sigma**2)
    cost = SquaredEuclideanCost()(x0, x1)
    a = torch.full((20,), 1 / 20, dtype=torch.float64)
    ref = ot.sinkhorn(
        a.numpy(), a.numpy(), cost.numpy(), 2 * sigma**2, method="sinkhorn_log", stopThr=1e-12
    )
    np.testing.assert_allclose(bridge.plan(x0, x1).numpy(), ref, atol=1e-8)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_ot_and_sinkhorn_on_cuda_match_cpu():
    x0, x1 = _data(256, 32, seed=9, dtype=torch.float32)
    p_cpu = OTCoupling()(x0, x1)
    p_gpu = OTCoupling()(x0.cuda(), x1.cuda())
    assert p_gpu.x0.device.type == "cuda" and torch.equal(p_gpu.index0.cpu(), p_cpu.index0)
    gen = torch.Generator(device="cuda").manual_seed(0)
    q = SinkhornCoupling(reg=1e-3, tol=1e-4, max_iter=3000)(
        x0.cuda(), x1.cuda(), generator=gen, return_plan=True
    )
    assert q.index0.device.type == "cuda" and bool(torch.isfinite(q.plan).all())


# --- the certified auction: exact optimum, certificate, distributions, ties ----------------------

needs_numba = pytest.mark.skipif(not _HAVE_NUMBA, reason="needs numba (pip install numba)")


def _moons(n, rng):
    t = rng.uniform(0, math.pi, n)
    upper = rng.random(n) < 0.5
    x = np.where(upper[:, None], np.c_[np.cos(t), np.sin(t)], np.c_[1 - np.cos(t), 0.5 - np.sin(t)])
    return x + 0.05 * rng.standard_normal((n, 2))


def _problem(kind, n, d=2, seed=0):
    """Pairs of point clouds: unstructured, structured, rescaled, duplicated and tied."""
    rng = np.random.default_rng(seed)
    if kind == "gauss":
        x0, x1 = rng.standard_normal((n, d)), rng.standard_normal((n, d)) + 0.5
    elif kind == "uniform":
        x0, x1 = rng.uniform(-1, 1, (n, d)), rng.uniform(-1, 1, (n, d))
    elif kind == "moons":
        x0, x1 = rng.standard_normal((n, 2)), _moons(n, rng)
    elif kind == "8gaussians-moons":
        angle = rng.integers(0, 8, n) * (math.pi / 4)
        x0 = 4 * np.c_[np.cos(angle), np.sin(angle)] + 0.3 * rng.standard_normal((n, 2))
        x1 = _moons(n, rng)
    elif kind == "clustered":
        centres = 5 * rng.standard_normal((12, d))
        x0 = centres[rng.integers(0, 12, n)] + 0.1 * rng.standard_normal((n, d))
        x1 = centres[rng.integers(0, 12, n)] + 0.1 * rng.standard_normal((n, d))
    elif kind in ("scale1e3", "scale1e-3"):
        scale = 1e3 if kind == "scale1e3" else 1e-3
        x0, x1 = scale * rng.standard_normal((n, d)), scale * rng.uniform(-1, 1, (n, d))
    elif kind == "duplicates":  # repeated points on both sides: many optimal permutations
        x0 = rng.standard_normal((max(n // 8, 1), d))[rng.integers(0, max(n // 8, 1), n)]
        x1 = np.round(2 * rng.standard_normal((n, d))) / 2
    elif kind == "grid":  # a lattice against a shifted copy: exact ties everywhere
        side = math.ceil(math.sqrt(n))
        g = np.stack(np.meshgrid(np.arange(side), np.arange(side)), -1).reshape(-1, 2)[:n]
        x0, x1 = g.astype(float), g[rng.permutation(n)] + 0.5
    else:
        raise ValueError(kind)
    return torch.tensor(x0), torch.tensor(x1)


KINDS = [
    "gauss",
    "uniform",
    "moons",
    "8gaussians-moons",
    "clustered",
    "scale1e3",
    "scale1e-3",
    "duplicates",
    "grid",
]


@needs_numba
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", [40, 300, 700])
def test_auction_is_certified_and_equals_pot_emd2(kind, n, monkeypatch):
    # n = 700 runs the multiscale warm start (its threshold lowered to 256 here)
    monkeypatch.setattr(AuctionSolver, "MULTISCALE", 256)
    x0, x1 = _problem(kind, n)
    cost = SquaredEuclideanCost()(x0, x1).numpy()
    out = AuctionSolver().certified(cost.copy())
    assert sorted(out.perm.tolist()) == list(range(n))  # a permutation
    # the certificate, recomputed here from the returned potentials on the original matrix:
    # at most 2nδ above the optimum, δ = 2^-40 (max|C| + max price) (float64 rounding ~2^-52)
    assert out.gap <= 2 * n * out.tol
    assert certify_assignment(cost, out.perm, out.u, out.v) <= 2 * n * out.tol
    total = float(cost[np.arange(n), out.perm].sum()) / n
    assert total == pytest.approx(_emd2(torch.from_numpy(cost)), rel=1e-9, abs=1e-12)


@needs_numba
@pytest.mark.parametrize("kind", ["gauss", "clustered", "duplicates", "grid", "scale1e3"])
@pytest.mark.parametrize("n", [300, 700])
def test_auction_on_float32_costs_bids_inside_the_matrix_and_stays_exact(kind, n, monkeypatch):
    # a private matrix of float32 values: the auction's float32 copy shares the matrix's own
    # buffer and the float64 matrix is restored exactly; the certificate is checked on a copy
    monkeypatch.setattr(AuctionSolver, "MULTISCALE", 256)
    x0, x1 = (t.float() for t in _problem(kind, n))
    cost = SquaredEuclideanCost()(x0, x1).double().numpy()
    work = cost.copy()
    squeezed = []
    real = auction_module._compiled

    def spy(name: str):  # records that the in-buffer float32 copy was taken
        squeezed.append(name)
        return real(name)

    monkeypatch.setattr(auction_module, "_compiled", spy)
    out = AuctionSolver().certified(work, overwrite=True)
    assert "squeeze" in squeezed and "unsqueeze_reduce" in squeezed
    assert out.gap <= 2 * n * out.tol
    assert certify_assignment(cost, out.perm, out.u, out.v) <= 2 * n * out.tol
    total = float(cost[np.arange(n), out.perm].sum()) / n
    assert total == pytest.approx(_emd2(torch.from_numpy(cost)), rel=1e-9, abs=1e-12)
    # without overwrite the caller's matrix is left as it was
    kept = cost.copy()
    again = AuctionSolver().certified(kept)
    assert np.array_equal(kept, cost)
    assert float(cost[np.arange(n), again.perm].sum()) / n == pytest.approx(total, rel=1e-9)


@needs_numba
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_auction_rejects_non_finite_costs(bad):
    m = np.random.default_rng(0).random((64, 64))
    m[5, 7] = bad
    with pytest.raises(ValueError, match="finite"):
        AuctionSolver().certified(m)


@needs_numba
@pytest.mark.parametrize("d", [16, 64])
def test_auction_in_higher_dimension(d):
    x0, x1 = _problem("clustered", 200, d=d)
    cost = SquaredEuclideanCost()(x0, x1)
    reduced = (-2.0 * x0 @ x1.T).numpy()  # the form used for d >= 8: same optimal permutations
    perm = AuctionSolver().solve(reduced, dim=d)
    assert float(cost[np.arange(200), perm].sum()) / 200 == pytest.approx(_emd2(cost), rel=1e-9)


def test_the_certificate_rejects_a_wrong_permutation():
    x0, x1 = _problem("gauss", 60)
    cost = SquaredEuclideanCost()(x0, x1).numpy()
    a = np.full(60, 1 / 60)
    plan, log = ot.emd(a, a, cost, numItermax=10**8, log=True)
    perm = np.asarray(plan).argmax(axis=1)
    u, v = log["u"], log["v"]
    assert certify_assignment(cost, perm, u, v) < 1e-9  # POT's duals prove its optimum
    wrong = perm.copy()
    wrong[[3, 17]] = wrong[[17, 3]]
    excess = float(cost[np.arange(60), wrong].sum() - cost[np.arange(60), perm].sum())
    assert excess > 0
    # complementary slackness fails on the swapped pairs: the bound is at least the excess
    assert certify_assignment(cost, wrong, u, v) >= excess - 1e-9
    # infeasible potentials are caught too: raise one u_i
    bumped = u.copy()
    bumped[5] += 1.0
    assert certify_assignment(cost, perm, bumped, v) >= 1.0 - 1e-9
    with pytest.raises(ValueError, match="shape"):
        certify_assignment(cost, perm[:-1], u, v)


@needs_numba
def test_auction_certificate_failure_raises(monkeypatch):
    # a solver that cannot prove its answer raises: it never returns an unproven permutation
    monkeypatch.setattr(auction_module, "_certify_reduced", lambda *a, **k: None)
    with pytest.raises(RuntimeError, match="certify"):
        AuctionSolver().certified(np.random.default_rng(0).random((50, 50)))


@needs_numba
def test_auction_float32_inputs_ties_and_constant_costs():
    # float32 batches through OTCoupling: optimal for the float64 copy of the float32 matrix
    x0, x1 = (t.float() for t in _problem("moons", 256))
    p = OTCoupling(solver=AuctionSolver())(x0, x1)
    cost = SquaredEuclideanCost()(x0, x1).double()
    assert _total(cost, p) == pytest.approx(_emd2(cost), rel=1e-9)
    # every point equal: every permutation is optimal, the certificate is exact
    flat = np.full((50, 50), 3.0)
    out = AuctionSolver().certified(flat)
    assert sorted(out.perm.tolist()) == list(range(50)) and out.gap == 0.0
    assert certify_assignment(flat, out.perm, out.u, out.v) == 0.0
    for n in (1, 2, 3):  # tiny batches skip the auction
        m = np.random.default_rng(n).random((n, n))
        perm = AuctionSolver().solve(m, dim=2)
        assert float(m[np.arange(n), perm].sum()) == pytest.approx(
            min(float(m[np.arange(n), list(q)].sum()) for q in itertools.permutations(range(n)))
        )


def test_auction_arguments_and_missing_numba(monkeypatch):
    for bad in ({"scaling": 1.0}, {"final_eps": 0.0}, {"list_eps": 0.0}, {"candidates": 1}):
        with pytest.raises(ValueError):
            AuctionSolver(**bad)
    with pytest.raises(ValueError, match="square"):
        AuctionSolver().certified(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        AuctionSolver().certified(np.full((40, 40), np.nan))
    monkeypatch.setattr(auction_module, "_compiled", lambda name: None)
    with pytest.raises(ImportError, match="numba"):
        AuctionSolver().certified(np.random.default_rng(0).random((40, 40)))


@needs_numba
def test_auction_overwrite_reduces_in_place_only_when_allowed():
    x0, x1 = _problem("uniform", 100)
    cost = SquaredEuclideanCost()(x0, x1).numpy()
    before = cost.copy()
    first = AuctionSolver().solve(cost, dim=2)
    assert np.array_equal(cost, before)
    again = AuctionSolver().solve(cost, dim=2, overwrite=True)  # may now be the reduced matrix
    assert float(before[np.arange(100), again].sum()) == pytest.approx(
        float(before[np.arange(100), first].sum()), rel=1e-12
    )


# --- small ε: Sinkhorn and the bridge ------------------------------------------------------------


def test_sinkhorn_converges_at_small_reg_with_marginals_within_tol():
    x0, x1 = _problem("moons", 128)
    cost = SquaredEuclideanCost()(x0, x1)
    a = torch.full((128,), 1 / 128, dtype=torch.float64)
    res = sinkhorn(cost, a, a, 1e-3 * float(cost.mean()), tol=1e-6, max_iter=20_000)
    assert res.converged and res.error < 1e-6
    plan = torch.exp(res.log_plan(cost))
    torch.testing.assert_close(plan.sum(0), a, atol=1e-12, rtol=0)  # columns exact
    assert float(torch.linalg.vector_norm(plan.sum(1) - a)) < 1e-6
    # restarted from its own potentials it is converged at once, on the same plan
    warm = sinkhorn(cost, a, a, res.eps, tol=1e-6, init=(res.f, res.g))
    assert warm.converged and warm.n_iter <= 2
    torch.testing.assert_close(torch.exp(warm.log_plan(cost)), plan, atol=1e-8, rtol=0)
    with pytest.raises((ValueError, TypeError), match="init"):  # TypeError: runtime checks
        sinkhorn(cost, a, a, res.eps, init=(res.f[:3], res.g))


def test_sinkhorn_promotes_float32_when_eps_is_below_its_resolution():
    x0, x1 = (t.float() * 1e3 for t in _problem("gauss", 32))
    cost = SquaredEuclideanCost()(x0, x1)
    a = torch.full((32,), 1 / 32)
    res = sinkhorn(cost, a, a, 1e-5 * float(cost.mean()), max_iter=200)
    assert res.f.dtype == torch.float64  # float32 potentials could not resolve this plan
    assert bool(torch.isfinite(res.log_plan(cost)).any())


def test_bridge_at_vanishing_sigma_returns_the_exact_plan_and_says_why():
    # data of scale 1e3 in float32: ε = 2σ² = 2e-6 is far below the matrix's rounding
    x0, x1 = (t.float() for t in _problem("scale1e3", 64))
    bridge = SchrodingerBridgeCoupling(1e-3)
    with pytest.warns(RuntimeWarning, match="exact plan") as record:
        p = bridge(x0, x1, generator=torch.Generator().manual_seed(0), return_plan=True)
    assert not any("inf" in str(w.message).split("=")[0] for w in record)
    assert p.plan.dtype == torch.float32
    torch.testing.assert_close(p.plan.sum(0), torch.full((64,), 1 / 64), atol=1e-7, rtol=0)
    torch.testing.assert_close(p.plan.sum(1), torch.full((64,), 1 / 64), atol=1e-7, rtol=0)
    assert sorted(p.index0.tolist()) == list(range(64))  # the limit plan is a permutation
    cost = SquaredEuclideanCost()(x0, x1).double()
    assert _total(cost, p) == pytest.approx(_emd2(cost), rel=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once per coupling
        bridge(x0, x1)


def test_bridge_at_small_sigma_in_float64_converges_or_returns_its_limit():
    x0, x1 = _problem("scale1e3", 48)
    with pytest.warns(RuntimeWarning, match="exact plan"):  # ε = 2e-6 ≪ 1e6 · 2^-52 · max|C|
        p = SchrodingerBridgeCoupling(1e-3)(x0, x1, return_plan=True)
    cost = SquaredEuclideanCost()(x0, x1)
    assert float((p.plan * cost).sum()) == pytest.approx(_emd2(cost), rel=1e-9)
    # a small but resolvable σ converges, with exact columns and rows within tol
    q = SchrodingerBridgeCoupling(0.5)(x0 * 1e-3, x1 * 1e-3, return_plan=True)
    full = torch.full((48,), 1 / 48, dtype=torch.float64)
    torch.testing.assert_close(q.plan.sum(0), full, atol=1e-12, rtol=0)
    assert float(torch.linalg.vector_norm(q.plan.sum(1) - 1 / 48)) < 1e-6
