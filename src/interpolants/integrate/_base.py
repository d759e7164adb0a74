r"""The :class:`Integrator` contract: dynamics in, a :class:`Solution` out.

The field protocol
------------------
A *field* is any callable ``f(t, x)`` with ``t`` of shape ``(B,)`` (one time per sample, all
equal within one call) and ``x`` of shape ``(B, *dims)`` that returns a tensor of shape
``(B, *dims)`` (:data:`interpolants.fields.Field`); a trained ``nn.Module`` called as
``model(t, x)`` is one. The integrators pass ``t`` in the dtype and on the device of the state,
as a broadcast view of one value (``t.stride(0) == 0``): a network can embed the time once for
the whole batch (:class:`MLP` does), and a field must not write into ``t``.

Time grids and direction
------------------------
Every integration takes a strictly monotone 1-D ``grid`` of times in [0, 1]. An increasing
grid integrates forwards (base → target), a decreasing one backwards (target → base); the
direction is read from the grid and nothing else. Fixed-step methods step exactly from grid
point to grid point (uniform or not, see :func:`time_grid`); an adaptive method chooses its
own steps but stops exactly on every grid point.

Checks
------
:meth:`~Integrator.integrate` validates the inputs once (including one read of the grid and of
ε on the host), then runs the method's :meth:`~Integrator.solve` unchecked, and checks the
final state once: a field that returns NaN or Inf (or a conversion evaluated at a singular
time) raises :class:`FloatingPointError` instead of returning non-finite samples.
"""

import abc
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import final

import torch
from jaxtyping import Float
from torch import Tensor

from .._types import State
from .._validation import check_finite, check_floating, check_time_range
from ..fields import Field
from ._dynamics import ODE, SDE, Dynamics

__all__ = ["CountedField", "Integrator", "Problem", "Solution", "time_grid"]


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
    >>> from interpolants import time_grid
    >>> time_grid(4, 1.0, 0.0)
    tensor([1.0000, 0.7500, 0.5000, 0.2500, 0.0000])
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise TypeError(f"{name} must be a number, got {type(value).__name__}")
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {value}")
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch dtype (times are fractional), got {dtype}")
    if start == end:
        raise ValueError(f"start and end must differ, got {start} for both")
    return torch.linspace(start, end, steps + 1, dtype=dtype, device=device)


@final
class CountedField:
    """A field with its evaluation counter; its output shape is checked on the first call.

    The integrators call the fields of a :class:`Problem` only through these wrappers, so that
    :attr:`~Solution.nfe` counts every evaluation. A 0-d time is passed to the field expanded
    to shape ``(B,)`` (a stride-0 view). Each evaluation also keeps, on the device, the sum of
    its output and its time (one reduction, no host read): when an integration ends non-finite,
    :meth:`first_non_finite` finds the first evaluation that returned NaN or Inf.
    """

    def __init__(self, field: Field, like: Tensor, name: str = "field") -> None:
        if not callable(field):
            raise TypeError(f"{name} must be callable as {name}(t, x), got {type(field).__name__}")
        self.field = field
        self.name = name
        self.count = 0
        self._sums: list[Tensor] = []
        self._times: list[Tensor] = []

    def __call__(self, t: Tensor, x: Tensor) -> Tensor:
        """Evaluate at ``t`` (``()`` or ``(B,)``) and ``x`` ``(B, *dims)``; counts one."""
        return self.record(self.field(t.expand(x.shape[0]) if t.ndim == 0 else t, x), x, t)

    def record(self, out: object, x: Tensor, t: Tensor | None = None) -> Tensor:
        """Count one evaluation ``out`` of the field at ``(t, x)`` made elsewhere (e.g.
        together with its divergence); its shape is checked on the first. ``t`` (``()`` or
        ``(B,)``, optional) names the time in a non-finite report."""
        if not isinstance(out, Tensor) or (self.count == 0 and out.shape != x.shape):
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(
                f"{self.name}(t, x) must return a tensor of the state's shape "
                f"{tuple(x.shape)}, got {got}"
            )
        self.count += 1
        value = out.detach()
        # a sum is NaN or ±Inf when any entry is (or, rarely, when it overflows)
        self._sums.append(value.sum(dtype=torch.float32 if value.element_size() < 4 else None))
        self._times.append(
            t.detach().reshape(-1)[0] if t is not None else value.new_full((), math.nan)
        )
        return out

    def first_non_finite(self) -> tuple[int, float] | None:
        """``(index, time)`` of the first evaluation that returned NaN or Inf (the time is NaN
        where none was recorded), or ``None`` when every value was finite. One host read."""
        if not self._sums:
            return None
        bad = ~torch.isfinite(torch.stack(self._sums))
        index = int(torch.where(bad.any(), bad.to(torch.uint8).argmax(), -1))
        if index < 0:
            return None
        return index, float(self._times[index])


@final
class Problem:
    """A validated integration problem: what :meth:`~Integrator.solve` receives.

    Attributes
    ----------
    dynamics:
        The dynamics given to :meth:`~Integrator.integrate`.
    x:
        The initial state at ``grid[0]``, shape ``(B, *dims)``.
    grid:
        The grid on ``x``'s dtype and device, shape ``(N + 1,)``.
    times:
        The same grid as Python floats (read on the host once).
    saved:
        The grid indices whose states the solution records, in grid order.
    sign:
        +1.0 forwards (increasing grid), −1.0 backwards.
    generator:
        The random generator for the noise (``None``: the global one).
    velocity, score:
        The velocity and (for an SDE) the score as :class:`CountedField`\\ s; ``score`` is
        ``None`` for an ODE.
    """

    def __init__(
        self,
        dynamics: Dynamics,
        x: Tensor,
        grid: Tensor,
        saved: list[int],
        generator: torch.Generator | None,
    ) -> None:
        self.dynamics = dynamics
        self.x = x
        self.grid = grid
        self.times: list[float] = grid.tolist()
        self.saved = saved
        self.sign = 1.0 if self.times[-1] > self.times[0] else -1.0
        self.generator = generator
        self._counters: list[CountedField] = []
        self.score: CountedField | None = None
        self._partial: Field | None = None
        if isinstance(dynamics, ODE):
            self.velocity = self.counted(dynamics.velocity, "velocity")
            self._partial = dynamics.partial
        elif isinstance(dynamics, SDE):
            self.velocity = self.counted(dynamics.velocity, "velocity")
            self.score = self.counted(dynamics.score, "score")
        else:  # a downstream dynamics: its integrator reads problem.dynamics
            self.velocity = self.counted(_no_velocity, "velocity")

    def counted(self, field: Field, name: str) -> CountedField:
        """Wrap ``field`` in a :class:`CountedField` whose calls count towards :attr:`nfe`
        (for integrators of downstream dynamics)."""
        counted = CountedField(field, self.x, name)
        self._counters.append(counted)
        return counted

    @property
    def counters(self) -> list[CountedField]:
        """Every :class:`CountedField` of this problem, in creation order."""
        return list(self._counters)

    @property
    def nfe(self) -> int:
        """Field evaluations so far (every counted field's calls)."""
        return sum(c.count for c in self._counters)

    @property
    def final_ode_step(self) -> bool:
        """Whether the last interval is a deterministic step (SDE end handling)."""
        return isinstance(self.dynamics, SDE) and self.dynamics.final_ode_step

    def partial(self, t: Tensor, x: Tensor) -> Tensor:
        """The velocity at a stage that enters only later stages' inputs (see
        :class:`ODE`'s ``partial``); the full velocity when none was given."""
        if self._partial is None:
            return self.velocity(t, x)
        out = self._partial(t.expand(x.shape[0]) if t.ndim == 0 else t, x)
        return self.velocity.record(out, x, t)

    def epsilon(self, times: Sequence[float]) -> list[float]:
        """ε at the given times on the host, validated finite and ≥ 0 (one evaluation of the
        diffusion and one host read); zeros for an ODE."""
        if not isinstance(self.dynamics, SDE):
            return [0.0] * len(times)
        t = torch.tensor(list(times), dtype=self.x.dtype, device=self.x.device)
        values = self.dynamics.diffusion(t)
        if not isinstance(values, Tensor) or values.shape != t.shape:
            raise ValueError("diffusion(t) must return a tensor of the shape of t")
        host: list[float] = values.tolist()
        if not all(math.isfinite(v) and v >= 0 for v in host):
            raise ValueError(
                f"diffusion ε(t) must be finite and ≥ 0 on the grid, got values in "
                f"[{min(host):.4g}, {max(host):.4g}]"
            )
        return host

    def drift(self, t: Tensor, x: Tensor, eps: float) -> Tensor:
        """The SDE drift b + eps·s at (t, x), where ``eps`` carries the direction's sign
        (+ε forwards, −ε backwards); the score is not evaluated where eps = 0."""
        b = self.velocity(t, x)
        if eps == 0.0 or self.score is None:
            return b
        return b + eps * self.score(t, x)

    def noise(self) -> Tensor:
        """Standard normal noise of the state's shape, dtype and device, from the generator."""
        x = self.x
        return torch.randn(x.shape, generator=self.generator, dtype=x.dtype, device=x.device)


def _no_velocity(t: Tensor, x: Tensor) -> Tensor:
    raise TypeError("these dynamics have no velocity field: read problem.dynamics instead")


class Integrator(abc.ABC):
    """Abstract integrator of :class:`ODE` and :class:`SDE`
    dynamics on a time grid.

    **Writing an integrator.** Implement :attr:`order` and :meth:`solve`, and override
    :meth:`supports` to accept the dynamics the method can step (an ODE only by default).
    :meth:`integrate` (not overridden) validates once, builds the :class:`Problem`, calls
    :meth:`solve` and assembles the :class:`Solution`. A fixed-step Runge–Kutta method needs
    only its tableau (:class:`FixedStepIntegrator`). Capabilities
    are marker base classes (:class:`AdaptiveIntegrator`).

    Example
    -------
    >>> import torch
    >>> from interpolants import Integrator, ODE, time_grid
    >>> class ForwardEuler(Integrator):  # explicit Euler, written against ``solve``
    ...     order = 1
    ...     def solve(self, problem):
    ...         x, times = problem.x, problem.times
    ...         for k in range(len(times) - 1):
    ...             x = x + (times[k + 1] - times[k]) * problem.velocity(problem.grid[k], x)
    ...         return x, [], len(times) - 1
    >>> sol = ForwardEuler().integrate(ODE(lambda t, x: torch.ones_like(x)), torch.zeros(2, 1),
    ...                                time_grid(4))
    >>> sol.state.flatten().tolist(), sol.nfe
    ([1.0, 1.0], 4)
    """

    @property
    @abc.abstractmethod
    def order(self) -> int:
        """Global order of convergence of the deterministic part of the method (its order as
        an ODE method; for an SDE, the order reached when ε ≡ 0)."""

    def supports(self, dynamics: Dynamics) -> bool:
        """Whether this integrator can step ``dynamics`` (default: an :class:`ODE` only)."""
        return isinstance(dynamics, ODE)

    @abc.abstractmethod
    def solve(self, problem: Problem) -> tuple[State, list[State], int]:
        """Integrate a validated problem: ``(final state, states at problem.saved, accepted
        steps)``.

        Evaluate fields only through ``problem.velocity``, ``problem.score``,
        ``problem.partial`` or ``problem.drift`` (so that NFE is counted), draw noise with
        ``problem.noise()``, and read no tensor values on the host inside the step loop
        (``problem.times`` and ``problem.epsilon`` are on the host already); an adaptive
        method's accept/reject decision is the exception.
        """

    def integrate(
        self,
        dynamics: Dynamics | Field,
        x: Float[Tensor, "batch *dims"],
        grid: Tensor,
        *,
        save_at: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Solution:
        r"""Integrate ``dynamics`` from ``x`` at ``grid[0]`` to ``grid[-1]``.

        Arguments
        ---------
        dynamics:
            An :class:`ODE` or :class:`SDE` this integrator
            :meth:`supports`; a bare field ``b(t, x)`` means ``ODE(b)``.
        x:
            The initial state at ``grid[0]``, shape ``(B, *dims)``, floating and finite: from
            ρ0 for an increasing grid starting at 0, from ρ1 for a decreasing one from 1.
        grid:
            Strictly monotone times in [0, 1], shape ``(N + 1,)``: increasing integrates
            forwards, decreasing backwards. It is moved to ``x``'s dtype and device.
        save_at:
            Times at which to record the state; each must be a grid point (up to rounding).
        generator:
            Random generator for the noise of an SDE (on the state's device).

        Returns
        -------
        Solution
            The state at ``grid[-1]`` (shape of ``x``), the trajectory at ``save_at``, NFE
            and steps.

        Raises
        ------
        TypeError
            For dynamics this integrator does not support, or bad argument types.
        ValueError
            For bad shapes, grids, ``save_at`` or ε.
        FloatingPointError
            When the integration produced NaN or Inf.
        """
        if not isinstance(dynamics, Dynamics):
            if not callable(dynamics):
                raise TypeError(
                    f"dynamics must be an ODE, an SDE or a field b(t, x), got "
                    f"{type(dynamics).__name__}"
                )
            dynamics = ODE(dynamics)
        if not self.supports(dynamics):
            raise TypeError(
                f"{self!r} cannot step {type(dynamics).__name__} dynamics; use an integrator "
                "whose supports() accepts them (e.g. a fixed-step method for an SDE)"
            )
        check_state(x)
        g = check_grid(grid, x)
        saved = save_indices(save_at, g)
        check_generator(generator, x)
        problem = Problem(dynamics, x, g, saved, generator)
        state, trajectory, steps = self.solve(problem)
        check_finite_result(state, problem)
        if not saved:
            return Solution(state=state, times=None, trajectory=None, nfe=problem.nfe, steps=steps)
        return Solution(
            state=state,
            times=g[saved],
            trajectory=torch.stack(trajectory),
            nfe=problem.nfe,
            steps=steps,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# --- the checks at the boundary (shared with the likelihood) ---------------------------------
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
    """The grid indices of the times ``save_at`` (each must be a grid point, in grid order).

    A time matches the nearest grid point when it lies within a quarter of the smallest grid
    step and within rounding of the grid's dtype, compared in float64 on the host (so that a
    low-precision grid never snaps an off-grid time to a neighbour).
    """
    if save_at is None:
        return []
    check_floating(save_at, "save_at")
    if save_at.ndim != 1 or save_at.shape[0] == 0:
        raise ValueError(f"save_at must be a non-empty 1-D tensor, got {tuple(save_at.shape)}")
    times: list[float] = grid.tolist()
    wanted: list[float] = save_at.tolist()
    step = min(abs(b - a) for a, b in itertools.pairwise(times))
    tol = min(64 * torch.finfo(grid.dtype).eps, 0.25 * step)
    idx = []
    for s in wanted:
        k = min(range(len(times)), key=lambda i: abs(times[i] - s))
        if not abs(times[k] - s) <= tol:
            raise ValueError(f"save_at must hold grid points, got {s} which is not on the grid")
        idx.append(k)
    if any(b <= a for a, b in itertools.pairwise(idx)):
        raise ValueError("save_at must be strictly ordered along the grid (no repeats)")
    return idx


def check_generator(generator: torch.Generator | None, x: Tensor) -> None:
    """Raise unless ``generator`` is ``None`` or a generator on ``x``'s device type."""
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if generator.device.type != x.device.type:
        raise ValueError(
            f"generator is on {generator.device} but the state is on {x.device}; "
            "create it with torch.Generator(device=x.device)"
        )


def check_finite_result(state: Tensor, problem: Problem) -> None:
    """Raise :class:`FloatingPointError` if the final state holds NaN or Inf (one host read),
    naming the first field evaluation (field and time) that returned non-finite values."""
    if state.numel() == 0:
        return
    low, high = torch.aminmax(state.detach().reshape(-1))
    if math.isfinite(float(low)) and math.isfinite(float(high)):
        return
    span = f"[{problem.times[0]:g}, {problem.times[-1]:g}]"
    for counted in problem.counters:
        found = counted.first_non_finite()
        if found is not None:
            index, time = found
            at = f"t = {time:.6g}" if math.isfinite(time) else "an unrecorded time"
            raise FloatingPointError(
                f"the integration over {span} produced NaN or Inf: the {counted.name} first "
                f"returned non-finite values at {at} (evaluation {index + 1} of "
                f"{counted.count}): NaN weights or inputs, a field that blows up between two grid "
                "points, or a conversion at a singular time (a score where the noise "
                "scale vanishes)"
            )
    raise FloatingPointError(
        f"the integration over {span} produced NaN or Inf although every field value was "
        "finite: the state overflowed (a diverging field, too few steps, or ε too large)"
    )
