r"""Exact assignment where one point set lies in an affine subspace: the problem in its
coordinates.

If every y_j lies in the affine subspace m + span(V) (V an orthonormal d × k basis, k < d),
write x_i − m = V a_i + w_i with w_i ⊥ span(V) and y_j − m = V b_j. Then

.. math::

    \|x_i - y_j\|^2 = \|w_i\|^2 + \|a_i - b_j\|^2,

a row constant plus the squared distance of the k-dimensional coordinates: the two problems
have the same optimal permutations, and column prices of one are column prices of the other.
Where x lies in the subspace instead, the roles swap and the residuals ‖w_j‖² of the y are
column constants, subtracted from the prices. Data on a line or a plane paired with noise of
more dimensions (a padded or constant coordinate, a linear embedding) is of this kind. A set
counts as lying in the subspace within ``_FLAT`` of its extent, where the identity holds up to
that residual. For k = 1 the reduced problem is the monotone matching (``_monotone``). The
certificate is always checked on C of the points themselves, so the reduction only chooses
where the exact steps start.
"""

from collections.abc import Callable, Iterator

import numpy as np
from numpy.typing import NDArray

from ._certificate import _max_norm
from ._monotone import _monotone_start

__all__: list[str] = []

Start = tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]
"""(prices, candidate lists (n, k), assignment) of the first step of the certified solver."""

_FLAT = 2.0**-20
"""A set lies in a subspace when its points are within this fraction of its own extent (the
largest distance of its points to their mean) from it: float32 data on a line or a plane
whose offset from the origin is at most about ten times its extent (each coordinate rounded
to 2⁻²⁴ of its magnitude) is found. The reduced costs are then off by 2 w_i·e_j + ‖e_j‖²
(e_j a point's distance to the subspace), small against the gaps between a row's nearest
candidates in all but near-ties; the exact steps, which evaluate C from the points
themselves, correct the start, and where they cannot settle from it the auction on the
points is the next start."""


def _hull(points: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """(the set's mean, an orthonormal basis (d, k) of its k principal directions) for the
    smallest k ≥ 1 such that every point is within ``_FLAT`` of the set's own extent (its
    largest distance to the mean) of that affine subspace, with k < d; ``None`` where no
    such k exists."""
    mean = points.mean(axis=0)
    centred = points - mean
    extent = _max_norm(centred)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    for k in range(1, points.shape[1]):
        basis = vt[:k].T
        if _max_norm(centred - (centred @ basis) @ basis.T) <= _FLAT * extent:
            return mean, basis
    return None


def _subspace_coordinates(
    x: NDArray[np.float64], y: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]] | None:
    """``(a, b, g)``: the coordinates (n, k) of centred points x and y in the affine subspace
    of lowest dimension k < d that one of the sets lies in, and the column constants g (n,)
    with C_ij = ‖a_i − b_j‖² + f_i + g_j (zero where it is the y that lie in it); ``None``
    where neither set does (or d = 1)."""
    if x.shape[1] == 1:
        return None
    best = None
    for on, in_x in ((y, False), (x, True)):
        found = _hull(on)
        if found is not None and (best is None or found[1].shape[1] < best[0][1].shape[1]):
            best = (found, in_x)
    if best is None:
        return None
    (origin, basis), in_x = best
    a, b = (x - origin) @ basis, (y - origin) @ basis
    g = np.zeros(x.shape[0])
    if in_x:  # the y's distances to x's subspace are column constants
        g = np.square((y - origin) - b @ basis.T).sum(axis=1)
    return a, b, g


def _starts(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    prices: Callable[[NDArray[np.float64], NDArray[np.float64]], Start | None],
) -> Iterator[Start | None]:
    """The first steps to try, in turn, for centred points x and y (the prices are those of C
    of the points given): the monotone matching for ``(n, 1)`` points; where one set lies in a
    subspace, the monotone matching (k = 1) or ``prices`` (the auction) on the coordinates,
    then, if the exact steps cannot settle from it, ``prices`` on the points; else ``prices``
    on the points."""
    if x.shape[1] == 1:
        yield _monotone_start(x, y)
        return
    reduced = _subspace_coordinates(x, y)
    if reduced is not None:
        a, b, g = reduced
        start = _monotone_start(a, b) if a.shape[1] == 1 else prices(a, b)
        yield None if start is None else (start[0] - g, start[1], start[2])
    yield prices(x, y)
