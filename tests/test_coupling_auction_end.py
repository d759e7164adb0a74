"""The point auction's early end in a late price war, its warm prices about their median, the
centre of a heavy-tailed set, and the frame its values are taken in."""

import math

import numpy as np
import pytest

from interpolants.coupling import AuctionSolver, certify_assignment
from interpolants.coupling._balance import _centre
from interpolants.coupling._certificate import _sqdist_matrix
from test_coupling_clusters import _certified_without_the_matrix, _refusing_the_first_start
from test_coupling_points import _spy_auction, _spy_capped_rounds


def _spy_runs(monkeypatch):
    """Record every run of the point auction as (n, its prices before, its last ε asked, the
    ε it ended at, its bids)."""
    return _spy_auction(
        monkeypatch, lambda x, yy, before, out, rest: (x.shape[0], before, rest[2], out[3], out[4])
    )


def _corners(n, seed):
    """Rows Beta(0.1, 0.1) in each coordinate (crowded at the square's edges and corners at
    every scale down to 10⁻¹⁰), objects uniform on the square."""
    rng = np.random.default_rng(seed)
    return rng.beta(0.1, 0.1, (n, 2)), rng.random((n, 2))


@pytest.mark.parametrize("seed", [0, 1])
def test_a_late_price_war_ends_the_auction_at_a_coarser_eps(seed, monkeypatch):
    # the rows crowded at the corners bid against one another by a few ε in the last phases
    # (~20 bids a point in each, against 5–8 on N(0, I); the threshold 8 here, the default 16
    # sits near them at this size): the auction ends a phase early (its ε above the last one
    # asked, by the scaling factor at least), with fewer bids than run to the end, and the
    # answer is the certified optimum
    monkeypatch.setattr(AuctionSolver, "late_bids", 8)
    x, y = _corners(2048, seed)
    runs = _spy_runs(monkeypatch)
    out = _certified_without_the_matrix(x, y, monkeypatch)
    top = [run for run in runs if run[0] == 2048]
    assert len(top) == 1
    assert top[0][3] >= AuctionSolver().point_scaling * top[0][2]
    runs.clear()
    monkeypatch.setattr(AuctionSolver, "late_bids", math.inf)
    full = _certified_without_the_matrix(x, y, monkeypatch)
    top_full = [run for run in runs if run[0] == 2048]
    assert top_full[0][3] == pytest.approx(top_full[0][2])  # to the last ε
    assert top[0][4] < 0.9 * top_full[0][4]
    totals = np.square(x - y[out.perm]).sum(), np.square(x - y[full.perm]).sum()
    assert abs(totals[0] - totals[1]) <= 2 * 2048 * (out.tol + full.tol)


def test_a_start_that_ended_early_and_cannot_settle_is_solved_again_to_the_last_eps(
    monkeypatch,
):
    # the certificate refusing the early-ended start (no clusters here): the solve is repeated
    # with the auction run to its last ε (not the matrix), and the answer is the optimum
    monkeypatch.setattr(AuctionSolver, "cluster_eps", 0.0)
    monkeypatch.setattr(AuctionSolver, "late_bids", 8)
    x, y = _corners(2048, 0)
    refused, settings = _refusing_the_first_start(
        monkeypatch, 2048, lambda solver, points, _: (points.shape[0], solver.late_bids)
    )
    runs = _spy_runs(monkeypatch)
    _certified_without_the_matrix(x, y, monkeypatch)
    assert refused == [True]
    assert [s for s in settings if s[0] == 2048] == [(2048, 8), (2048, math.inf)]
    top = [run for run in runs if run[0] == 2048]
    assert top[0][3] > top[0][2]  # the first ended early
    assert top[1][3] == pytest.approx(top[1][2])  # the retry to its last ε


def test_the_early_end_is_no_shortcut_when_the_phases_are_cheap(monkeypatch):
    # N(0, I) pairs: every phase costs a few bids a row, and the auction runs to its last ε
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((2048, 2)), rng.standard_normal((2048, 2))
    runs = _spy_runs(monkeypatch)
    _certified_without_the_matrix(x, y, monkeypatch)
    top = [run for run in runs if run[0] == 2048]
    assert top[0][3] == pytest.approx(top[0][2])


def _levy_without_the_top_matrix(seed, monkeypatch):
    """Solve Lévy-tailed rows (±1/z²) against N(0, I), n = 4096, with the 4096 × 4096 matrix
    path recorded (the quarters' cold starts may take theirs, 1024 × 1024); assert it was not
    taken and the answer is certified over every pair."""
    rng = np.random.default_rng(seed)
    n = 4096
    x = np.sign(rng.standard_normal((n, 2))) / rng.standard_normal((n, 2)) ** 2
    y = rng.standard_normal((n, 2))
    matrices = []
    certified = AuctionSolver.certified

    def recording(self, cost, **kwargs):
        matrices.append(cost.shape[0])
        return certified(self, cost, **kwargs)

    monkeypatch.setattr(AuctionSolver, "certified", recording)
    out = AuctionSolver().certified_points(x, y)
    assert n not in matrices
    slack = 2 * n * out.tol
    assert certify_assignment(_sqdist_matrix(x, y), out.perm, out.u, out.v) <= slack


def test_warm_prices_sharing_a_large_constant_are_taken_about_their_median(monkeypatch):
    # Lévy-tailed rows (1/z², up to ~10⁹) against N(0, I): the quarter's potentials share a
    # far row's ‖x_i‖² (~10¹¹ in the auction's units), whose float64 rounding hid rises of ε
    # and sent the solve to the n × n matrix; about their median they resolve them (the
    # certificate checked over every pair)
    runs = _spy_runs(monkeypatch)
    _levy_without_the_top_matrix(1, monkeypatch)
    warm = next(run[1] for run in runs if run[0] == 4096)
    spread = np.quantile(warm, 0.99) - np.quantile(warm, 0.01)
    assert abs(np.median(warm)) <= 1e-9 * spread


def test_a_heavy_tails_centre_is_its_median_where_its_mean_lies_far_from_the_bulk():
    # N(0, I), lognormal and log-uniform radii keep their means (within 2¹⁷ interquartile
    # ranges of the median); Lévy-tailed points, whose mean a point at ~10¹¹ sets ~10⁷ from
    # the bulk, are centred at their median
    rng = np.random.default_rng(0)
    gauss = rng.standard_normal((4096, 2))
    directions = gauss / np.linalg.norm(gauss, axis=1)[:, None]
    radii = 10.0 ** rng.uniform(-4, 4, 4096)[:, None] * directions
    for points in (gauss, rng.lognormal(0, 2, (4096, 2)), radii):
        np.testing.assert_array_equal(_centre(points), points.mean(axis=0))
    levy = rng.choice([-1.0, 1.0], (4096, 2)) / rng.standard_normal((4096, 2)) ** 2
    levy[0] = 3e11
    np.testing.assert_array_equal(_centre(levy), np.median(levy, axis=0))


def test_levy_tails_settle_on_the_sparse_path_about_their_median(monkeypatch):
    # Lévy-tailed rows (a point at ~6·10¹¹) against N(0, I): centred at the means (~4·10⁷
    # from both bulks) the potentials were ~10¹⁶, rounded by ~2 where the bulk's rows differ
    # by ~1, and the first certificate found 4022 rows violated (289k pairs: the matrix);
    # about the medians it settles from the points, certified over every pair
    _levy_without_the_top_matrix(6, monkeypatch)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_list_build_from_a_guessed_gap_ranks_the_smallest(dtype):
    """``_smallest_below`` returns exactly the m smallest values of a row (ties, objects
    masked to +inf), or −1 where three tries of its gap hold fewer than m or more than 8m
    values (the caller then ranks the whole row)."""
    pytest.importorskip("numba")
    from interpolants.coupling import _point_kernels as kernels

    assert kernels._point_kernel("point_auction") is not None  # compiles the helpers
    rng = np.random.default_rng(3)
    n, m = 1000, 17
    itype = np.int32 if dtype == np.float32 else np.int64
    buf = np.empty(n + 1, dtype)
    keys = buf.view(itype)
    hv, hi, idx = np.empty(m), np.empty(m, np.int64), np.empty(n, np.int64)
    values = np.round(rng.exponential(size=n), 3).astype(dtype)  # ties from the rounding
    values[rng.choice(n, 100, replace=False)] = np.inf  # a group's own objects, masked
    ordered = np.sort(values.astype(np.float64))
    low, spread = ordered[0], ordered[m - 1] - ordered[0]
    for gap in (spread, 0.3 * spread, 3.0 * spread):
        buf[:n] = values
        assert kernels._smallest_below(buf, keys, low, gap, hv, hi, idx) == m
        assert np.array_equal(hv, ordered[:m])  # sorted, the m smallest
        assert np.unique(hi).size == m and np.array_equal(values[hi].astype(np.float64), hv)
        assert np.array_equal(buf[:n], values)  # the row's values untouched
    for gap in (1e-9 * spread, 1e3 * spread):  # 8x either way is not enough
        buf[:n] = values
        assert kernels._smallest_below(buf, keys, low, gap, hv, hi, idx) == -1


@pytest.mark.parametrize("kind", ["levy", "lognormal"])
def test_guessed_list_builds_keep_the_optimum(kind):
    """The auction with list builds from a guessed gap (the default) and ranking every block
    (``list_gap = 0``) reach optimal permutations of one total, certified, on heavy-tailed
    points where the lists are rebuilt tens of thousands of times."""
    rng = np.random.default_rng(5)
    n = 2048
    if kind == "levy":
        x = np.sign(rng.standard_normal((n, 2))) / np.square(rng.standard_normal((n, 2)))
    else:
        x = rng.lognormal(0.0, 2.0, (n, 2))
    y = rng.standard_normal((n, 2))
    totals = []
    for gap in (AuctionSolver.list_gap, 0.0):
        solver = AuctionSolver()
        solver.list_gap = gap
        out = solver.certified_points(x, y)
        assert sorted(out.perm.tolist()) == list(range(n))
        assert out.gap <= 2 * n * out.tol
        totals.append(float(np.square(x - y[out.perm]).sum()))
    assert AuctionSolver.list_gap > 0.0
    assert math.isclose(totals[0], totals[1], rel_tol=1e-12, abs_tol=4 * n * out.tol)


def _levy_rows(n, seed):
    """Lévy-tailed rows (±1/z² in each coordinate) and N(0, I) objects."""
    rng = np.random.default_rng(seed)
    x = rng.choice([-1.0, 1.0], (n, 2)) / rng.normal(size=(n, 2)) ** 2
    return x, rng.normal(size=(n, 2))


def _last_run_settles_without_the_matrix(x, y, monkeypatch):
    runs = _spy_auction(monkeypatch, lambda x, yy, before, out, rest: (x.shape[0], x.dtype, out[2]))
    _certified_without_the_matrix(x, y, monkeypatch)
    # float64 resolved the bids down to the last ε
    assert runs[-1] == (x.shape[0], np.float64, True)


def test_prices_sharing_a_large_constant_from_a_cold_start_keep_resolving_eps(monkeypatch):
    # n = 700 (a cold start, at a quarter of the whole range of C, ~10¹¹ in the auction's
    # units): every price rises by many coarse ε, and their common part rounded the late
    # rises of ε away, so that float64 gave up too and the solve took the matrix; with that
    # part taken off it settles from the points, certified over every pair
    _last_run_settles_without_the_matrix(*_levy_rows(700, 71), monkeypatch)


def test_a_float64_run_takes_its_frame_again_before_it_gives_up(monkeypatch):
    # n = 1024 (a cold start from ~10¹⁵): the prices move far from those the float64 run's
    # frame was set for, its shared parts and offsets spread too wide to resolve ε, and it
    # gave up (the matrix); taken again about the prices reached, the frame resolves ε to
    # the last phase
    _last_run_settles_without_the_matrix(*_levy_rows(1024, 30), monkeypatch)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_frame_keeps_every_rows_values_non_negative_and_near_zero(dtype):
    """``_narrower_frame`` takes w about the median of ‖y_j‖² + p_j and each row's offset at its
    least value (the values then start at 0 up to a few roundings, ≥ 0 as prices rise);
    ``_rebase`` takes the prices' least value off them and the thresholds, leaving
    p_j − pmin and so the values unchanged."""
    pytest.importorskip("numba")
    from interpolants.coupling import _point_kernels as kernels
    from interpolants.coupling import _point_values as values

    assert kernels._point_kernel("point_auction") is not None  # compiles the helpers
    rng = np.random.default_rng(4)
    n = 600
    itype = np.int32 if dtype == np.float32 else np.int64
    x = rng.standard_normal((n, 2)).astype(dtype)
    y = rng.standard_normal((n, 2)).astype(dtype)
    ym2 = np.ascontiguousarray(-2.0 * y.T, dtype=dtype)
    yy = np.square(y.astype(np.float64)).sum(axis=1)
    prices = 1e3 + 50.0 * rng.standard_normal(n)
    w, off = np.empty(n, dtype), np.empty(n, dtype)
    buf = np.empty(n + 1, dtype)
    keys = buf.view(itype)
    buf[n] = np.inf
    bmin = np.empty(-(-n // values._BLOCK), itype)
    roundoff = float(np.finfo(dtype).eps) / 2.0
    top, q = keys[n], n - 1 - n // 64
    frame = (x, ym2, yy, prices, w, off, q, -1.0, -2.0)
    assert values._narrower_frame(*frame, 0.0, buf, keys, bmin, top, roundoff) == (-1.0, -2.0)
    centre, floor = values._narrower_frame(*frame, np.inf, buf, keys, bmin, top, roundoff)
    assert floor == np.partition(np.abs(off.astype(np.float64)), q)[q]
    assert centre == np.median(yy + prices)
    np.testing.assert_allclose(w, yy + prices - centre, rtol=4 * roundoff, atol=0)
    exact = off[:, None] + (yy + prices - centre)[None] - 2.0 * x.astype(float) @ y.T.astype(float)
    scale = np.abs(off).max() + np.abs(w).max() + 8.0
    assert exact.min() >= -64 * roundoff * scale  # ≥ 0 up to the values' rounding
    assert np.abs(exact.min(axis=1)).max() <= 64 * roundoff * scale  # each row starts at ~0
    thr = np.where(rng.random(n) < 0.5, -np.inf, prices + 1.0)
    least, before, listed = prices.min(), prices - 900.0, thr.copy()
    pmin = values._rebase(prices, 900.0, thr, 2.0**-49 * 100.0)  # (least ~800 > 100)
    assert prices.min() == 0.0 and pmin == 900.0 - least
    np.testing.assert_allclose(prices - pmin, before, rtol=0, atol=1e-12)  # w unchanged
    np.testing.assert_array_equal(thr, listed - least)  # (−∞ stays −∞)
    kept = prices.copy()
    assert values._rebase(prices, pmin, thr, 1.0) == pmin and np.array_equal(prices, kept)


def test_a_certificate_round_past_the_pair_cap_adds_each_rows_most_violated_pairs(monkeypatch):
    # n = 3000 Lévy rows: the early-ended start's first certificate round finds ~2700 violated
    # rows with ~222k violated pairs between them, past the cap of 64·n pairs, and the start
    # was dropped for a solve without shortcuts (twice the time). Each violated row now adds
    # its most violated pairs, as many as half the cap's room leaves it (at least 16): the
    # start settles without that retry, and the answer is the certified optimum
    x, y = _levy_rows(3000, 5002)
    n = x.shape[0]
    rounds = _spy_capped_rounds(monkeypatch)
    monkeypatch.setattr(AuctionSolver, "_plain", lambda self: pytest.fail("solved again"))
    _certified_without_the_matrix(x, y, monkeypatch)
    # the capped rounds (on the whole problem): all the violated pairs would not fit in the
    # room left, the part added does
    assert rounds and all(r[0] == n for r in rounds)
    assert all(everything > room >= added > 0 for _, everything, room, added in rounds)
