r"""The integrator interface: the field protocol, time grids, results and shared checks.

The field protocol
------------------
A *field* is any callable ``f(t, x)`` with ``t`` of shape ``(B,)`` (one time per sample, all
equal within one call) and ``x`` of shape ``(B, *dims)`` that returns a tensor of shape
``(B, *dims)`` (:data:`interpolants.fields.Field`); a trained ``nn.Module`` called as
``model(t, x)`` is one. The integrators pass ``t`` in the dtype and on the device of the state,
as a broadcast view of one value (``t.stride(0) == 0``): a network can embed the time once for
the whole batch (:class:`~interpolants.MLP` does), and a field must not write into ``t``.

Time grids and direction
------------------------
Every integrator takes a strictly monotone 1-D ``grid`` of times in [0, 1]. An increasing grid
integrates forwards (base → target), a decreasing one backwards (target → base); the direction
is read from the grid and nothing else. Fixed-step methods step exactly from grid point to grid
point (uniform or not, see :func:`time_grid`); the adaptive :class:`~interpolants.integrate.Dopri5`
chooses its own steps but stops exactly on every grid point.

Results
-------
Each call returns a :class:`Solution`: the final state, optionally the states at chosen grid
times (``save_at``), and the number of field evaluations (NFE).

Inputs are validated once, at the public entry point (:meth:`ODEIntegrator.integrate`,
:meth:`~interpolants.integrate.SDEIntegrator.integrate`); the step loops run unchecked.
"""

import abc
import itertools
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from .._validation import check_finite, check_floating, check_time_range
from ..fields import Field

__all__ = ["Integrator", "ODEIntegrator", "Solution", "time_grid"]


@dataclass(frozen=True)
class Solution:
    """The result of one integration.

    Attributes
    ----------
    state:
        The state at the last grid time, shape ``(B, *dims)``.
    times:
        The saved times, shape ``(T,)`` in the order of the grid, or ``None`` when no
        ``save_at`` was given.
    trajectory:
        The states at :attr:`times`, shape ``(T, B, *dims)``, or ``None``.
    nfe:
        The number of field evaluations: every call of a user-supplied field (velocity or
        score) counts one.
    steps:
        The number of accepted steps.
    """

    state: Tensor
    times: Tensor | None
    trajectory: Tensor | None
    nfe: int
    steps: int


def time_grid(
    steps: int,
    start: float = 0.0,
    end: float = 1.0,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Float[Tensor, " points"]:
    """A uniform grid of ``steps + 1`` times from ``start`` to ``end`` (either may be larger).

    Example
    -------
    >>> from interpolants.integrate import time_grid
    >>> time_grid(4, 1.0, 0.0)
    tensor([1.0000, 0.7500, 0.5000, 0.2500, 0.0000])
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    for name, value in (("start", start), ("end", end)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {value}")
    if start == end:
        raise ValueError(f"start and end must differ, got {start} for both")
    return torch.linspace(start, end, steps + 1, dtype=dtype, device=device)


class Integrator(abc.ABC):
    """Abstract base of every integrator (ODE and SDE).

    Concrete integrators are small final classes; capabilities are marker base classes
    (:class:`~interpolants.integrate.AdaptiveIntegrator`). Each class states :attr:`order`,
    the order of convergence of its deterministic part (its order as an ODE method; for an SDE
    method, the order reached when ε ≡ 0).
    """

    @property
    @abc.abstractmethod
    def order(self) -> int:
        """Global order of convergence of the deterministic part of the method."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ODEIntegrator(Integrator):
    r"""Abstract integrator of the probability-flow ODE  ẋ = b(t, x).

    Subclasses implement :meth:`_solve`; :meth:`integrate` validates the inputs once and
    counts the field evaluations.
    """

    def integrate(
        self,
        field: Field,
        x: Float[Tensor, "batch *dims"],
        grid: Tensor,
        *,
        save_at: Tensor | None = None,
    ) -> Solution:
        r"""Integrate ẋ = ``field``\ (t, x) from ``grid[0]`` to ``grid[-1]``.

        Arguments
        ---------
        field:
            The velocity b(t, x), see the field protocol in :mod:`interpolants.integrate`.
        x:
            The initial state at ``grid[0]``, shape ``(B, *dims)``, floating.
        grid:
            Strictly monotone times in [0, 1], shape ``(N + 1,)``: increasing integrates
            forwards, decreasing backwards. It is moved to ``x``'s dtype and device.
        save_at:
            Times at which to record the state; each must be a grid point (up to rounding).

        Returns
        -------
        Solution
            The state at ``grid[-1]`` (shape of ``x``), the trajectory at ``save_at`` and NFE.
        """
        check_state(x)
        g = check_grid(grid, x)
        saved = save_indices(save_at, g)
        counted = CountedField(field, x)
        state, trajectory, steps = self._solve(counted, x, g, saved)
        return make_solution(state, g, saved, trajectory, counted.count, steps)

    @abc.abstractmethod
    def _solve(
        self, field: "CountedField", x: Tensor, grid: Tensor, saved: list[int]
    ) -> tuple[Tensor, list[Tensor], int]:
        """Unchecked core: final state, the states at the grid indices ``saved``, steps."""


# --- shared checks and helpers (used by the ODE, SDE and likelihood modules) ------------------
class CountedField:
    """Wrap a field: count its calls and check its output shape on the first call only."""

    def __init__(self, field: Field, like: Tensor, name: str = "field") -> None:
        if not callable(field):
            raise TypeError(f"{name} must be callable as {name}(t, x), got {type(field).__name__}")
        self.field = field
        self.name = name
        self.shape = like.shape
        self.count = 0

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        return self.record(self.field(field_time(t, x), x), x)

    def partial(self, t: Tensor, x: Tensor) -> Tensor:
        """An evaluation for a stage whose derivative the method uses only through the inputs
        of later stages (zero weight in the update and in the error estimate).

        A field whose trailing state columns are pure accumulators (never read by the field,
        like the log-density of :func:`~interpolants.integrate.log_likelihood`) may offer
        ``without_auxiliary(t, x)``: its derivative with those columns left as zeros, which is
        cheaper. The step's result is then unchanged, since the skipped columns only reach
        other stages' accumulator inputs. Other fields are simply evaluated.
        """
        cheap = getattr(self.field, "without_auxiliary", None)
        if cheap is None:
            return self(t, x)
        return self.record(cheap(field_time(t, x), x), x)

    def record(self, out: Tensor, x: Tensor) -> Tensor:
        """Count one evaluation ``out`` of the field at ``x`` (made elsewhere, e.g. together
        with its divergence); its shape is checked on the first."""
        if self.count == 0 and (not isinstance(out, Tensor) or out.shape != x.shape):
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(
                f"{self.name}(t, x) must return a tensor of the state's shape "
                f"{tuple(x.shape)}, got {got}"
            )
        self.count += 1
        return out


def check_state(x: Tensor, name: str = "x") -> None:
    """Raise unless ``x`` is a finite floating tensor of shape ``(B, *dims)`` with B ≥ 1."""
    check_floating(x, name)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(
            f"{name} must have shape (batch, *dims) with batch ≥ 1, got {tuple(x.shape)}"
        )
    check_finite(x, name)


def check_grid(grid: Tensor, like: Tensor) -> Tensor:
    """Validate a time grid and return it on ``like``'s dtype and device."""
    check_floating(grid, "grid")
    if grid.ndim != 1 or grid.shape[0] < 2:
        raise ValueError(
            f"grid must be a 1-D tensor of at least two times, got shape {tuple(grid.shape)}"
        )
    check_finite(grid, "grid")
    check_time_range(grid, "grid")
    g = grid.to(dtype=like.dtype, device=like.device)
    d = g.diff()
    if not (bool((d > 0).all()) or bool((d < 0).all())):
        raise ValueError(
            "grid must be strictly monotone in x's dtype (increasing: forwards, "
            f"decreasing: backwards), got {grid.tolist() if grid.numel() <= 8 else 'a grid'} "
            "with repeated or reversed times"
        )
    return g


def save_indices(save_at: Tensor | None, grid: Tensor) -> list[int]:
    """The grid indices of the times ``save_at`` (each must be a grid point, in grid order)."""
    if save_at is None:
        return []
    check_floating(save_at, "save_at")
    if save_at.ndim != 1 or save_at.shape[0] == 0:
        raise ValueError(f"save_at must be a non-empty 1-D tensor, got {tuple(save_at.shape)}")
    s = save_at.to(dtype=grid.dtype, device=grid.device)
    dist = (s[:, None] - grid[None, :]).abs()
    nearest = dist.argmin(dim=1)
    tol = 64 * torch.finfo(grid.dtype).eps
    off = dist.gather(1, nearest[:, None])[:, 0] > tol
    if bool(off.any()):
        raise ValueError(
            f"save_at must hold grid points, got {s[off].tolist()[:3]} which are not on the grid"
        )
    idx = nearest.tolist()
    if any(b <= a for a, b in itertools.pairwise(idx)):
        raise ValueError("save_at must be strictly ordered along the grid (no repeats)")
    return [int(i) for i in idx]


def field_time(t: Tensor, x: Tensor) -> Tensor:
    """The field protocol's time of shape ``(B,)``: a 0-d integrator time is expanded (a
    stride-0 view, so a network can tell that all samples share it, as
    :class:`~interpolants.MLP` does to embed it once); a ``(B,)`` time is passed as is."""
    return t.expand(x.shape[0]) if t.ndim == 0 else t


def make_solution(
    state: Tensor, grid: Tensor, saved: list[int], trajectory: list[Tensor], nfe: int, steps: int
) -> Solution:
    """Assemble a :class:`Solution`."""
    if not saved:
        return Solution(state=state, times=None, trajectory=None, nfe=nfe, steps=steps)
    return Solution(
        state=state,
        times=grid[saved],
        trajectory=torch.stack(trajectory),
        nfe=nfe,
        steps=steps,
    )
