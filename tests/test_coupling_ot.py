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
    sinkhorn,
)
from interpolants.coupling import _assignment as assignment_module
from interpolants.coupling._base import sample_columns


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
_SOLVERS = [
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
    monkeypatch.setattr(assignment_module, "_lapx_lapjvr", lambda: None)
    assert isinstance(auto.select(2), NetworkSimplexSolver) and auto.prefers_full_cost(2)
    assert isinstance(auto.select(7), NetworkSimplexSolver)
    assert isinstance(auto.select(8), LapjvSolver) and not auto.prefers_full_cost(8)
    assert isinstance(auto.select(3072), LapjvSolver)


def test_auto_solver_prefers_lapx_from_dimension_8(monkeypatch):
    monkeypatch.setattr(assignment_module, "_lapx_lapjvr", lambda: lambda c, **kw: None)
    auto = AutoAssignmentSolver()
    for dim in (1, 2, 7):  # low d: the network simplex is robust to structured data
        assert isinstance(auto.select(dim), NetworkSimplexSolver)
    for dim in (8, 64, 3072):
        assert isinstance(auto.select(dim), LapxSolver)
    assert auto.prefers_full_cost(2) and not auto.prefers_full_cost(64)


def test_auto_solver_falls_back_to_scipy_without_lap(monkeypatch):
    monkeypatch.setattr(assignment_module, "_lapx_lapjvr", lambda: None)
    monkeypatch.setattr(assignment_module, "_LAP_WARNED", False)
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
    with pytest.raises(FloatingPointError, match="eps"):
        sinkhorn(cost.float(), a.float(), a.float(), 1e-40, max_iter=50)


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
