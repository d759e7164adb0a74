"""Contract tests over every coupling, plus the conditional, matching and unbalanced ones."""

import inspect
import math
import pickle

import numpy as np
import ot
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from contracts import NoHostSync, concrete_subclasses
from interpolants import Coupling, IndependentCoupling, OTCoupling, _validation
from interpolants.coupling import (
    DataDependentCoupling,
    GibbsWeightedCoupling,
    LabelConditionalCoupling,
    PairIndices,
    PartialOTCoupling,
    PermutationCoupling,
    PlanCoupling,
    ReflowCoupling,
    SchrodingerBridgeCoupling,
    SinkhornCoupling,
    SquaredEuclideanCost,
    StableMatchingCoupling,
    UnbalancedOTCoupling,
)
from interpolants.integrate import RK4


def _half_plus_noise(x1: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """A data-dependent x0 (module level, so that the coupling pickles)."""
    return 0.5 * x1 + noise


def _drift(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A "trained" velocity for the reflow coupling (module level, so that it pickles)."""
    return -0.5 * x + 1.0


def all_couplings() -> dict[str, Coupling]:
    return {
        "independent": IndependentCoupling(),
        "ot": OTCoupling(),
        "sinkhorn": SinkhornCoupling(reg=0.1),
        "bridge": SchrodingerBridgeCoupling(sigma=1.0),
        "stable": StableMatchingCoupling(),
        "label-ot": LabelConditionalCoupling(),
        "unbalanced": UnbalancedOTCoupling(),
        "partial": PartialOTCoupling(mass=0.75),
        "data-dependent": DataDependentCoupling(_half_plus_noise),
        "gibbs": GibbsWeightedCoupling(epsilon=2.0),
        "reflow": ReflowCoupling(_drift, RK4(), steps=2),
    }


COUPLINGS = all_couplings()
IDS = list(COUPLINGS)
SHAPES = [(12, 3), (12, 2, 4, 4)]
DTYPES = [torch.float32, torch.float64]


def _batches(shape, dtype, device="cpu", seed=0):
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.randn(shape, generator=gen, dtype=dtype).to(device)
    x1 = torch.randn(shape, generator=gen, dtype=dtype).to(device)
    y = torch.arange(shape[0]) % 3
    y1 = y[torch.randperm(shape[0], generator=gen)]
    return x0, x1, y.to(device), y1.to(device)


def _check_contract(coupling, shape, dtype, device):
    x0, x1, y0, y1 = _batches(shape, dtype, device)
    gen = torch.Generator(device=device).manual_seed(1)
    p = coupling(x0, x1, y0, y1, generator=gen, return_plan=True)
    m = p.index0.shape[0]
    assert p.index0.dtype == p.index1.dtype == torch.int64
    assert p.index0.device == p.index1.device == x0.device
    assert p.x0.shape == p.x1.shape == (m, *shape[1:])
    assert p.x0.dtype == p.x1.dtype == dtype and p.x0.device == x0.device
    if isinstance(coupling, ReflowCoupling):  # x1 is generated from x0: only its shape is used
        assert torch.equal(p.x1, coupling.generate(x0)) and torch.equal(p.x0, x0)
    else:
        assert torch.equal(p.x1, x1[p.index1])
    assert torch.equal(p.y1, y1[p.index1]) and torch.equal(p.y0, y0[p.index0])
    if not isinstance(coupling, DataDependentCoupling):
        assert torch.equal(p.x0, x0[p.index0])
    if p.plan is not None:
        assert p.plan.shape == (shape[0], shape[0]) and p.plan.dtype == dtype
        assert bool((p.plan >= 0).all())
        expected = coupling.mass if isinstance(coupling, PartialOTCoupling) else 1.0
        if not isinstance(coupling, UnbalancedOTCoupling):
            assert float(p.plan.sum()) == pytest.approx(expected, rel=1e-5)
    if isinstance(coupling, PermutationCoupling):
        n = shape[0]
        assert torch.equal(torch.sort(p.index0).values, torch.arange(n, device=device))
        assert torch.equal(p.index1, torch.arange(n, device=device))
    return p


@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_contract(name, shape, dtype):
    _check_contract(COUPLINGS[name], shape, dtype, "cpu")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_contract_cuda(name, dtype):
    _check_contract(COUPLINGS[name], (16, 3, 4, 4), dtype, "cuda")


@pytest.mark.parametrize("name", IDS)
def test_label_tuples_are_carried(name):
    x0, x1, y0, y1 = _batches((12, 2), torch.float64)
    p = COUPLINGS[name](x0, x1, (y0, -y0), (y1, -y1), generator=torch.Generator().manual_seed(0))
    assert isinstance(p.y0, tuple) and torch.equal(p.y0[1], -y0[p.index0])
    assert isinstance(p.y1, tuple) and torch.equal(p.y1[1], -y1[p.index1])


# couplings that never read their inputs' values: NaN passes through them, and they never
# synchronise with the host (the independent one only outside the checked mode, below)
VALUE_FREE = ("independent", "data-dependent")
# ... except in the checked mode (INTERPOLANTS_TYPECHECK=1), where these check the values
CHECKED_VALUES = ("independent",)
# couplings that read x0's values but never x1's (reflow generates x1 from x0)
X1_VALUE_FREE = ("reflow",)


@pytest.mark.parametrize("name", IDS)
def test_errors(name, monkeypatch):
    monkeypatch.setattr(_validation, "CHECK_VALUES", False)  # the unchecked (default) mode
    c = COUPLINGS[name]
    x = torch.randn(6, 3)
    y = torch.zeros(6, dtype=torch.int64)  # one class: the label coupling runs its inner one
    with pytest.raises(ValueError, match="trailing shape"):
        c(x, torch.randn(6, 4))
    with pytest.raises(ValueError, match="non-empty"):
        c(x[:0], x[:0])
    bad = x.clone()
    bad[2, 1] = float("nan")
    infinite = bad.clone().fill_(float("inf"))
    if name in VALUE_FREE:  # values are checked where a coupling computes with them
        p = c(bad, x, y, y, generator=torch.Generator().manual_seed(0))
        assert int(torch.isnan(p.x0).sum()) == 1  # the one NaN, carried along
        p = c(x, infinite, y, y, generator=torch.Generator().manual_seed(0))
        assert p.x1 is infinite
    else:
        with pytest.raises(ValueError, match="NaN"):
            c(bad, x, y, y)
        if name in X1_VALUE_FREE:
            assert bool(c(x, infinite, y, y).x1.isfinite().all())
        else:
            with pytest.raises(ValueError, match="NaN"):
                c(x, infinite, y, y)
    with pytest.raises(TypeError):
        c(torch.ones(6, 3, dtype=torch.int64), x)
    with pytest.raises(ValueError, match="shape"):
        c(x, x, torch.zeros(5), torch.zeros(6))


@pytest.mark.parametrize("name", CHECKED_VALUES)
def test_the_checked_mode_names_a_batch_with_nan(name, monkeypatch):
    monkeypatch.setattr(_validation, "CHECK_VALUES", True)
    x, bad = torch.randn(6, 3), torch.randn(6, 3)
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match="x0 contains NaN"):
        COUPLINGS[name](bad, x)
    with pytest.raises(ValueError, match="x1 contains NaN"):
        COUPLINGS[name](x, bad.fill_(float("inf")))


def test_invalid_parameters():
    for reg in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="reg"):
            SinkhornCoupling(reg=reg)
        with pytest.raises(ValueError, match="reg"):
            UnbalancedOTCoupling(reg=reg)
    with pytest.raises(ValueError, match="sigma"):
        SchrodingerBridgeCoupling(sigma=0.0)
    with pytest.raises(ValueError, match="mass"):
        PartialOTCoupling(mass=1.5)
    with pytest.raises(TypeError):
        OTCoupling(solver="lapjv")  # type: ignore[arg-type]


# --- permutation couplings ------------------------------------------------------------------


@given(n=st.integers(1, 24), d=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_permutation_couplings_use_each_point_once(n, d, seed):
    x0, x1, _, _ = _batches((n, d), torch.float64, seed=seed)
    for c in (IndependentCoupling(), OTCoupling(), StableMatchingCoupling()):
        p = c(x0, x1, generator=torch.Generator().manual_seed(seed))
        assert sorted(p.index0.tolist()) == list(range(n))
        assert p.index1.tolist() == list(range(n))


def test_independent_unequal_sizes_are_balanced():
    x0, x1 = torch.randn(5, 2), torch.randn(13, 2)
    p = IndependentCoupling()(x0, x1, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(p.index0, minlength=5)
    assert int(counts.min()) == 2 and int(counts.max()) == 3  # ⌊13/5⌋ and ⌈13/5⌉


def _gale_shapley(cost: np.ndarray) -> np.ndarray:
    """Textbook proposer-side Gale–Shapley, rows propose, both sides rank by cost."""
    n = cost.shape[0]
    prefs = np.argsort(cost, axis=1, kind="stable")
    nxt = [0] * n
    holder = [-1] * n  # column -> row
    free = list(range(n))
    while free:
        i = free.pop()
        j = prefs[i, nxt[i]]
        nxt[i] += 1
        h = holder[j]
        if h < 0:
            holder[j] = i
        elif (cost[i, j], i) < (cost[h, j], h):
            holder[j] = i
            free.append(h)
        else:
            free.append(i)
    match = np.empty(n, dtype=np.int64)
    for j, i in enumerate(holder):
        match[i] = j
    return match


@given(n=st.integers(1, 20), d=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_stable_matching_equals_gale_shapley_and_is_stable(n, d, seed):
    x0, x1, _, _ = _batches((n, d), torch.float64, seed=seed)
    p = StableMatchingCoupling()(x0, x1)
    cost = SquaredEuclideanCost()(x0, x1).numpy()
    match = np.empty(n, dtype=np.int64)
    match[p.index0.numpy()] = p.index1.numpy()
    assert np.array_equal(match, _gale_shapley(cost))
    partner_cost0 = cost[np.arange(n), match]  # what each x0 pays now
    partner_cost1 = np.empty(n)
    partner_cost1[match] = partner_cost0  # what each x1 pays now
    blocking = (cost < partner_cost0[:, None]) & (cost < partner_cost1[None, :])
    assert not blocking.any()


# --- label-conditional and data-dependent ----------------------------------------------------


def test_label_conditional_never_crosses_classes_and_is_optimal_per_class():
    gen = torch.Generator().manual_seed(3)
    n, d = 60, 4
    x0, x1 = (
        torch.randn(n, d, generator=gen, dtype=torch.float64),
        torch.randn(n, d, generator=gen, dtype=torch.float64),
    )
    ya0 = torch.arange(n) % 3
    yb0 = (torch.arange(n) // 3) % 2
    perm = torch.randperm(n, generator=gen)
    ya1, yb1 = ya0[perm], yb0[perm]
    p = LabelConditionalCoupling()(x0, x1, (ya0, yb0), (ya1, yb1))
    assert torch.equal(p.y0[0], p.y1[0]) and torch.equal(p.y0[1], p.y1[1])
    assert sorted(p.index0.tolist()) == list(range(n))
    cost = SquaredEuclideanCost()(x0, x1)
    total = float(cost[p.index0, p.index1].sum())
    expected = 0.0
    for a in range(3):
        for b in range(2):
            i = torch.nonzero((ya0 == a) & (yb0 == b)).squeeze(1)
            j = torch.nonzero((ya1 == a) & (yb1 == b)).squeeze(1)
            m = cost[i][:, j].numpy()
            k = len(i)
            expected += k * ot.emd2(np.full(k, 1 / k), np.full(k, 1 / k), m, numItermax=10**7)
    assert total == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("inner", [None, IndependentCoupling(), SinkhornCoupling(reg=0.1)])
def test_label_conditional_keeps_x1_in_its_order_without_a_copy(inner):
    # an inner coupling that keeps x1's order (index1=None) keeps it through the classes too
    x0, x1, y0, y1 = _batches((12, 3), torch.float64)
    coupling = LabelConditionalCoupling(inner)
    out = coupling.pair(
        x0, x1, (y0,), (y1,), generator=torch.Generator().manual_seed(0), want_plan=False
    )
    assert out.index1 is None
    p = coupling(x0, x1, y0, y1, generator=torch.Generator().manual_seed(0))
    assert p.x1 is x1 and p.y1 is y1 and torch.equal(p.index1, torch.arange(12))
    assert torch.equal(p.y0, y1) and torch.equal(p.x0, x0[p.index0])
    if inner is None:
        assert sorted(p.index0.tolist()) == list(range(12))
    # an inner coupling that returns explicit x1 indices is still sorted into x1's order
    q = LabelConditionalCoupling(StableMatchingCoupling())(x0, x1, y0, y1)
    assert torch.equal(q.index1, torch.arange(12)) and torch.equal(q.y0, q.y1)


def test_label_conditional_errors():
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match="labels"):
        LabelConditionalCoupling()(x, x)
    with pytest.raises(ValueError, match="both sides"):
        LabelConditionalCoupling()(x, x, torch.tensor([0, 0, 1, 1]), torch.tensor([0, 0, 2, 2]))


def test_data_dependent_builds_x0_from_x1():
    x1 = torch.randn(8, 1, 4, 4)
    noise = torch.randn(8, 1, 4, 4)
    mask = (torch.arange(16).reshape(1, 1, 4, 4) % 2).float().expand(8, 1, 4, 4)
    c = DataDependentCoupling(lambda x, z: (mask * x + (1 - mask) * z, mask))
    p = c(noise, x1)
    assert torch.equal(p.x0, mask * x1 + (1 - mask) * noise)
    assert torch.equal(p.x1, x1) and p.condition is mask
    with pytest.raises(ValueError, match="fn must return"):
        DataDependentCoupling(lambda x, z: x[:, :, :2])(noise, x1)
    with pytest.raises(TypeError, match="dtype and device"):
        DataDependentCoupling(lambda x, z: z.double())(noise, x1)
    with pytest.raises(ValueError, match="noise x0 must have x1's shape"):
        c(noise[:4], x1)


def test_data_dependent_carries_labels_as_given():
    x1, noise = torch.randn(5, 2), torch.randn(5, 2)
    y0, y1 = torch.arange(5), (torch.arange(5) + 10, -torch.arange(5))
    p = DataDependentCoupling(_half_plus_noise)(noise, x1, y0, y1)
    assert p.y0 is y0 and p.y1 is y1 and p.x1 is x1 and p.condition is None
    assert torch.equal(p.x0, 0.5 * x1 + noise)
    assert torch.equal(p.index0, torch.arange(5)) and torch.equal(p.index1, torch.arange(5))
    with pytest.raises(ValueError, match="shape"):
        DataDependentCoupling(_half_plus_noise)(noise, x1, torch.arange(4))


def test_label_conditional_rejects_an_inner_coupling_that_constructs_x0():
    x = torch.randn(4, 2)
    y = torch.tensor([0, 0, 1, 1])
    with pytest.raises(TypeError, match="constructs x0"):
        LabelConditionalCoupling(DataDependentCoupling(_half_plus_noise))(x, x, y, y)


# --- unbalanced and partial --------------------------------------------------------------------


def test_unbalanced_and_partial_discount_an_outlier():
    gen = torch.Generator().manual_seed(0)
    n = 20
    x0 = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    x1 = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    x1[0] += 50.0  # an outlier in the x1 batch
    plan = UnbalancedOTCoupling(reg=0.05, reg_m=0.1).plan(x0, x1)
    mass = plan.sum(0) / plan.sum()
    assert float(mass[0]) < 0.1 / n  # a balanced plan would give it 1/n
    p = PartialOTCoupling(mass=0.95)(x0, x1)
    assert p.index0.numel() == 19 and 0 not in p.index1.tolist()
    assert len(set(p.index0.tolist())) == 19 and len(set(p.index1.tolist())) == 19
    cost = SquaredEuclideanCost()(x0, x1)
    exact = ot.partial.partial_wasserstein2(
        np.full(n, 1 / n), np.full(n, 1 / n), cost.numpy(), m=0.95, numItermax=10**7
    )
    assert float(cost[p.index0, p.index1].sum()) / n == pytest.approx(exact, rel=1e-9)


def test_partial_needs_equal_sizes():
    with pytest.raises(ValueError, match="equal batch sizes"):
        PartialOTCoupling()(torch.randn(4, 2), torch.randn(5, 2))


def test_plans_with_weights_have_the_given_marginals():
    gen = torch.Generator().manual_seed(0)
    x0, x1 = (
        torch.randn(7, 3, generator=gen, dtype=torch.float64),
        torch.randn(9, 3, generator=gen, dtype=torch.float64),
    )
    w0, w1 = (
        torch.rand(7, generator=gen, dtype=torch.float64) + 0.1,
        torch.rand(9, generator=gen, dtype=torch.float64) + 0.1,
    )
    for c in (OTCoupling(), SinkhornCoupling(reg=0.2, tol=1e-10)):
        plan = c.plan(x0, x1, w0, w1)
        torch.testing.assert_close(plan.sum(1), w0 / w0.sum(), atol=1e-8, rtol=0)
        torch.testing.assert_close(plan.sum(0), w1 / w1.sum(), atol=1e-8, rtol=0)
    with pytest.raises(ValueError, match="w0"):
        OTCoupling().plan(x0, x1, -w0)


def test_pairs_keep_autograd():
    x0 = torch.randn(6, 2, requires_grad=True)
    x1 = torch.randn(6, 2)
    p = OTCoupling()(x0, x1)
    p.x0.sum().backward()
    assert x0.grad is not None and torch.equal(x0.grad, torch.ones(6, 2))
    assert math.isfinite(float(p.x0.detach().sum()))


@pytest.mark.parametrize("name", ["independent", "ot", "sinkhorn", "bridge"])
@pytest.mark.parametrize("n0", [12, 7])
def test_x1_in_its_order_is_returned_without_a_copy(name, n0):
    # couplings that use every x1 once in its order hand x1 and its labels back as they are
    x0, x1, _, y1 = _batches((12, 3), torch.float64)
    p = COUPLINGS[name](x0[:n0], x1, None, y1, generator=torch.Generator().manual_seed(0))
    assert p.x1 is x1 and p.y1 is y1
    assert torch.equal(p.index1, torch.arange(12))
    assert torch.equal(p.x0, x0[:n0][p.index0])


# --- the public extension point: a user's coupling implements pair ----------------------------


class _Reverse(Coupling):
    """x0 in reverse order against x1 in its order; the uniform plan when asked for."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, object, bool, bool]] = []

    def pair(self, x0, x1, y0, y1, *, generator, want_plan):
        self.calls.append((y0, y1, want_plan, torch.is_grad_enabled()))
        n0, n1 = x0.shape[0], x1.shape[0]
        index0 = torch.arange(n0 - 1, -1, -1, device=x0.device)
        plan = torch.full((n0, n1), 1.0 / (n0 * n1), dtype=x0.dtype) if want_plan else None
        return PairIndices(index0=index0, plan=plan)


def test_a_user_coupling_implementing_only_pair_works_through_the_call():
    x0 = torch.randn(5, 2, requires_grad=True)
    x1 = torch.randn(5, 2)
    y0, y1 = torch.arange(5), (torch.arange(5) + 10, -torch.arange(5))
    c = _Reverse()
    p = c(x0, x1, y0, y1)
    (seen0, seen1, want_plan, grad) = c.calls[-1]
    # pair sees normalised labels, runs under no_grad, and was not asked for a plan
    assert isinstance(seen0, tuple) and len(seen0) == 1 and seen0[0] is y0
    assert seen1 is y1 and not want_plan and not grad
    reverse = torch.arange(4, -1, -1)
    assert torch.equal(p.index0, reverse) and torch.equal(p.x0, x0[reverse])
    assert torch.equal(p.y0, y0[reverse])  # labels carried with their x0
    assert p.x1 is x1 and p.y1 is y1 and torch.equal(p.index1, torch.arange(5))  # x1's order
    assert p.plan is None and p.condition is None
    assert p.x0.requires_grad  # gathered outside no_grad: the pairs keep autograd
    q = c(x0, x1, return_plan=True)
    assert c.calls[-1][2] and q.plan is not None and q.plan.shape == (5, 5)
    assert float(q.plan.sum()) == pytest.approx(1.0)


def test_a_coupling_without_pair_cannot_be_instantiated():
    class NoPair(Coupling):
        pass

    with pytest.raises(TypeError, match="pair"):
        NoPair()  # type: ignore[abstract]


class _ProductPlan(PlanCoupling):
    """The independent plan a ⊗ b; every x1 once, its x0 drawn uniformly."""

    def __init__(self, reduced: bool = False) -> None:
        self.cost = SquaredEuclideanCost()
        self.reduced_plan_cost = reduced
        self.costs: list[torch.Tensor] = []

    def pair(self, x0, x1, y0, y1, *, generator, want_plan):
        n0, n1 = x0.shape[0], x1.shape[0]
        index0 = torch.randint(n0, (n1,), generator=generator, device=x0.device)
        plan = torch.full((n0, n1), 1.0 / (n0 * n1), dtype=x0.dtype) if want_plan else None
        return PairIndices(index0=index0, plan=plan)

    def weighted_plan(self, cost, a, b):
        assert not torch.is_grad_enabled()
        assert a.dtype == b.dtype == cost.dtype and float(a.sum()) == pytest.approx(1.0)
        self.costs.append(cost)
        return a[:, None] * b[None, :]


def test_a_user_plan_coupling_implementing_pair_and_weighted_plan():
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    x1 = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    w0 = torch.rand(6, generator=gen, dtype=torch.float64) + 0.1
    w1 = torch.rand(4, generator=gen, dtype=torch.float64) + 0.1
    for reduced in (False, True):
        c = _ProductPlan(reduced)
        plan = c.plan(x0, x1, w0, w1)
        torch.testing.assert_close(plan.sum(1), w0 / w0.sum())
        torch.testing.assert_close(plan.sum(0), w1 / w1.sum())
        # the full cost, or the reduced −2·x0·x1ᵀ when reduced_plan_cost says so
        expected = -2.0 * x0 @ x1.T if reduced else SquaredEuclideanCost()(x0, x1)
        torch.testing.assert_close(c.costs[-1], expected)
    p = _ProductPlan()(x0, x1, generator=torch.Generator().manual_seed(1), return_plan=True)
    assert p.plan is not None and p.plan.shape == (6, 4)
    assert p.x1 is x1 and torch.equal(p.x0, x0[p.index0])
    with pytest.raises(ValueError, match="w0"):
        _ProductPlan().plan(x0, x1, -w0)


class _Built(Coupling):
    """x0 constructed from x1 (no gather), with conditioning information."""

    def pair(self, x0, x1, y0, y1, *, generator, want_plan):
        built = x1.flip(1) + x0
        return PairIndices(
            index0=torch.arange(x0.shape[0], device=x0.device), x0=built, condition=x1.sum(1)
        )


def test_pair_indices_with_a_constructed_x0():
    x0, x1 = torch.randn(5, 3), torch.randn(5, 3)
    y0, y1 = torch.arange(5), torch.arange(5) * 2
    p = _Built()(x0, x1, y0, y1)
    assert torch.equal(p.x0, x1.flip(1) + x0)
    assert p.y0 is y0 and p.y1 is y1 and p.x1 is x1  # labels as given, x1 as it is
    assert torch.equal(p.index0, torch.arange(5)) and torch.equal(p.index1, torch.arange(5))
    assert p.condition is not None and torch.equal(p.condition, x1.sum(1))


def _returning(out):
    class Fixed(Coupling):
        def pair(self, x0, x1, y0, y1, *, generator, want_plan):
            return out

    return Fixed()


def test_the_call_checks_what_pair_returns():
    x = torch.randn(4, 3)
    with pytest.raises(TypeError, match="PairIndices"):
        _returning((torch.arange(4), None, None))(x, x)
    with pytest.raises(TypeError, match="int64"):
        _returning(PairIndices(index0=torch.arange(4, dtype=torch.int32)))(x, x)
    with pytest.raises(ValueError, match="index1=None"):
        _returning(PairIndices(index0=torch.arange(3)))(x, x)
    with pytest.raises((TypeError, ValueError), match="index1"):  # jaxtyping or the call
        _returning(PairIndices(index0=torch.arange(3), index1=torch.arange(2)))(x, x)
    with pytest.raises(ValueError, match="construct x0"):
        _returning(PairIndices(index0=torch.arange(4), x0=torch.zeros(4, 2)))(x, x)
    with pytest.raises(TypeError, match="dtype and device"):
        built = torch.zeros(4, 3, dtype=torch.float64)
        _returning(PairIndices(index0=torch.arange(4), x0=built))(x, x)


# --- no host synchronisation for couplings that need no solver --------------------------------


SYNC_FREE = {
    "independent": IndependentCoupling(),
    "data-dependent": DataDependentCoupling(_half_plus_noise),
}


# (coupling, size of the x0 batch against 12 x1); the data-dependent noise batch has x1's shape
SYNC_CASES = [("independent", 12), ("independent", 5), ("data-dependent", 12)]


@pytest.mark.parametrize(("name", "n0"), SYNC_CASES)
def test_no_host_synchronisation(name, n0):
    x0, x1, y0, y1 = _batches((12, 3), torch.float32)
    x0, y0 = x0[:n0], y0[:n0]
    gen = torch.Generator().manual_seed(0)
    with NoHostSync():
        p = SYNC_FREE[name](x0, x1, y0, (y1, -y1), generator=gen)
        q = SYNC_FREE[name](x0, x1, generator=gen, return_plan=True)
    assert p.x0.shape == q.x0.shape == (12, 3) and p.y1[0] is y1
    with pytest.raises(AssertionError, match="synchronises"):  # the guard has teeth
        with NoHostSync():
            SinkhornCoupling()(x0, x1)  # reads the cost matrix's extremes and mean


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(("name", "n0"), SYNC_CASES)
def test_no_host_synchronisation_cuda(name, n0):
    x0, x1, y0, y1 = _batches((12, 3, 4, 4), torch.float32, "cuda")
    x0, y0 = x0[:n0], y0[:n0]
    gen = torch.Generator(device="cuda").manual_seed(0)
    coupling = SYNC_FREE[name]
    coupling(x0, x1, y0, y1, generator=gen)  # warm-up: lazy initialisation may synchronise
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        p = coupling(x0, x1, y0, y1, generator=gen)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert p.x0.device.type == "cuda" and p.x0.shape == (12, 3, 4, 4)


# --- every concrete public coupling, discovered: repr and pickle --------------------------------


CONCRETE = concrete_subclasses(Coupling)

# constructor arguments of the classes that cannot be built with defaults
CONSTRUCTOR_KWARGS: dict[type[Coupling], dict[str, object]] = {
    SchrodingerBridgeCoupling: {"sigma": 1.0},
    DataDependentCoupling: {"fn": _half_plus_noise},
    ReflowCoupling: {"velocity": _drift, "integrator": RK4(), "steps": 2},
}


def _construct(cls: type[Coupling]) -> Coupling:
    if cls not in CONSTRUCTOR_KWARGS:
        required = [
            p.name
            for p in inspect.signature(cls).parameters.values()
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        if required:
            pytest.fail(
                f"{cls.__name__} needs constructor arguments {required}: add an entry for it "
                "to CONSTRUCTOR_KWARGS in tests/test_coupling.py"
            )
    return cls(**CONSTRUCTOR_KWARGS.get(cls, {}))


def test_discovery_finds_the_concrete_couplings():
    assert {IndependentCoupling, OTCoupling, DataDependentCoupling} <= set(CONCRETE)
    assert not {Coupling, PermutationCoupling, PlanCoupling} & set(CONCRETE)
    # the contract tests above run every discovered class
    assert set(CONCRETE) <= {type(c) for c in COUPLINGS.values()}
    # abstract or final: no concrete coupling subclasses another
    for cls in CONCRETE:
        assert not [base for base in cls.__mro__[1:] if base in CONCRETE], cls


@pytest.mark.parametrize("cls", CONCRETE, ids=lambda cls: cls.__name__)
def test_repr_and_pickle_round_trip(cls):
    coupling = _construct(cls)
    text = repr(coupling)
    assert text.startswith(f"{cls.__name__}(") and text.endswith(")")
    clone = pickle.loads(pickle.dumps(coupling))
    assert type(clone) is cls and repr(clone) == text
    x0, x1, y0, y1 = _batches((12, 3), torch.float64)
    p = coupling(x0, x1, y0, y1, generator=torch.Generator().manual_seed(5), return_plan=True)
    q = clone(x0, x1, y0, y1, generator=torch.Generator().manual_seed(5), return_plan=True)
    assert torch.equal(p.index0, q.index0) and torch.equal(p.index1, q.index1)
    assert torch.equal(p.x0, q.x0) and torch.equal(p.x1, q.x1)
    assert (p.plan is None) == (q.plan is None)
    if p.plan is not None:
        assert torch.equal(p.plan, q.plan)
