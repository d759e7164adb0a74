"""Near-identical rows in the point auction: isolated tight clusters bid as one source and
their own assignment is solved on its own (``interpolants.coupling._clusters``)."""

import warnings

import numpy as np
import pytest

from interpolants.coupling import AuctionSolver, certify_assignment
from interpolants.coupling import _auction as auction_module
from interpolants.coupling import _clusters as clusters_module
from interpolants.coupling import _point_start as point_start_module
from interpolants.coupling._certificate import _sqdist_matrix
from interpolants.coupling._clusters import _coarse_clusters, _dense_cores, _near_clusters
from test_coupling_augment import _mixed_scales
from test_coupling_points import _assert_certified_optimum, _spy_auction


def test_near_clusters_are_the_isolated_tight_sets():
    # 400 N(0, I) points and four sets of 40 within 1e-7 of a centre, bound 1e-5: one set
    # straddles a cell corner of both grids' first (it stays one cluster), one has a stray
    # point 1.5e-5 from its centre (not isolated), one is spread over 1e-4 (wider than the
    # bound): two clusters, and the ordinary points in none
    rng = np.random.default_rng(0)
    bound = 1e-5
    cell = bound / (2.0 * np.sqrt(2.0))
    centres = np.array([[3.0, 3.0], [700 * cell, -400 * cell], [-3.0, 3.0], [3.0, -3.0]])
    sets = [c + 1e-7 * rng.standard_normal((40, 2)) for c in centres[:3]]
    sets.append(centres[3] + 1e-4 * rng.standard_normal((40, 2)))
    stray = centres[2] + [1.5e-5, 0.0]
    points = np.concatenate([5.0 * rng.standard_normal((400, 2)), *sets, stray[None]])
    labels = _near_clusters(points, bound, 16)
    assert labels is not None
    assert (labels[:400] == -1).all() and (labels[480:] == -1).all()
    for block in (labels[400:440], labels[440:480]):  # one label each, distinct
        assert (block >= 0).all() and np.unique(block).size == 1
    assert labels[400] != labels[440]
    # ordinary points: no cluster at all
    assert _near_clusters(rng.standard_normal((4096, 2)), bound, 16) is None


def test_wide_clusters_are_the_large_isolated_sets():
    # a core of 900 points at scale 1e-3 in a halo of 100 at scale 1 is one wide cluster (a
    # reach of ~4e-3 against the fine bound 1e-5); a tight cluster found at the fine bound
    # stays as it is; a core of 30 (below `least`) is none, and neither is a core that a
    # shoulder of points at every scale from 1e-3 to 1 joins to the halo (not isolated)
    rng = np.random.default_rng(3)
    core = 1e-3 * rng.standard_normal((900, 2))
    halo = rng.standard_normal((100, 2))
    tight = 5.0 + 1e-7 * rng.standard_normal((50, 2))
    points = np.concatenate([core, halo, tight])
    fine = _near_clusters(points, 1e-5, 16)
    assert fine is not None and (fine[1000:] == 0).all() and (fine[:1000] == -1).all()
    labels = _coarse_clusters(points, fine, 1e-5, 0.05, 64)
    assert labels is not None
    assert (labels[1000:] == 0).all()  # the tight cluster, unchanged
    assert (labels[:900] == 1).all() and (labels[900:1000] == -1).all()
    small = np.concatenate([core[:30], halo, tight])
    assert _coarse_clusters(small, None, 1e-5, 0.05, 64) is None
    radius = 10.0 ** rng.uniform(-3, 0, 300)
    angle = rng.uniform(0, 2 * np.pi, 300)
    shoulder = radius[:, None] * np.c_[np.cos(angle), np.sin(angle)]
    assert _coarse_clusters(np.concatenate([core, shoulder, halo]), None, 1e-5, 0.05, 64) is None
    # the same core in three dimensions
    core3 = 1e-3 * rng.standard_normal((900, 3))
    labels3 = _coarse_clusters(
        np.concatenate([core3, rng.standard_normal((100, 3))]), None, 1e-5, 0.05, 64
    )
    assert labels3 is not None and (labels3[:900] == 0).all() and (labels3[900:] == -1).all()


def test_an_isolated_set_is_found_whose_edge_is_not_linked():
    # a core of 900 points at scale 1e-3 in a halo of 100 at scale 1, in 8 dimensions: most
    # of the core's points share grid cells, but its sparse edge points have cells of their
    # own (unlinked to the rest) at the reaches up to 0.025 (~2.5 times the core's diameter);
    # the set is the ball about a seed of the linked part, so the whole core is one cluster
    # (taking each component as the set, none was: its edge lay in the component's ring)
    rng = np.random.default_rng(7)
    core = 1e-3 * rng.standard_normal((900, 8))
    points = np.concatenate([core, rng.standard_normal((100, 8))])
    points -= points.mean(axis=0)  # the centred points, as the auction's (core off-centre)
    labels = _coarse_clusters(points, None, 1e-5, 0.025, 64)
    assert labels is not None
    assert (labels[:900] == 0).all() and (labels[900:] == -1).all()
    # a shoulder of points at every scale from 1e-3 to 1 joins the core to the halo: no ball
    # about a seed has an empty ring, so no cluster
    radius = 10.0 ** rng.uniform(-3, 0, 300)
    unit = rng.standard_normal((300, 8))
    shoulder = radius[:, None] * unit / np.linalg.norm(unit, axis=1, keepdims=True)
    joined = np.concatenate([core, shoulder, rng.standard_normal((100, 8))])
    assert _coarse_clusters(joined, None, 1e-5, 0.025, 64) is None


def test_two_separate_clumps_in_one_ball_are_two_clusters():
    # clumps of 400 and 100 points at scale 1e-3, 0.45 apart, far from a halo: at reach 0.6
    # one ball about either seed holds both with an empty ring, but neither seed's linked
    # points hold 15/16 of it (cells of side 0.21 cannot bridge the gap), so it is no
    # cluster; at reach 0.1 each clump is one
    rng = np.random.default_rng(8)
    clumps = [
        1e-3 * rng.standard_normal((400, 2)),
        [0.45, 0.0] + 1e-3 * rng.standard_normal((100, 2)),
    ]
    halo = 10.0 + rng.standard_normal((200, 2))
    points = np.concatenate([*clumps, halo])
    assert _near_clusters(points, 0.6, 64) is None
    labels = _near_clusters(points, 0.1, 64)
    assert labels is not None and (labels[500:] == -1).all()
    assert np.unique(labels[:400]).size == 1 and np.unique(labels[400:500]).size == 1
    assert labels[0] >= 0 and labels[400] >= 0 and labels[0] != labels[400]


def test_a_wide_cluster_takes_in_a_minority_of_tight_ones():
    # 21 copies of a core point (and a sub-core of 200 within 1e-6) are tight clusters inside
    # the core: the core takes them in (a tenth and a fifth of its rows) and is one cluster,
    # whose own problem finds them again; two tight clusters of 300 points 1e-3 apart, all
    # of a wider set, stay two (the wider bound would join atoms)
    rng = np.random.default_rng(4)
    core = 1e-3 * rng.standard_normal((900, 2))
    core[:21] = core[21]
    core[100:300] = core[100] + 1e-7 * rng.standard_normal((200, 2))
    halo = rng.standard_normal((100, 2))
    atoms = np.concatenate(
        [3.0 + 1e-8 * rng.standard_normal((300, 2)), 3.001 + 1e-8 * rng.standard_normal((300, 2))]
    )
    points = np.concatenate([core, halo, atoms])
    fine = _near_clusters(points, 1e-6, 16)
    assert fine is not None and np.unique(fine[:900]).size == 3  # the copies, the sub-core, −1
    labels = _coarse_clusters(points, fine, 1e-6, 0.05, 64)
    assert labels is not None and np.unique(labels[:900]).size == 1 and labels[0] >= 0
    assert (labels[900:1000] == -1).all()
    assert (labels[1000:1300] == fine[1000]).all() and (labels[1300:] == fine[1300]).all()
    assert fine[1000] != fine[1300] and labels[1000] != labels[0]


def test_the_solver_settings_turn_the_clusters_off():
    # cluster_eps = 0 turns every cluster off (the retry without clusters), wide_cluster_span
    # = 0 the wide ones only: the core in a halo is then no cluster
    x, y = _core_and_halo(2048, 0)
    xs, ys = x - x.mean(axis=0), y - y.mean(axis=0)
    solver = AuctionSolver()
    span = point_start_module._typical_range(solver, xs, ys)[0]
    labels = point_start_module._row_clusters(solver, xs, ys, span)
    assert labels is not None and np.count_nonzero(labels >= 0) >= 0.9 * 2048
    for name in ("cluster_eps", "wide_cluster_span"):
        off = AuctionSolver()
        setattr(off, name, 0.0)
        assert point_start_module._row_clusters(off, xs, ys, span) is None


def _core_and_halo(n, seed, dim=2):
    """Both sets N(0, 1e-6 I) but for about 5 % of their points, N(0, I)."""
    rng = np.random.default_rng(seed)
    sets = []
    for _ in range(2):
        points = 1e-3 * rng.standard_normal((n, dim))
        halo = rng.uniform(size=n) < 0.05
        points[halo] = rng.standard_normal((int(halo.sum()), dim))
        sets.append(points)
    return sets[0], sets[1]


@pytest.mark.parametrize(("seed", "dim"), [(0, 2), (1, 2), (2, 2), (0, 8)])
def test_a_dense_core_in_a_sparse_halo_is_solved_as_a_cluster(seed, dim, monkeypatch):
    # both sets almost all in one disc of ~3e-3 with 5 % of their points at scale 1, n = 2048:
    # the halo sets the auction's ε (~1e-6, the core's whole range of costs), so the core's
    # rows bid blind: 85k–446k bids at n (seeds 0–3 measured) and the certificate repaired
    # nearly every row (at n = 8192 it gave up: the matrix, 180 s). The core is a wide
    # cluster: it bids as one source (13k–53k bids) and its own problem, at its own scale, is
    # solved apart. In 8 dimensions the core's sparse edge points share no grid cell with
    # the rest: as a group of linked points it was never isolated (no cluster: 0.8–1.0 s at
    # n = 2048, 28–30 s at n = 8192); as the ball about a seed it is one wide cluster
    n = 2048
    sizes, bids = _solved_with_sizes(*_core_and_halo(n, seed, dim), monkeypatch)
    assert any(0.9 * n <= size < n for size in sizes)  # the core's own problem
    assert bids <= 32 * n


def _core_and_shoulder(n, rng, centre=(0.0, 0.0), core=0.8):
    """``core`` of the points at radius |N(0, 1e-6)| about ``centre``, the rest at radii
    log-uniform from 1e-3 to 1: a dense core that a shoulder of points joins to the rest."""
    small = rng.uniform(size=n) < core
    radius = np.where(small, 1e-3 * np.abs(rng.standard_normal(n)), 10.0 ** rng.uniform(-3, 0, n))
    angle = rng.uniform(0, 2 * np.pi, n)
    return np.asarray(centre) + radius[:, None] * np.c_[np.cos(angle), np.sin(angle)]


def test_dense_cores_are_the_shared_cores_that_a_shoulder_joins():
    # a core of 80 % in a shoulder at every scale (not isolated: no wide cluster), against
    # the same kind moved by (5, -3) (a translation changes C by row and column constants):
    # one core, all but a few of the 800 core points and none beyond 0.05 of the centre
    rng = np.random.default_rng(6)
    points = _core_and_shoulder(1000, rng)
    others = _core_and_shoulder(1000, rng, centre=(5.0, -3.0))
    assert _coarse_clusters(points, None, 1e-5, 0.05, 64) is None
    labels = _dense_cores(points, others, 1e-5, 0.05, 64)
    assert labels is not None and set(labels.tolist()) == {-1, 0}
    radius = np.sqrt(np.square(points).sum(axis=1))
    assert np.count_nonzero(labels[radius <= 1e-3] == 0) >= 0.95 * np.count_nonzero(radius <= 1e-3)
    assert (labels[radius > 0.05] == -1).all()
    # two such cores in each set (a median centre would fall between them): two labels
    pairs = [
        np.concatenate([_core_and_shoulder(500, rng, (c, 0.0)) for c in (-1.0, 1.0)])
        for _ in range(2)
    ]
    two = _dense_cores(*pairs, 1e-5, 0.05, 64)
    assert two is not None and set(two.tolist()) == {-1, 0, 1}
    assert np.unique(two[:500][two[:500] >= 0]).size == 1
    assert np.unique(two[500:][two[500:] >= 0]).size == 1
    assert two[:500].max() != two[500:].max()
    # no core of the objects to match (N(0, I)), or one that holds all of them at every
    # reach (a blob of 1e-7 against 95 % of the points in it): none
    assert _dense_cores(points, rng.standard_normal((1000, 2)), 1e-5, 0.05, 64) is None
    blob = 1e-7 * rng.standard_normal((1000, 2))
    most = np.concatenate([blob[:950], 10.0 ** rng.uniform(-3, 0, (50, 1)) * [[1.0, 0.0]]])
    assert _dense_cores(most, blob, 1e-5, 0.05, 64) is None


def test_a_cell_whose_median_is_beyond_reach_of_its_points_holds_no_ball():
    # four points at the corners of one cell of side 4·reach: their coordinate-wise median
    # (2, 2) lies 2.7 reaches from each, so no point is within reach of it. No ball there,
    # and no "mean of empty slice" from a median of nothing (found on Pareto tails in 3-D);
    # the dense ball of 50 points beside them is still found
    rng = np.random.default_rng(0)
    corners = np.array([[0.1, 0.1], [0.1, 3.9], [3.9, 0.1], [3.9, 3.9]])
    ball = np.array([100.0, 100.0]) + 0.1 * rng.standard_normal((50, 2))
    cloud = np.concatenate([corners, ball, 1e4 * rng.standard_normal((60, 2))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = clusters_module._balls(cloud, np.arange(cloud.shape[0]), 1.0, 2)
    assert len(found) == 1
    inside, count, shell = found[0]
    assert count == 50 and shell == 0 and inside[4:54].all() and not inside[:4].any()


def test_a_dense_core_is_found_beside_a_tight_cluster():
    # the core in a shoulder on both sides and, apart from it, 16 copies of one far row: the
    # copies are a tight cluster, and the core is found as well (found in review: the dense
    # cores were first looked for only where no other cluster was)
    rng = np.random.default_rng(9)
    x, y = _core_and_shoulder(2048, rng), _core_and_shoulder(2048, rng)
    x[:16] = [3.0, 3.0]
    xs, ys = x - x.mean(axis=0), y - y.mean(axis=0)
    solver = AuctionSolver()
    span = point_start_module._typical_range(solver, xs, ys)[0]
    labels = point_start_module._row_clusters(solver, xs, ys, span)
    assert labels is not None and (labels[:16] == labels[0]).all() and labels[0] >= 0
    core = np.sqrt(np.square(x[16:]).sum(axis=1)) <= 1e-3
    assert np.unique(labels[16:][core]).size == 1 and labels[16:][core][0] not in (-1, labels[0])


def test_the_bulk_of_a_heavy_tail_is_no_dense_core(monkeypatch):
    # Cauchy against Cauchy: at reaches of ~10, 90 % of each set lies within r and the shell
    # r..2r holds under an eighth as many, but the rest lies a few times r away (a power-law
    # tail), not far beyond it: no core. Without that test the bulk would be one
    cauchy = [np.random.default_rng(seed).standard_cauchy((4096, 2)) for seed in (7, 8)]
    assert _dense_cores(*cauchy, 1e-3, 30.0, 256) is None
    monkeypatch.setattr(clusters_module, "_APART", 0.0)
    assert _dense_cores(*cauchy, 1e-3, 30.0, 256) is not None


@pytest.mark.parametrize("seed", [1, 2])
def test_a_dense_core_in_a_shoulder_is_solved_as_a_cluster(seed, monkeypatch):
    # both sets 80 % within ~3e-3 and 20 % at every scale from 1e-3 to 1, n = 2048: the
    # shoulder sets ε, the core's rows bid blind (143k–486k bids at n over seeds 0–3) and
    # the core is not isolated (no wide cluster). As a dense core shared by both sets it
    # bids as one source (56k–118k bids) and its own problem is solved apart
    n = 2048
    rng = np.random.default_rng(seed)
    x, y = _core_and_shoulder(n, rng), _core_and_shoulder(n, rng)
    sizes, bids = _solved_with_sizes(x, y, monkeypatch)
    assert any(0.75 * n <= size < 0.95 * n for size in sizes)  # the core's own problem
    assert bids <= 48 * n


def _solved_with_sizes(x, y, monkeypatch):
    """Solve, check the certified optimum; (the sizes of every problem solved, recursion
    included; the bids of the auctions at the top level's size)."""
    calls = _spy_auction(monkeypatch)
    sizes = []
    solve = AuctionSolver.certified_points

    def recording(self, a, b):
        sizes.append(a.shape[0])
        return solve(self, a, b)

    monkeypatch.setattr(AuctionSolver, "certified_points", recording)
    out = AuctionSolver().certified_points(x, y)
    _assert_certified_optimum(x, y, out)
    n = x.shape[0]
    return sizes, sum(bids for size, *_, bids in calls if size == n)


def _no_matrix(*args, **kwargs):
    raise AssertionError("the matrix path ran")


def _certified_without_the_matrix(x, y, monkeypatch):
    """Solve with the matrix path forbidden; the permutation, its certified gap and its
    potentials checked over every pair (no emd2 at this size)."""
    n = x.shape[0]
    with monkeypatch.context() as patch:
        patch.setattr(AuctionSolver, "certified", _no_matrix)
        out = AuctionSolver().certified_points(x, y)
    cost = _sqdist_matrix(x, y)
    assert sorted(out.perm.tolist()) == list(range(n))
    assert out.gap <= 2 * n * out.tol
    slack = 2 * n * out.tol + 1e-12 * n * float(cost.max())
    assert certify_assignment(cost, out.perm, out.u, out.v) <= slack
    return out


def _atoms(n, side, seed=0):
    """One set on 10 points 3·N(0, I) with a jitter of 1e-6, the other N(0, I)."""
    rng = np.random.default_rng(seed)
    centres = 3.0 * rng.standard_normal((10, 2))
    x = centres[rng.integers(0, 10, n)] + 1e-6 * rng.standard_normal((n, 2))
    y = rng.standard_normal((n, 2))
    return (x, y) if side == "x0" else (y, x)


@pytest.mark.parametrize("side", ["x0", "x1"])
def test_jittered_atoms_are_solved_without_the_matrix(side, monkeypatch):
    # n = 4096, one set on 10 atoms jittered by 1e-6 (distinct points: not the transportation
    # problem, and not identical rows): the rows of an atom differ by ~1e-5 in their values,
    # about the auction's last ε, so its candidate lists missed the optimum's pairs within an
    # atom and the sparse certificate gave up: the matrix path, 6–13 s (33 s at n = 8192).
    # As clusters (on the transposed problem for x1), each atom's own assignment is solved
    # apart: ~0.5 s, on the sparse path
    _certified_without_the_matrix(*_atoms(4096, side), monkeypatch)


def test_clusters_within_a_cluster_are_found_in_its_own_problem(monkeypatch):
    # 4000 of 4096 rows on ten atoms 1e-5 apart, each jittered by 1e-11, against N(0, I):
    # the 4000 rows are one cluster, and in its own problem the atoms are clusters again
    # (solving that problem without clusters took the matrix path: 16 s)
    rng = np.random.default_rng(5)
    y = rng.standard_normal((4096, 2))
    atoms = 1e-5 * rng.standard_normal((10, 2))
    inner = atoms[rng.integers(0, 10, 4000)] + 1e-11 * rng.standard_normal((4000, 2))
    x = np.concatenate([inner, 3.0 * rng.standard_normal((96, 2))])
    _certified_without_the_matrix(x, y, monkeypatch)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_tight_cluster_bids_as_one_source(seed, monkeypatch):
    # the mixed scales (half of x0 within ~1e-3 of the origin, half at scale 1e3, against
    # N(0, I)), n = 1024: the small cluster's rows are near-identical for all but the last
    # phases, and bidding one by one they outbid one another, 116k–205k bids in the auction
    # at n (seeds 0–3); as one source, 32k–46k, and its assignment is solved on its own
    calls = _spy_auction(monkeypatch)
    n = 1024
    x, y = _mixed_scales(n, seed)
    out = AuctionSolver().certified_points(x, y)
    _assert_certified_optimum(x, y, out)
    assert sum(bids for size, *_, bids in calls if size == n) <= 60 * n


def _refusing_the_first_start(monkeypatch, n, record):
    """The certificate refuses the first start of ``n`` points; each run of step 1 is recorded
    as ``record``(the solver, its points, its shortcuts list after it). Returns (a list that
    holds True once a start was refused, the records)."""
    refused, records = [], []
    certify = auction_module._certify_points
    prices = auction_module._point_prices

    def refuse_first(x, *args):
        if not refused and x.shape[0] == n:
            refused.append(True)
            return None
        return certify(x, *args)

    def recording(self, x, y, shortcuts=None):
        out = prices(self, x, y, shortcuts)
        records.append(record(self, x, shortcuts))
        return out

    monkeypatch.setattr(auction_module, "_certify_points", refuse_first)
    monkeypatch.setattr(auction_module, "_point_prices", recording)
    return refused, records


def test_a_clustered_start_that_cannot_settle_is_solved_again_without_clusters(monkeypatch):
    # the certificate refusing the clustered start: the solve is repeated without clusters
    # (not the matrix), and the answer is the certified optimum
    refused, clusters = _refusing_the_first_start(
        monkeypatch,
        1024,
        lambda solver, x, shortcuts: (x.shape[0], solver.cluster_eps > 0.0, bool(shortcuts)),
    )
    monkeypatch.setattr(AuctionSolver, "certified", _no_matrix)
    x, y = _mixed_scales(1024, 0)
    out = AuctionSolver().certified_points(x, y)
    monkeypatch.undo()
    _assert_certified_optimum(x, y, out)
    assert refused == [True]
    top = [entry for entry in clusters if entry[0] == 1024]
    assert top == [(1024, True, True), (1024, False, False)]


def test_the_nearest_pairs_kernel_agrees_with_a_sort():
    # each row's k least ‖x_i − y_j‖² − v_j, in increasing order, as a full sort gives them
    from interpolants.coupling._sqdist_kernels import _sqdist_kernel

    rng = np.random.default_rng(5)
    x, y, v = rng.standard_normal((50, 3)), rng.standard_normal((70, 3)), rng.standard_normal(70)
    out = np.empty((50, 12), dtype=np.int64)
    _sqdist_kernel("sqdist_nearest")(x, y, v, out)
    reduced = _sqdist_matrix(x, y) - v
    assert np.array_equal(out, np.argsort(reduced, axis=1, kind="stable")[:, :12])
