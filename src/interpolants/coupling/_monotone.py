r"""Exact assignment in one dimension: the monotone matching and its convex potentials.

For C_ij = (x_i − y_j)² on the line, the matching of the k-th smallest x with the k-th
smallest y is optimal (the cost is submodular: any crossing pair of a matching can be
uncrossed without raising its cost). Its dual potentials have a closed form. Sort the pairs by
x, a_1 ≤ … ≤ a_n matched with b_1 ≤ … ≤ b_n, and let φ be the convex piecewise-linear function
with φ(a_1) = 0 and slope b_k on [a_k, a_k+1]. Then b_k ∈ ∂φ(a_k), and with its conjugate φ*,

.. math::

    u_i = x_i^2 - 2\,\varphi(x_i), \qquad v_j = y_j^2 - 2\,\varphi^*(y_j),

satisfy u_i + v_j ≤ C_ij for every pair (Fenchel–Young: φ(x) + φ*(y) ≥ xy), with equality
on the matched pairs (φ*(b_k) = a_k b_k − φ(a_k)). The certificate of ``_certificate`` checks
them over every pair, as it does the auction's. Points of any dimension where one of the sets
lies on a line are the same problem in their coordinates along it (``_subspace``).
"""

import numpy as np
from numpy.typing import NDArray

__all__: list[str] = []


def _monotone_start(
    x: NDArray[np.float64], y: NDArray[np.float64], width: int = 2
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """For ``(n, 1)`` points: (prices, candidates, matching) in the form of the auction's
    output. The matching pairs the sorted x with the sorted y; the prices are −v of the module
    notes; each row's candidates are the ``width`` columns on either side of its partner in
    sorted order (the edges the exact completion and the potentials' shortest paths start
    from)."""
    n = x.shape[0]
    ox = np.argsort(x[:, 0], kind="stable")
    oy = np.argsort(y[:, 0], kind="stable")
    a, b = x[ox, 0], y[oy, 0]
    assigned = np.empty(n, dtype=np.int64)
    assigned[ox] = oy
    phi = np.concatenate(([0.0], np.cumsum(b[:-1] * np.diff(a))))  # φ(a_k)
    conjugate = a * b - phi  # φ*(b_k)
    prices = np.empty(n)
    prices[oy] = 2.0 * conjugate - b * b  # −v_j
    rank = np.empty(n, dtype=np.int64)
    rank[ox] = np.arange(n)
    offsets = np.arange(-width, width + 1)
    positions = np.clip(rank[:, None] + offsets[None, :], 0, n - 1)
    return prices, oy[positions], assigned
