r"""What a trained velocity's paths look like: straightness, kinetic energy, W2 per NFE.

Straighter paths need fewer function evaluations (NFE) to sample, which is why OT couplings,
reflow and learned interpolants are used; these measure it.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from ..fields import Field
from ..integrate._base import Integrator, check_state, time_grid
from ..integrate._dynamics import ODE
from ..integrate._fixed import Euler, FixedStepIntegrator
from ._distances import wasserstein2

__all__ = ["PathStatistics", "path_statistics", "w2_per_nfe"]


@dataclass(frozen=True)
class PathStatistics:
    """Straightness and kinetic energy of the probability-flow paths (see
    :func:`path_statistics`).

    Attributes
    ----------
    straightness:
        S = ∫₀¹ E|(X₁ − X₀) − b(t, X_t)|² dt, zero iff every path is a straight line travelled
        at constant speed; 0-d tensor.
    kinetic_energy:
        K = ∫₀¹ E|b(t, X_t)|² dt; 0-d tensor.
    displacement:
        E|X₁ − X₀|² ≤ K (Jensen), with equality iff S = 0; 0-d tensor.
    nfe:
        Field evaluations spent.
    """

    straightness: Tensor
    kinetic_energy: Tensor
    displacement: Tensor
    nfe: int


def path_statistics(
    velocity: Field,
    x0: Float[Tensor, "batch *dims"],
    *,
    steps: int = 100,
    integrator: Integrator | None = None,
) -> PathStatistics:
    r"""Straightness and kinetic energy of the paths of ẋ = b(t, x) started at ``x0``.

    The ODE is integrated with ``integrator`` on a uniform grid of ``steps`` steps from t = 0
    to 1, recording the state at every grid time; then the velocity is evaluated at each
    recorded state and

    .. math::

        S = \int_0^1 E\,|(X_1 − X_0) − b(t, X_t)|^2\,dt,\qquad
        K = \int_0^1 E\,|b(t, X_t)|^2\,dt

    by the trapezoidal rule (sums over the trailing dimensions, means over the batch).
    S = 0 iff the paths are straight with constant speed; K ≥ E|X₁ − X₀|² with equality iff
    S = 0 (since S = K − E|X₁ − X₀|² exactly for the continuous paths).

    Parameters
    ----------
    velocity:
        The field b(t, x).
    x0:
        Starting points at t = 0, shape ``(B, *dims)``.
    steps:
        Grid intervals.
    integrator:
        Any integrator of an :class:`~interpolants.ODE`; default :class:`~interpolants.Euler`.

    Returns
    -------
    PathStatistics

    References
    ----------
    X. Liu, C. Gong, Q. Liu, *Flow Straight and Fast: Learning to Generate and Transfer Data
    with Rectified Flow*, arXiv:2209.03003 (straightness).

    Example
    -------
    >>> import torch
    >>> from interpolants.metrics import path_statistics
    >>> # a constant velocity: straight paths, S = 0 and K = |v|² = 5
    >>> stats = path_statistics(lambda t, x: torch.tensor([1.0, 2.0]).expand_as(x),
    ...                         torch.randn(100, 2), steps=10)
    >>> round(float(stats.straightness), 6), round(float(stats.kinetic_energy), 6)
    (0.0, 5.0)
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    check_state(x0, "x0")
    integrator = Euler() if integrator is None else integrator
    grid = time_grid(steps, dtype=x0.dtype, device=x0.device)
    sol = integrator.integrate(ODE(velocity), x0, grid, save_at=grid)
    assert sol.trajectory is not None
    path = sol.trajectory  # (N + 1, B, *dims)
    with torch.no_grad():
        rates = torch.stack(
            [velocity(t.expand(x0.shape[0]), x) for t, x in zip(grid, path, strict=True)]
        )
    chord = (path[-1] - path[0])[None]
    weights = torch.full((steps + 1,), 1.0 / steps, dtype=x0.dtype, device=x0.device)
    weights[0] = weights[-1] = 0.5 / steps

    def integral(values: Tensor) -> Tensor:  # (N + 1, B, *dims) → ∫ E|·|² dt
        per_time = values.flatten(2).square().sum(2).mean(1)
        return (weights * per_time).sum()

    return PathStatistics(
        straightness=integral(chord - rates),
        kinetic_energy=integral(rates),
        displacement=chord.flatten(2).square().sum(2).mean(),
        nfe=sol.nfe + steps + 1,
    )


def w2_per_nfe(
    velocity: Field,
    x0: Float[Tensor, "batch *dims"],
    reference: Float[Tensor, "m *dims"],
    nfes: Sequence[int],
    integrator: FixedStepIntegrator | None = None,
) -> dict[int, float]:
    r"""W2 between ODE samples from ``x0`` and ``reference`` at each budget of field
    evaluations: a fixed-step integrator with s stages uses NFE/s uniform steps.

    Parameters
    ----------
    velocity:
        The field b(t, x).
    x0:
        Base samples at t = 0, shape ``(B, *dims)``.
    reference:
        Target samples to compare with (:func:`wasserstein2`, exact, on the host).
    nfes:
        The budgets; each must be a multiple of the integrator's stages.
    integrator:
        Default :class:`~interpolants.Euler` (one stage).

    Returns
    -------
    dict
        ``{nfe: W2}``.

    Example
    -------
    >>> import torch
    >>> from interpolants.metrics import w2_per_nfe
    >>> x0 = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    >>> curve = w2_per_nfe(lambda t, x: torch.ones_like(x), x0, x0 + 1.0, [1, 4])
    >>> [round(w, 2) for w in curve.values()]  # a constant field is exact at any NFE
    [0.0, 0.0]
    """
    check_state(x0, "x0")
    integrator = Euler() if integrator is None else integrator
    out: dict[int, float] = {}
    for nfe in nfes:
        if not isinstance(nfe, int) or nfe < 1 or nfe % integrator.stages:
            raise ValueError(
                f"each NFE must be a positive multiple of {type(integrator).__name__}'s "
                f"{integrator.stages} stages, got {nfe!r}"
            )
        grid = time_grid(nfe // integrator.stages, dtype=x0.dtype, device=x0.device)
        with torch.no_grad():
            state = integrator.integrate(ODE(velocity), x0, grid).state
        out[nfe] = wasserstein2(state, reference)
    return out
