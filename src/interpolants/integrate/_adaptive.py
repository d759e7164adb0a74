r"""Adaptive integration of the probability-flow ODE with embedded Runge–Kutta pairs.

One loop (:class:`EmbeddedRungeKutta`) serves every embedded pair (a :class:`Tableau` with
error weights): :class:`Dopri5` (Dormand–Prince 5(4), seven stages, six new evaluations a
step) and :class:`Bosh3` (Bogacki–Shampine 3(2), four stages, three new evaluations a step).

The step
--------
A step of size h from (t, x) computes the stages kᵢ, the solution y = x + h Σᵢ bᵢkᵢ of order p
and the error estimate e = h Σᵢ (bᵢ − b̂ᵢ) kᵢ, its difference with the embedded solution of
order q = p − 1 (e = O(h^{q+1})); the integration continues with y (local extrapolation). In
both pairs the last stage is evaluated at (t + h, y) and is the first stage of the next step
(FSAL): an attempted step costs ``stages − 1`` evaluations. Dormand–Prince's second stage
enters only later stages' inputs, so it is evaluated through ``problem.partial`` (the
likelihood skips its divergence there).

The error norm, per sample
--------------------------
With the elementwise scale :math:`sc = atol + rtol\,\max(|x|, |y|)`,

.. math::

    \mathrm{err} = \max_{i \le B} \sqrt{\operatorname{mean}_j (e_{ij} / sc_{ij})^2},

the root-mean-square scaled error of the worst sample
(:meth:`~EmbeddedRungeKutta.error_norm`). The batch shares its steps (t is shared) and a step
is accepted when err ≤ 1, so every sample meets the tolerance on its own. torchdiffeq and
torchebm take one RMS over the whole batch tensor instead, which accepts a step whose worst
sample misses the tolerance as long as the batch average meets it: at equal rtol and atol they
take fewer steps and return larger errors. Override
:meth:`~EmbeddedRungeKutta.error_norm` for that behaviour (its example does).

The step-size controller
------------------------
With k = q + 1, the order in h of the error estimate, a step accepted with error err after an
accepted step with error err₋₁ is followed by

.. math::

    h_{new} = h\,\min\big(f_{max}, \max\big(f_{min},
        s\,\mathrm{err}^{-\alpha}\max(\mathrm{err}_{-1}, 10^{-4})^{\beta}\big)\big),\qquad
    \alpha = 1/k - 0.75\,\beta,\quad \beta = 0.04,

the proportional–integral controller of Gustafsson (1991) with the gains of Hairer and
Wanner's DOPRI5 code (Hairer and Wanner, §IV.2; Söderlind 2003 analyses such filters);
f_min = 0.2, f_max = 10. At a constant error it holds the step when err = s^{1/(α − β)}:
a margin under 1 that absorbs the swings of the estimate, which on the mixture flows changes
by up to 20× between consecutive steps. The safety factor s
(:attr:`~EmbeddedRungeKutta.safety`: 0.8 for Dopri5, 0.75 for Bosh3) puts that point near
0.7^k (0.18 for Dopri5, 0.34 for Bosh3). The factor err₋₁^β damps the step-size oscillation
the elementary controller h_new = h s err^{−1/k} shows on such estimates. The first step and
a rejected one, which have no accepted predecessor to filter with, use the elementary
controller; a rejected step is retried with h_new, and the step after a rejection may not
grow.

**Equal steps to each grid point**: at distance R from the next grid point the step is
R / n with n = max(1, ⌈R / h − θ⌉), θ = 0.2: the steps up to the grid point are equal, and
rather than adding a step for the last fraction of one, the n steps are stretched by at most
θ / n (at most a factor (1 + θ)^k on the estimate, 2.5 for Dopri5, inside the margin above).
A retried step is never stretched past the controller's h. Every grid point is hit exactly.

**The initial step** costs no evaluation: with d₀ = ‖x₀‖ and d₁ = ‖b(t₀, x₀)‖ in the norm
above (scaled by sc at x₀),

.. math::

    h_0 = \min\big(T,\ (0.1 / d_1)^{1/k},\ d_0 / d_1\big),

T the span of the grid (a term is dropped when its d is below 1e-5). This is the algorithm of
Hairer et al. (§II.4, "Starting step size") without its second evaluation, which estimates the
second derivative, and with 0.1 for their 0.01; ``first_step`` overrides it. An automatic
initial step that is too large costs one rejected attempt; the probe evaluation would cost
one evaluation on every call.

Host reads: d₀ and d₁ once, then one per attempted step, the error norm that accepts or
rejects it (inherent to adaptive stepping). NFE = 1 + (stages − 1) × attempted steps for an
FSAL pair.

References
----------
J. R. Dormand, P. J. Prince, *A family of embedded Runge–Kutta formulae*, J. Comput. Appl.
Math. 6 (1980), doi:10.1016/0771-050X(80)90013-3. P. Bogacki, L. F. Shampine, *A 3(2) pair of
Runge–Kutta formulas*, Appl. Math. Lett. 2 (1989), doi:10.1016/0893-9659(89)90079-7.
E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential Equations I*, 2nd ed.,
Springer (1993), §II.4. E. Hairer, G. Wanner, *Solving Ordinary Differential Equations II*,
2nd ed., Springer (1996), §IV.2. K. Gustafsson, *Control theoretic techniques for stepsize
selection in explicit Runge–Kutta methods*, ACM TOMS 17 (1991), doi:10.1145/210232.210242.
G. Söderlind, *Digital filters in adaptive time-stepping*, ACM TOMS 29 (2003),
doi:10.1145/641876.641877.
"""

import abc
import math
from typing import final

import torch
from torch import Tensor

from .._types import Scalar, State
from ._base import Integrator, Problem
from ._tableau import BOSH3, DOPRI5, Tableau

__all__ = ["AdaptiveIntegrator", "Bosh3", "Dopri5", "EmbeddedRungeKutta"]

_BETA = 0.04
"""The integral gain β of the PI controller; the proportional gain is α = 1/k − 0.75 β."""
_ERROR_FLOOR = 1e-4
"""The smallest previous error the PI controller uses (err₋₁ = 0 would stop the growth)."""
_STRETCH = 0.2
"""The stretch θ of the equal steps: n = ⌈R / h − θ⌉ steps to a grid point at distance R."""
_MIN_FACTOR = 0.2
"""The smallest step ratio h_new / h (after a rejection)."""
_MAX_FACTOR = 10.0
"""The largest step ratio h_new / h."""
_FIRST_STEP_CONSTANT = 0.1
"""The constant c of the initial step (c / d₁)^{1/k}."""


def _combine(pairs: list[tuple[int, float]], stages: list[Tensor], scale: float) -> Tensor:
    """scale · Σᵢ cᵢ kᵢ over the non-zero coefficients."""
    (i0, c0), *rest = pairs
    total = (scale * c0) * stages[i0]
    for i, c in rest:
        total = total + (scale * c) * stages[i]
    return total


class AdaptiveIntegrator(Integrator):
    """Marker base class: the integrator chooses its own steps to meet ``rtol`` and ``atol``.

    The grid only fixes where the integration starts and stops (and the points it must hit
    exactly); ``Solution.steps`` reports the accepted steps. Accepting or rejecting a step
    reads its error norm on the host (one synchronisation per step, inherent to the method).
    """

    @property
    @abc.abstractmethod
    def rtol(self) -> float:
        """Relative tolerance on the local error."""

    @property
    @abc.abstractmethod
    def atol(self) -> float:
        """Absolute tolerance on the local error."""


class EmbeddedRungeKutta(AdaptiveIntegrator):
    r"""Abstract adaptive method of an embedded explicit Runge–Kutta pair (see the module notes).

    **Writing one.** Subclass and give :attr:`tableau` (with its error weights),
    :attr:`~Integrator.order` (p) and :attr:`error_order` (q, the order of the embedded
    solution); the loop, the controller and the initial step are written once, here. A pair
    whose last stage is not its solution (no FSAL) costs one more evaluation per accepted step.

    Parameters
    ----------
    rtol, atol:
        Relative and absolute local-error tolerances, positive.
    max_steps:
        Raise :class:`RuntimeError` if more steps (accepted or rejected) are needed.
    first_step:
        Initial step size; chosen automatically (no extra evaluation) when ``None``.

    Example
    -------
    >>> import torch
    >>> from interpolants.integrate import EmbeddedRungeKutta, Tableau
    >>> class HeunEuler(EmbeddedRungeKutta):  # Heun 2 with Euler 1 embedded
    ...     tableau = Tableau(c=(0.0, 1.0), a=((), (1.0,)), b=(0.5, 0.5), error=(-0.5, 0.5))
    ...     order, error_order = 2, 1
    >>> x0 = torch.ones(1, 1, dtype=torch.float64)
    >>> sol = HeunEuler(rtol=1e-6, atol=1e-6).integrate(
    ...     lambda t, x: x, x0, torch.tensor([0.0, 1.0], dtype=torch.float64))
    >>> abs(float(sol.state) - 2.718281828459045) < 1e-4
    True
    """

    safety: float = 0.8
    """The safety factor s of the controller (see the module notes)."""

    def __init__(
        self,
        rtol: float = 1e-5,
        atol: float = 1e-5,
        *,
        max_steps: int = 10_000,
        first_step: float | None = None,
    ) -> None:
        for name, value in (("rtol", rtol), ("atol", atol)):
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive finite number, got {value}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be positive, got {max_steps}")
        if first_step is not None and not first_step > 0:
            raise ValueError(f"first_step must be positive, got {first_step}")
        if self.tableau.error is None:
            raise TypeError(f"{type(self).__name__}.tableau must have error weights")
        self._rtol = float(rtol)
        self._atol = float(atol)
        self.max_steps = int(max_steps)
        self.first_step = first_step

    @property
    @abc.abstractmethod
    def tableau(self) -> Tableau:
        """The embedded pair: weights b of the solution and error weights b − b̂."""

    @property
    @abc.abstractmethod
    def error_order(self) -> int:
        """The order q of the embedded solution; the error estimate is O(h^{q+1})."""

    @property
    def rtol(self) -> float:
        return self._rtol

    @property
    def atol(self) -> float:
        return self._atol

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rtol={self._rtol}, atol={self._atol})"

    def error_norm(self, error: State, x: State, y: State) -> Scalar:
        r"""The scaled norm of ``error`` for a step from ``x`` to ``y`` (all ``(B, *dims)``):
        the largest over samples of the RMS over each sample's entries of
        :math:`e / (atol + rtol\,\max(|x|, |y|))`, a 0-d tensor. A step is accepted when it is
        ≤ 1; the loop reads it on the host.

        Example
        -------
        Override it for one RMS over the whole batch tensor, as torchdiffeq and torchebm do (a
        step is then accepted when the batch average, not each sample, meets the tolerance):

        >>> import torch
        >>> from interpolants import Dopri5
        >>> from interpolants.integrate import EmbeddedRungeKutta
        >>> from interpolants.integrate._tableau import DOPRI5
        >>> class BatchNormDopri5(EmbeddedRungeKutta):
        ...     tableau, order, error_order = DOPRI5, 5, 4
        ...     def error_norm(self, error, x, y):
        ...         scale = self.atol + self.rtol * torch.maximum(x.abs(), y.abs())
        ...         return (error / scale).square().mean().sqrt()
        >>> x0 = torch.tensor([[1.0], [1e-3]], dtype=torch.float64)
        >>> grid = torch.tensor([0.0, 1.0], dtype=torch.float64)
        >>> batch = BatchNormDopri5(rtol=1e-3, atol=1e-6).integrate(lambda t, x: x, x0, grid)
        >>> ours = Dopri5(rtol=1e-3, atol=1e-6).integrate(lambda t, x: x, x0, grid)
        >>> batch.nfe <= ours.nfe
        True
        """
        scale = self._atol + self._rtol * torch.maximum(x.abs(), y.abs())
        return (error / scale).reshape(error.shape[0], -1).square().mean(1).sqrt().max()

    def _norm(self, error: Tensor, x: Tensor, y: Tensor) -> float:
        value = float(self.error_norm(error, x, y))
        return value if math.isfinite(value) else math.inf

    def _initial_step(self, t: float, x: Tensor, k1: Tensor, span: float) -> float:
        if self.first_step is not None:
            return min(self.first_step, span)
        d1 = self._norm(k1, x, x)
        if d1 == math.inf:
            raise FloatingPointError(f"the velocity returned NaN or Inf at t = {t:.6g}")
        h = span
        if d1 > 1e-5:
            h = min(h, (_FIRST_STEP_CONSTANT / d1) ** (1 / (self.error_order + 1)))
            d0 = self._norm(x, x, x)
            if d0 > 1e-5:
                h = min(h, d0 / d1)
        return h

    def _step(self, remaining: float, h: float, stretch: float = _STRETCH) -> float:
        """The next step towards a grid point at distance ``remaining``: n = ⌈R / h − θ⌉
        equal steps, each at most (1 + θ / n) h (the whole remainder when it is within
        (1 + θ) h); θ = ``stretch`` (0 for a retry: never longer than h)."""
        return remaining / max(1, math.ceil(remaining / h - stretch - 1e-10))

    def _factor(self, err: float, previous: float | None) -> float:
        """The step ratio h_new / h after a step with error ``err`` (``previous``: the error
        of the last accepted step, ``None`` before the first): the PI controller after an
        accepted step that follows an accepted one, else the elementary controller. The
        caller clamps it to [f_min, f_max], and to ≤ 1 for a step accepted right after a
        rejection."""
        if err == 0.0:
            return _MAX_FACTOR
        k = self.error_order + 1
        if previous is None or err > 1.0:
            return self.safety * math.pow(err, -1.0 / k)
        alpha = 1.0 / k - 0.75 * _BETA
        return self.safety * math.pow(err, -alpha) * math.pow(max(previous, _ERROR_FLOOR), _BETA)

    def solve(self, problem: Problem) -> tuple[State, list[State], int]:
        """Adaptive steps from grid point to grid point (see the module notes).

        One host read per attempted step: the error norm that accepts or rejects it.
        """
        tab = self.tableau
        s = tab.stages
        fsal = tab.fsal
        rows = [[(j, a) for j, a in enumerate(row) if a != 0.0] for row in tab.a]
        weights = [(i, b) for i, b in enumerate(tab.b) if b != 0.0]
        errors = [(i, e) for i, e in enumerate(tab.error or ()) if e != 0.0]
        # stages entering only later stages' inputs: the cheaper `partial` serves (an FSAL
        # pair's last stage is the next step's first and is always evaluated in full)
        input_only = tab.input_only - {s - 1} if fsal else tab.input_only
        field = problem.velocity
        x = problem.x
        points = problem.times
        sign = problem.sign
        keep = set(problem.saved)
        trajectory = [x] if 0 in keep else []
        t = points[0]
        k1 = field(problem.grid[0], x)
        h = self._initial_step(t, x, k1, abs(points[-1] - t))
        attempts = accepted = failed = 0
        rejected = False
        previous: float | None = None  # the error of the last accepted step
        name = type(self).__name__
        for index in range(1, len(points)):
            stop = points[index]
            while (stop - t) * sign > 0:
                if attempts >= self.max_steps:
                    raise RuntimeError(
                        f"{name} exceeded max_steps={self.max_steps} at t = {t:.6g}; "
                        "loosen rtol/atol or raise max_steps"
                    )
                attempts += 1
                remaining = abs(stop - t)
                # a retry is never stretched past the controller's h
                step = self._step(remaining, h, 0.0 if rejected else _STRETCH)
                last = step >= remaining
                step = remaining if last else step
                dt = sign * step
                ks = [k1]
                xi = x
                for i in range(1, s):
                    xi = x + _combine(rows[i], ks, dt)
                    ti = stop if (last and tab.c[i] == 1.0) else t + tab.c[i] * dt
                    stage = problem.partial if i in input_only else field
                    ks.append(stage(x.new_full((), ti), xi))
                y = xi if fsal else x + _combine(weights, ks, dt)
                err = self._norm(_combine(errors, ks, dt), x, y)
                failed = failed + 1 if err == math.inf else 0
                if failed > 20:  # 20 shrinking retries all non-finite: the field is broken
                    raise FloatingPointError(
                        f"the {field.name} returned NaN or Inf near t = {t:.6g} for every "
                        "step tried"
                    )
                if err <= 1.0:
                    factor = max(_MIN_FACTOR, self._factor(err, previous))
                    factor = min(1.0 if rejected else _MAX_FACTOR, factor)
                    previous = err
                    t = stop if last else t + dt
                    x = y
                    k1 = ks[s - 1] if fsal else field(x.new_full((), t), x)
                    accepted += 1
                    rejected = False
                    # a step shortened to hit a grid point says little about the next one
                    h = max(h, step * factor) if last else step * factor
                else:
                    h = step * max(_MIN_FACTOR, self._factor(err, previous))
                    rejected = True
                if h < 1e-14 * max(1.0, abs(t)):
                    if failed:  # shrunk on non-finite errors: the field, not the tolerance
                        raise FloatingPointError(
                            f"the {field.name} returned NaN or Inf near t = {t:.6g} for every "
                            "step tried"
                        )
                    raise RuntimeError(
                        f"{name} step size underflow at t = {t:.6g}: the solution is too stiff "
                        "or diverges there"
                    )
            if index in keep:
                trajectory.append(x)
        return x, trajectory, accepted


@final
class Dopri5(EmbeddedRungeKutta):
    r"""Dormand–Prince 5(4) with error control on every sample (see the module notes).

    Order 5 with an embedded fourth-order estimate; six new evaluations per attempted step
    (FSAL).

    Example
    -------
    >>> import torch
    >>> from interpolants import Dopri5
    >>> x0 = torch.ones(2, 1, dtype=torch.float64)
    >>> sol = Dopri5(rtol=1e-8, atol=1e-8).integrate(
    ...     lambda t, x: x, x0, torch.tensor([0.0, 1.0], dtype=torch.float64))
    >>> abs(float(sol.state[0, 0]) - 2.718281828459045) < 1e-7
    True
    >>> (sol.nfe - 1) % 6  # one first evaluation, then six per attempted step
    0
    """

    tableau = DOPRI5
    order = 5
    error_order = 4


@final
class Bosh3(EmbeddedRungeKutta):
    r"""Bogacki–Shampine 3(2) with error control on every sample (see the module notes).

    Order 3 with an embedded second-order estimate; three new evaluations per attempted step
    (FSAL): a pair for loose tolerances, where few digits are wanted
    (``benchmarks/results/adaptive.md`` measures where it needs fewer evaluations than
    :class:`Dopri5`).

    Example
    -------
    >>> import torch
    >>> from interpolants.integrate import Bosh3
    >>> x0 = torch.ones(2, 1, dtype=torch.float64)
    >>> sol = Bosh3(rtol=1e-6, atol=1e-6).integrate(
    ...     lambda t, x: x, x0, torch.tensor([0.0, 1.0], dtype=torch.float64))
    >>> abs(float(sol.state[0, 0]) - 2.718281828459045) < 1e-5
    True
    >>> (sol.nfe - 1) % 3  # one first evaluation, then three per attempted step
    0
    """

    tableau = BOSH3
    order = 3
    error_order = 2
    safety = 0.75
