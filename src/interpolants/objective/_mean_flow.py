r"""The mean-flow objective: learn the average velocity u(t, r, x) for one- and few-step sampling.

The flow map of the probability-flow ODE ẋ = b(t, x) is X_{t→r}(x) = x + (r − t)·u(t, r, x)
with the *average velocity* u(t, r, x) = (r − t)⁻¹∫_t^r b(τ, X_{t→τ}(x)) dτ
(:class:`~interpolants.integrate.FlowMap`). Differentiating (r − t)·u(t, r, x_t) = ∫_t^r b dτ
in t along a trajectory x_t of the flow gives the MeanFlow identity (:doc:`/mathematics`),

.. math:: u(t, r, x) = b(t, x) + (r − t)\,\big(∂_t u(t, r, x) + ∇_x u(t, r, x)\, b(t, x)\big),

whose right side is a regression target for u once b is replaced by the interpolant's
conditional velocity (the target is linear in it) and the derivative of u is taken at the
current model without a gradient (stop-gradient).
"""

from collections.abc import Callable
from typing import Any, final

import torch
from jaxtyping import Float
from torch import Tensor

from .._types import Scalar, TimeLike
from .._validation import broadcast_time
from ..interpolant._base import Interpolant
from ..interpolant._values import InterpolantSample
from ._base import (
    LossWeight,
    Model,
    Objective,
    Predict,
    bind_condition,
    check_given_time,
    check_pair,
    check_prediction,
)
from ._regression import regression_loss
from ._time import TimeSampler

__all__ = ["MeanFlowObjective", "mean_flow_target"]


def mean_flow_target(
    average: Callable[..., Any],
    t: Float[Tensor, " batch"],
    r: Float[Tensor, " batch"],
    x: Float[Tensor, "batch *dims"],
    velocity: Float[Tensor, "batch *dims"],
) -> tuple[Float[Tensor, "batch *dims"], Float[Tensor, "batch *dims"]]:
    r"""The average velocity u(t, r, x) of a model and its MeanFlow regression target.

    .. math:: u_{\mathrm{tgt}} = v + (r − t)\,\big(∂_t u(t, r, x) + ∇_x u(t, r, x)\, v\big),

    the total derivative of u along (ẋ, ṫ, ṙ) = (v, 1, 0) computed with one forward-mode
    Jacobian–vector product (:func:`torch.func.jvp`, in the same pass as u). The target is
    detached (stop-gradient); u keeps its graph, so the loss (1/D)‖u − u_tgt‖² trains u. With
    v = b(t, x) the target of the exact average velocity is u itself (:doc:`/mathematics`).

    Parameters
    ----------
    average:
        The model of u, called as ``average(t, r, x)``; it must support forward-mode
        differentiation (every differentiable torch op does, ``torch.func`` transforms apply).
    t, r:
        Start and end times, shape ``(B,)``.
    x:
        The points x_t, shape ``(B, *dims)``.
    velocity:
        The velocity v along which x moves, of x's shape (the interpolant's conditional
        velocity in training, or an exact b).

    Returns
    -------
    u, target:
        u(t, r, x) and the detached target, both of x's shape.

    Example
    -------
    >>> import torch
    >>> # ẋ = 1: X_{t→r}(x) = x + r − t, so u ≡ 1 and its target is 1 + (r − t)·0
    >>> t, r, x = torch.zeros(3), torch.ones(3), torch.randn(3, 2)
    >>> u, target = mean_flow_target(lambda t, r, x: torch.ones_like(x), t, r, x,
    ...                              torch.ones_like(x))
    >>> bool(torch.equal(u, target))
    True
    """

    def call(x: Tensor, t: Tensor, r: Tensor) -> Tensor:
        return check_prediction(average(t, r, x), x, "model")

    tangents = (velocity.detach(), torch.ones_like(t), torch.zeros_like(r))
    u, slope = torch.func.jvp(call, (x, t, r), tangents)  # type: ignore[misc]
    target = velocity + broadcast_time(r - t, x) * slope
    return u, target.detach()


@final
class MeanFlowObjective(Objective):
    r"""Learn the average velocity u(t, r, x) over [t, r] of the flow of b (a mean flow).

    .. math:: L(\hat u) = \tfrac1D E\,\big|\hat u(t, r, x_t) − \mathrm{sg}\big[\dot I_t
              + (r − t)(∂_t \hat u + ∇_x \hat u\,\dot I_t)\big]\big|^2,
              \qquad \dot I_t = \dot α x_0 + \dot β x_1 + \dot γ z,

    with sg the stop-gradient (:func:`mean_flow_target`). Its fixed point is the exact average
    velocity u(t, r, x) = (X_{t→r}(x) − x)/(r − t) of the ODE of b (the target is linear in
    İ_t, whose conditional mean given x_t is b); at r = t it is velocity matching of
    u(t, t, ·) = b. Sample in one evaluation with
    ``FlowMapSteps().integrate(FlowMap(model), x0, time_grid(1))``, or in a few
    (:class:`~interpolants.integrate.FlowMapSteps`).

    **The model** is called as ``model(t, r, x)`` (or ``model(t, r, x, condition=c)``), t and r
    of shape ``(B,)``, and returns u of x's shape: an
    :data:`~interpolants.integrate.AverageVelocity`. It is differentiated forward in (x, t)
    by :func:`torch.func.jvp` on every loss.

    **The times.** Per sample, a and b are drawn from ``time_sampler``; with probability
    ``diagonal`` the pair is (t, r) = (a, a), otherwise (min(a, b), max(a, b)), so r ≥ t: the
    model learns forward jumps (t = 0 → 1 is the one-step sampler). :meth:`draw` returns the
    times as one tensor of shape ``(B, 2)``, columns (t, r). The sampler's weights enter as
    w(t)w(r) off the diagonal and w(t) on it, so that for
    :class:`~interpolants.objective.ImportanceWeighted` the
    expected loss is the one under uniform a and b; ``loss_weight`` is evaluated at t.

    Parameters
    ----------
    interpolant:
        The :class:`~interpolants.Interpolant` defining x_t and the velocity target İ_t.
    time_sampler:
        The law of a and b (default uniform).
    diagonal:
        The fraction of draws with r = t, in [0, 1] (default 0.25).
    antithetic:
        Average the loss over the pair ±z (or ±x0 one-sided), as for every objective.
    loss_weight:
        An optional per-time weight λ(t) (see :class:`~interpolants.Objective`).

    Notes
    -----
    The loss is the mean squared error of the other objectives; its optimum is not zero (the
    target holds the conditional noise of İ_t). Given times: ``t`` alone means r = t (velocity
    matching of u(t, t, ·)); pass ``r`` too for a jump.

    References
    ----------
    Z. Geng, M. Deng, X. Bai, J. Z. Kolter, K. He, *Mean Flows for One-step Generative
    Modeling*, arXiv:2505.13447.

    Example
    -------
    >>> import torch
    >>> from interpolants import LinearInterpolant
    >>> from interpolants.objective import MeanFlowObjective
    >>> objective = MeanFlowObjective(LinearInterpolant())
    >>> x0, x1 = torch.zeros(4, 2), torch.ones(4, 2)
    >>> # x_t moves at the constant velocity 1: u ≡ 1 is exact, whatever (t, r)
    >>> float(objective.loss(lambda t, r, x: torch.ones_like(x), x0, x1))
    0.0
    """

    def __init__(
        self,
        interpolant: Interpolant,
        *,
        time_sampler: TimeSampler | None = None,
        diagonal: float = 0.25,
        antithetic: bool = False,
        loss_weight: LossWeight | None = None,
    ) -> None:
        super().__init__(
            interpolant,
            time_sampler=time_sampler,
            antithetic=antithetic,
            loss_weight=loss_weight,
        )
        if (
            not isinstance(diagonal, (int, float))
            or isinstance(diagonal, bool)
            or not 0.0 <= diagonal <= 1.0
        ):
            raise ValueError(f"diagonal must be a number in [0, 1], got {diagonal!r}")
        self.diagonal = float(diagonal)

    def sample_losses(self, predict: Predict, sample: InterpolantSample) -> Float[Tensor, " batch"]:
        """The losses of a draw with r = t: velocity matching of u(t, t, ·) (no JVP needed)."""
        xt = sample.xt
        u = check_prediction(predict(sample.t, sample.t, xt), xt, "model")  # type: ignore[call-arg]
        return regression_loss(u, sample.velocity)

    def pair_losses(
        self, predict: Callable[..., Any], sample: InterpolantSample, r: Float[Tensor, " batch"]
    ) -> Float[Tensor, " batch"]:
        """The unweighted per-sample losses (1/D)‖u − u_tgt‖² of a draw ending at ``r``."""
        u, target = mean_flow_target(predict, sample.t, r, sample.xt, sample.velocity)
        return regression_loss(u, target)

    def draw(
        self,
        x0: Float[Tensor, "batch *dims"],
        *,
        generator: torch.Generator | None = None,
        z: Float[Tensor, "batch *dims"] | None = None,
        t: Float[Tensor, " batch"] | None = None,
        r: Float[Tensor, " batch"] | None = None,
    ) -> tuple[Float[Tensor, "batch 2"], Float[Tensor, "batch *dims"] | None]:
        """The random draw of one loss: the times ``(B, 2)`` (columns t, r) and the noise.

        Drawn in this order from ``generator``: a, b ~ ``time_sampler``, the diagonal
        indicators, and z ~ N(0, I) for a stochastic interpolant (unless given). A given
        ``t`` without ``r`` means r = t. Reads no value.
        """
        n = x0.shape[0]
        if t is None:
            if r is not None:
                raise ValueError("r was given without t: pass both, or t alone (r = t)")
            opts: dict[str, Any] = {"generator": generator, "dtype": x0.dtype, "device": x0.device}
            a = self.time_sampler.sample(n, **opts)
            b = self.time_sampler.sample(n, **opts)
            same = torch.rand(n, **opts) < self.diagonal
            t = torch.where(same, a, torch.minimum(a, b))
            r = torch.where(same, a, torch.maximum(a, b))
        elif r is None:
            r = t
        if self.interpolant.is_stochastic and z is None:
            z = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        return torch.stack([t, r], dim=1), z

    def _losses_at(
        self,
        predict: Predict,
        t: Float[Tensor, "batch 2"],
        x0: Float[Tensor, "batch *dims"],
        x1: Float[Tensor, "batch *dims"],
        z: Float[Tensor, "batch *dims"] | None,
    ) -> Float[Tensor, " batch"]:
        """The weighted per-sample losses at the times ``t`` of :meth:`draw` (columns t, r),
        unchecked (the trainer's path, as for every objective)."""
        start, end = t[:, 0], t[:, 1]
        interpolant = self.interpolant
        sample = interpolant.sample(start, x0, x1, z)
        losses = self.pair_losses(predict, sample, end)
        if self.antithetic:
            flip = interpolant.antithetic(x0, x1, z)
            flipped = interpolant.sample(start, *flip, coefficients=sample.coefficients)
            losses = 0.5 * (losses + self.pair_losses(predict, flipped, end))
        if type(self.time_sampler).weight is not TimeSampler.weight:
            w = self.time_sampler.weight
            both = w(start) * torch.where(end == start, torch.ones_like(end), w(end))
            losses = both * losses
        return self._apply_loss_weight(losses, start)

    def _mean_at(
        self,
        predict: Predict,
        t: Float[Tensor, "batch 2"],
        x0: Float[Tensor, "batch *dims"],
        x1: Float[Tensor, "batch *dims"],
        z: Float[Tensor, "batch *dims"] | None,
    ) -> Scalar:
        """The mean of :meth:`_losses_at` (a draw of two times: no fused form)."""
        return self._losses_at(predict, t, x0, x1, z).mean()

    def per_sample_loss(
        self,
        model: Model,
        x0: Float[Tensor, "batch *dims"],
        x1: Float[Tensor, "batch *dims"],
        *,
        t: TimeLike | None = None,
        r: TimeLike | None = None,
        z: Float[Tensor, "batch *dims"] | None = None,
        generator: torch.Generator | None = None,
        condition: Any = None,
    ) -> Float[Tensor, " batch"]:
        """The weighted per-sample losses, shape ``(B,)``, of the model ``model(t, r, x)``.

        As :meth:`Objective.per_sample_loss`, with the end time ``r`` (a number, a scalar or
        shape ``(B,)`` in [0, 1]): both drawn if ``t`` is omitted; r = t if only ``t`` is
        given.
        """
        check_pair(x0, x1)
        if t is None:
            if r is not None:
                raise ValueError("r was given without t: pass both, or t alone (r = t)")
            times, z = self.draw(x0, generator=generator, z=z)
        else:
            start = check_given_time(t, x0)
            end = None if r is None else check_given_time(r, x0, "r")
            times, z = self.draw(x0, generator=generator, z=z, t=start, r=end)
        return self._losses_at(bind_condition(model, condition), times, x0, x1, z)

    def loss(
        self,
        model: Model,
        x0: Float[Tensor, "batch *dims"],
        x1: Float[Tensor, "batch *dims"],
        *,
        t: TimeLike | None = None,
        r: TimeLike | None = None,
        z: Float[Tensor, "batch *dims"] | None = None,
        generator: torch.Generator | None = None,
        condition: Any = None,
    ) -> Scalar:
        """The scalar loss: the mean of :meth:`per_sample_loss` (same arguments)."""
        return self.per_sample_loss(
            model, x0, x1, t=t, r=r, z=z, generator=generator, condition=condition
        ).mean()

    def __repr__(self) -> str:
        return f"MeanFlowObjective({self._repr_arguments()}, diagonal={self.diagonal})"
