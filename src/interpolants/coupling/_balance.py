r"""A linear change of variables that leaves the optimal assignments of the squared distance
unchanged and balances its two point sets: the point auction's preconditioner.

For C_ij = ‖x_i − y_j‖² = ‖x_i‖² − 2 x_i·y_j + ‖y_j‖², only the cross term −2 x_i·y_j tells
two permutations apart: the other two add the same total to every one. Any invertible A keeps
the cross term, (x_i A)·(y_j A⁻ᵀ) = x_i·y_j, so C'_ij = ‖x_i A − y_j A⁻ᵀ‖² has the optimal
permutations of C. An auction on C' is the auction on C in other units: its ε schedule follows
the typical row's range of costs, and where one set is stretched along an axis the other is
squeezed along (two Gaussians of covariances diag(s², s⁻²) and diag(s⁻², s²)), C's rows range
over the separable part ‖y_j‖² (of order s²) while the cross term that decides the assignment
is of order 1. That range then sets an ε s² times too coarse for the decision, and float32
values of size s² cannot resolve the smaller ε that the decision needs.

A symmetric A = M^½ with M the optimal transport map between the two sets' Gaussian
approximations (M Σ_x M = Σ_y, M symmetric positive definite) gives the transformed sets the
same covariance, A Σ_x A = A⁻¹ Σ_y A⁻¹ = M^½ Σ_x M^½: the separable part is then no larger than
the cross term for Gaussian-like data, whatever their shapes and scales (up to the clamp of
eigenvalues below 1e-12 of the largest, which caps the condition number of A at 1e6). For
Σ_x = diag(s², s⁻²), Σ_y = diag(s⁻², s²): M = diag(s⁻², s²), A = diag(s⁻¹, s), and both sets
become N(0, I).

A is a preconditioner only (any invertible A leaves the answer exact), and not always a good
one: a few far points set a covariance on their own, and the map then squeezes the bulk of
their set along their direction. The auction therefore keeps the balanced points only where
they narrow the typical row's range of costs, which sets its ε (``_point_start``).
"""

import numpy as np
from numpy.typing import NDArray

__all__: list[str] = []

_SPREAD = 1e-12  # eigenvalues of a covariance or of M below this times the largest are raised to it


def _symmetric_power(s: NDArray[np.float64], power: float) -> NDArray[np.float64]:
    """s^power for a symmetric positive semi-definite ``s``, its eigenvalues first raised to at
    least ``_SPREAD`` times the largest (a degenerate covariance stays invertible)."""
    w, v = np.linalg.eigh(s)
    w = np.maximum(w, _SPREAD * max(float(w.max()), 0.0))
    out: NDArray[np.float64] = (v * w**power) @ v.T
    return out


def _balancing_map(
    x: NDArray[np.float64], y: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """(A, A⁻¹) of the module notes for centred ``(n, d)`` points ``x`` and ``y``, or None
    where either covariance is zero or not finite (the points are then left as they are).
    Computed on the covariances divided by their traces (any scale of the points), M then
    multiplied by (tr Σ_y / tr Σ_x)^½."""
    n = x.shape[0]
    with np.errstate(all="ignore"):
        sx = x.T @ x / n
        sy = y.T @ y / n
        tx, ty = float(np.trace(sx)), float(np.trace(sy))
        if not (0.0 < tx < np.inf and 0.0 < ty < np.inf):
            return None
        ratio = (ty / tx) ** 0.25  # A's share of the scale: M carries its square
        if not 0.0 < ratio < np.inf:
            return None
        sx, sy = sx / tx, sy / ty
        try:
            rx = _symmetric_power(sx, 0.5)
            rx_inv = _symmetric_power(sx, -0.5)
            m = rx_inv @ _symmetric_power(rx @ sy @ rx, 0.5) @ rx_inv  # M Σ_x M = Σ_y
            m = 0.5 * (m + m.T)
            a = _symmetric_power(m, 0.5) * ratio
            a_inv = _symmetric_power(m, -0.5) / ratio
        except np.linalg.LinAlgError:  # no convergence: leave the points as they are
            return None
    if not (np.isfinite(a).all() and np.isfinite(a_inv).all()):
        return None
    return a, a_inv


def _centre(points: NDArray[np.float64]) -> NDArray[np.float64]:
    """The mean of ``(n, d)`` points, or their coordinate-wise median where the mean lies more
    than 2¹⁷ interquartile ranges from it in some coordinate (a heavy tail's mean, set by a
    few far points, can lie far from the whole bulk: centred there, every bulk point is far
    from the origin, and float64 squared norms and potentials round away the differences that
    decide its assignment)."""
    mean: NDArray[np.float64] = points.mean(axis=0)
    low, median, high = np.quantile(points, [0.25, 0.5, 0.75], axis=0)
    if np.all(np.abs(mean - median) <= 2.0**17 * (high - low)):
        return mean
    out: NDArray[np.float64] = median
    return out
