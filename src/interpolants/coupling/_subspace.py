r"""Exact assignment where one point set lies in an affine subspace: the problem in its
coordinates.

If every y_j lies in the affine subspace m + span(V) (V an orthonormal d × k basis, k < d),
write x_i − m = V a_i + w_i with w_i ⊥ span(V) and y_j − m = V b_j. Then

.. math::

    \|x_i - y_j\|^2 = \|w_i\|^2 + \|a_i - b_j\|^2,

a row constant plus the squared distance of the k-dimensional coordinates: the two problems
have the same optimal permutations, and column prices of one are column prices of the other.
Where x lies in the subspace instead, the roles swap and the residuals ‖w_j‖² of the y are
column constants, subtracted from the prices. Data of lower dimension than the noise it is
paired with (a curve or a plane in R^d, a padded or constant coordinate) is of this kind. For
k = 1 the reduced problem is the monotone matching (``_monotone``); the certificate is always
checked on C of the points themselves, so the reduction only chooses where the exact steps
start.
"""

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from ._monotone import _monotone_start

__all__: list[str] = []

Start = tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]
"""(prices, candidate lists (n, k), assignment) of the first step of the certified solver."""

_FLAT = 2.0**-20
"""A set lies in a subspace when its points are within this fraction of the largest norm of
the points from it: float32 data on a line or a plane (each coordinate rounded to 2⁻²⁴) is
found. The reduced problem then differs from C by at most about 2·2⁻²⁰ of its largest entry,
and the exact steps, which evaluate C from the points themselves, correct the start."""


def _hull(
    points: NDArray[np.float64], tol: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """(the set's mean, an orthonormal basis (d, k) of its k principal directions) for the
    smallest k ≥ 1 such that every point is within ``tol`` of that affine subspace, with
    k < d; ``None`` where no such k exists."""
    mean = points.mean(axis=0)
    centred = points - mean
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    for k in range(1, points.shape[1]):
        basis = vt[:k].T
        off = centred - (centred @ basis) @ basis.T
        if float(np.sqrt(np.square(off).sum(axis=1).max())) <= tol:
            return mean, basis
    return None


def _subspace_coordinates(
    x: NDArray[np.float64], y: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]] | None:
    """``(a, b, g)``: the coordinates (n, k) of centred points x and y in the affine subspace
    of lowest dimension k < d that one of the sets lies in, and the column constants g (n,)
    with C_ij = ‖a_i − b_j‖² + f_i + g_j (zero where it is the y that lie in it); ``None``
    where neither set does (or d = 1)."""
    d = x.shape[1]
    top = max(float(np.abs(x).max()), float(np.abs(y).max()))
    if d == 1 or top == 0.0:
        return None
    sx, sy = x / top, y / top
    reach = max(float(np.sqrt(np.square(s).sum(axis=1).max())) for s in (sx, sy))
    best = None
    for on, in_x in ((sy, False), (sx, True)):
        found = _hull(on, _FLAT * reach)
        if found is not None and (best is None or found[1].shape[1] < best[0][1].shape[1]):
            best = (found, in_x)
    if best is None:
        return None
    (mean, basis), in_x = best
    origin = mean * top
    a, b = (x - origin) @ basis, (y - origin) @ basis
    g = np.zeros(x.shape[0])
    if in_x:  # the y's distances to x's subspace are column constants
        g = np.square((y - origin) - b @ basis.T).sum(axis=1)
    return a, b, g


def _reduced_start(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    prices: Callable[[NDArray[np.float64], NDArray[np.float64]], Start | None],
) -> Start | None:
    """The first step for centred points x and y: the monotone matching in one dimension
    (given or reduced to), ``prices`` (the auction) on the reduced coordinates where one set
    lies in a subspace of dimension 2 … d − 1, else ``prices`` on the points; the prices are
    those of C of the points given."""
    if x.shape[1] == 1:
        return _monotone_start(x, y)
    reduced = _subspace_coordinates(x, y)
    if reduced is None:
        return prices(x, y)
    a, b, g = reduced
    start = _monotone_start(a, b) if a.shape[1] == 1 else prices(a, b)
    if start is None:
        return None
    return start[0] - g, start[1], start[2]
