"""The certificate's repair rounds: shortest augmenting paths from the last optimal
permutation, against scipy's sparse assignment and POT's network simplex."""

import math

import numpy as np
import ot
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from interpolants.coupling import AuctionSolver, certify_assignment
from interpolants.coupling import _augment as augment_module
from interpolants.coupling import _auto as auto_module
from interpolants.coupling import _certificate as certificate_module
from interpolants.coupling import _sqdist_kernels as sqdist_kernels

pytestmark = pytest.mark.skipif(not auto_module._have_numba(), reason="needs numba")


def _csr(n, rows, cols, cost_matrix):
    """The CSR pair set (sorted, unique columns per row) of the pairs (rows, cols), with
    their costs."""
    indptr, rows, cols = certificate_module._pair_set(n, rows, cols)
    return indptr, cols, cost_matrix[rows, cols]


def _sparse_optimum(n, indptr, cols, cost):
    """The optimal total on the pair set, by scipy (costs shifted to be positive: scipy
    reads a stored zero as a pair)."""
    matrix = csr_matrix((cost + 1.0, cols, indptr), shape=(n, n))
    _, perm = min_weight_full_bipartite_matching(matrix)
    return _total(n, indptr, cols, cost, perm)


def _total(n, indptr, cols, cost, perm):
    """Σ C_i,perm(i) over the pair set (raises where a row's partner is not one of its pairs)."""
    total = 0.0
    for i in range(n):
        pairs = cols[indptr[i] : indptr[i + 1]]
        (where,) = np.nonzero(pairs == perm[i])
        assert where.size == 1, f"row {i} is assigned outside its pairs"
        total += cost[indptr[i] + where[0]]
    return total


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [40, 300])
def test_augmenting_paths_reach_the_optimum_on_the_added_pairs(n, seed):
    # an optimal permutation on a sparse pair set (4 random partners a row and a random
    # permutation), its potentials from the shortest-path kernel; new pairs are added for a
    # third of the rows, which the kernel re-assigns: the total must be scipy's optimum on the
    # enlarged set, and the updated potentials must stay dual feasible on every pair
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((n, 2)), rng.standard_normal((n, 2))
    full = ((x[:, None] - y[None]) ** 2).sum(-1)
    rows = np.r_[np.repeat(np.arange(n), 4), np.arange(n)]
    cols = np.r_[rng.integers(0, n, 4 * n), rng.permutation(n)]
    indptr, cols1, cost1 = _csr(n, rows, cols, full)
    _, perm = min_weight_full_bipartite_matching(csr_matrix((cost1 + 1.0, cols1, indptr)))
    perm = np.asarray(perm, dtype=np.int64)
    v = np.zeros(n)
    potentials = sqdist_kernels._sqdist_kernel("sparse_potentials")
    assert potentials(indptr, cols1, cost1, perm, v, np.zeros(n))
    changed = np.sort(rng.choice(n, n // 3, replace=False))
    extra_rows = np.repeat(changed, 6)
    extra_cols = rng.integers(0, n, extra_rows.size)
    old_rows = np.repeat(np.arange(n), np.diff(indptr))
    indptr2, cols2, cost2 = _csr(
        n, np.r_[old_rows, extra_rows], np.r_[cols1, extra_cols], full
    )  # fmt: skip
    assert _sparse_optimum(n, indptr2, cols2, cost2) < _total(n, indptr, cols1, cost1, perm)
    kernel = augment_module._augment_kernel()
    # each row listed twice: re-assigned once
    assert kernel(indptr2, cols2, cost2, perm, v, np.repeat(changed, 2), 10**9)
    assert sorted(perm.tolist()) == list(range(n))
    optimum = _sparse_optimum(n, indptr2, cols2, cost2)
    # the totals of two optimal permutations, each a sum of n float64 costs of size ~10
    assert abs(_total(n, indptr2, cols2, cost2, perm) - optimum) <= 1e-9 * n
    u = full[np.arange(n), perm] - v[perm]
    reduced = cost2 - u[np.repeat(np.arange(n), np.diff(indptr2))] - v[cols2]
    assert float(reduced.min()) >= -1e-9


def test_a_row_without_a_free_object_is_reported():
    # row 1 loses object 1 and has a pair only to object 0, whose owner has no other pair:
    # no augmenting path exists, and the kernel says so instead of looping or inventing one
    indptr = np.array([0, 1, 2])
    cols = np.array([0, 0])
    cost = np.array([1.0, 1.0])
    kernel = augment_module._augment_kernel()
    assert not kernel(indptr, cols, cost, np.array([0, 1]), np.zeros(2), np.array([1]), 100)


def test_a_repair_past_its_budget_gives_up():
    # a shifted 1-D matching (rows k.. take i − k, rows ..k the last k objects) given
    # zero-cost diagonal pairs for its first k rows: each path runs along the band, ~n²/8
    # labels in all; past the budget the kernel stops (the caller then solves from nothing)
    # instead of finishing quadratically, and with room it reaches the diagonal
    n, k = 2000, 1000
    rows = [np.arange(k), np.arange(k)]
    cols = [np.arange(n - k, n), np.arange(n - k, n)[::-1]]
    for shift in (-1, 0, 1):
        band = np.arange(k, n)
        rows += [band, band]
        cols += [np.clip(band - k + shift, 0, n - 1), np.clip(band + shift, 0, n - 1)]
    full = (np.arange(n)[:, None] - np.arange(n)[None, :]).astype(float) ** 2
    indptr, cols1, cost1 = _csr(n, np.concatenate(rows), np.concatenate(cols), full)
    perm = certificate_module._sparse_lap(indptr, cols1, cost1)
    v = np.zeros(n)
    assert sqdist_kernels._sqdist_kernel("sparse_potentials")(
        indptr, cols1, cost1, perm, v, np.zeros(n)
    )  # fmt: skip
    free = np.arange(k)
    old_rows = np.repeat(np.arange(n), np.diff(indptr))
    indptr2, cols2, cost2 = _csr(n, np.r_[old_rows, free], np.r_[cols1, free], full)
    kernel = augment_module._augment_kernel()
    room = cols2.size + n
    assert not kernel(indptr2, cols2, cost2, perm.copy(), v.copy(), free, 16 * room)
    assert kernel(indptr2, cols2, cost2, perm, v, free, room * room)
    assert float(full[np.arange(n), perm].sum()) == 0.0  # the diagonal


def _mixed_scales(n, seed):
    """Half the points within ~1e-3 of the origin and half at scale 1e3, against N(0, I): the
    small cluster's rows nearly tie, their candidate pairs miss the optimum's, and the
    certificate adds violated pairs over several rounds."""
    rng = np.random.default_rng(seed)
    near = rng.uniform(size=(n, 1)) < 0.5
    x = np.where(near, 1e-3 * rng.standard_normal((n, 2)), 1e3 * rng.standard_normal((n, 2)))
    return x, rng.standard_normal((n, 2))


def _assert_optimal(x, y, out):
    n = x.shape[0]
    cost = ((x[:, None] - y[None]) ** 2).sum(-1)
    assert sorted(out.perm.tolist()) == list(range(n))
    # the certificate's bound 2nδ, plus this matrix's rounding against the solver's
    slack = 2 * n * out.tol + 1e-12 * n * float(np.abs(cost).max())
    assert certify_assignment(cost, out.perm, out.u, out.v) <= slack
    a = np.full(n, 1.0 / n)
    optimum = float(ot.emd2(a, a, cost, numItermax=10**8)) * n
    total = float(cost[np.arange(n), out.perm].sum())
    assert total - optimum <= slack + 2.0**-48 * n * float(np.abs(cost).max())


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_the_certificate_repairs_its_rounds_by_augmenting_paths(seed, monkeypatch):
    # on the mixed scales at n = 512 the certificate takes 3–6 rounds (seeds 2–4); the sparse
    # assignment is solved from nothing once, then each round re-assigns only the rows given
    # new pairs, and the answer is the certified optimum (the small cluster bidding one by
    # one, as the near-identical clusters are disabled: with them its assignment is solved
    # on its own)
    monkeypatch.setattr(AuctionSolver, "cluster_eps", 0.0)
    monkeypatch.setattr(AuctionSolver, "late_bids", math.inf)  # the auction to its last ε
    solves, repairs = [], []
    lap = certificate_module._sparse_lap
    augment = augment_module._augment_kernel()

    def counted_lap(*args):
        solves.append(args[0].shape[0] - 1)
        return lap(*args)

    def counted_augment(*args):
        repairs.append(augment(*args))
        return repairs[-1]

    monkeypatch.setattr(certificate_module, "_sparse_lap", counted_lap)
    monkeypatch.setattr(certificate_module, "_augment_kernel", lambda: counted_augment)
    x, y = _mixed_scales(512, seed)
    out = AuctionSolver().certified_points(x, y)
    _assert_optimal(x, y, out)
    assert solves == [512]
    assert len(repairs) >= 2 and all(repairs)


def test_a_failed_repair_solves_the_round_from_nothing(monkeypatch):
    # a repair that reports no perfect matching leaves the round to the sparse assignment
    # solved from nothing, as before the repairs: the same certified optimum
    solves = []
    lap = certificate_module._sparse_lap

    def counted_lap(*args):
        solves.append(args[0].shape[0] - 1)
        return lap(*args)

    monkeypatch.setattr(certificate_module, "_sparse_lap", counted_lap)
    monkeypatch.setattr(certificate_module, "_augment_kernel", lambda: lambda *args: False)
    x, y = _mixed_scales(512, 3)
    _assert_optimal(x, y, AuctionSolver().certified_points(x, y))
    assert len(solves) >= 3


@pytest.mark.parametrize("seed", [0, 1])
def test_pair_set_matches_numpy_unique(seed):
    """The pair set's sort-and-compare dedupe gives exactly ``np.unique``'s sorted keys, and
    row pointers that index them by row."""
    rng = np.random.default_rng(seed)
    n = 300
    rows, cols = rng.integers(0, n, 5000), rng.integers(0, n, 5000)
    indptr, got_rows, got_cols = certificate_module._pair_set(n, rows, cols)
    keys = np.unique(cols + rows * n)
    assert np.array_equal(got_rows * n + got_cols, keys)
    assert np.array_equal(indptr, np.searchsorted(keys // n, np.arange(n + 1)))
