r"""The abstract :class:`Objective`: time sampling, noise, antithetic pairs, model calls.

See :mod:`interpolants.objective` for the model protocol and the list of objectives.
"""

import abc
from collections.abc import Callable
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from .._types import Scalar, TimeLike
from .._validation import check_floating, check_same_shape, check_time_range
from ..interpolant._base import Interpolant
from ..interpolant._values import InterpolantSample
from ._time import TimeSampler, UniformTime

__all__ = ["Model", "Objective", "Predict", "check_prediction", "regression_loss"]

Model = Callable[..., Any]
"""Any callable ``model(t, x)`` or ``model(t, x, condition=c)`` (see the package docs)."""

Predict = Callable[[Tensor, Tensor], Any]
"""The model with its condition bound: ``predict(t, x)`` (what :meth:`~Objective.sample_losses`
receives)."""


def regression_loss(
    prediction: Float[Tensor, "batch *dims"], target: Float[Tensor, "batch *dims"]
) -> Float[Tensor, " batch"]:
    """Per-sample ½|m̂|² − y·m̂ = ½|m̂ − y|² − ½|y|², summed over the trailing dims.

    The minimiser over m̂ of its expectation given x_t is E[y | x_t]; the dropped ½|y|² does not
    change it nor the gradients.

    Example
    -------
    >>> import torch
    >>> regression_loss(torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 0.0]]))
    tensor([1.5000])
    """
    return (prediction * (0.5 * prediction - target)).flatten(1).sum(1)


def check_prediction(out: object, x: Tensor, what: str) -> Tensor:
    """Raise unless ``out`` is a tensor of ``x``'s shape (naming ``what``); return it."""
    if not isinstance(out, Tensor):
        raise TypeError(f"{what} must return a torch.Tensor, got {type(out).__name__}")
    if out.shape != x.shape:
        raise ValueError(
            f"{what} must return a tensor of shape {tuple(x.shape)} (the shape of x), "
            f"got {tuple(out.shape)}"
        )
    return out


class Objective(abc.ABC):
    r"""Abstract regression objective of a stochastic interpolant.

    **Writing an objective.** Implement :meth:`sample_losses` (and set :attr:`needs_noise` if
    the learned field is the denoiser or the score).

    One call of :meth:`loss` draws t ~ ``time_sampler`` and z ~ N(0, I) per sample (unless
    given), forms x_t and the regression target with the interpolant, calls the model once
    (twice if ``antithetic``) and returns the mean of the weighted per-sample losses.

    Parameters
    ----------
    interpolant:
        The :class:`Interpolant` defining x_t and the targets.
    time_sampler:
        The distribution of t (default :class:`UniformTime`); its :meth:`~TimeSampler.weight`
        multiplies each per-sample loss.
    antithetic:
        Average the per-sample loss at the pair x_t^± = αx0 + βx1 ± γz (targets with ±z), or,
        for a one-sided interpolant, x_t^± = ±αx0 + βx1. The same expectation (z and −z have
        the same law) and a much lower variance near the ends, where the O(γ̇) and O(γ⁻¹)
        noise terms cancel within the pair (:doc:`/mathematics`). Needs a noise to flip: a
        stochastic or a one-sided interpolant.

    Notes
    -----
    Every per-sample loss has the form ½|m̂|² − y·m̂ = ½|m̂ − y|² − ½|y|² for a prediction m̂
    and a target y whose conditional mean given x_t is the field learned, summed over the
    trailing dims. The dropped constant ½|y|² does not change the minimiser or the gradients,
    but it has unbounded variance near the ends (y contains γ̇z); so the loss value may be
    negative, and its optimum is −½E|E[y|x_t]|², not zero.

    Example
    -------
    >>> import torch
    >>> from interpolants import LinearInterpolant, Objective
    >>> from interpolants.objective import check_prediction, regression_loss
    >>> class MeanVelocityObjective(Objective):  # learn v = E[α̇x0 + β̇x1 | x_t]
    ...     def sample_losses(self, predict, sample):
    ...         v = check_prediction(predict(sample.t, sample.xt), sample.xt, "model")
    ...         return regression_loss(v, sample.mean_velocity)
    >>> objective = MeanVelocityObjective(LinearInterpolant())
    >>> x0, x1 = torch.zeros(4, 2), torch.ones(4, 2)
    >>> float(objective.loss(lambda t, x: x1 - x0, x0, x1))  # at the minimiser: −½|v|²
    -1.0
    """

    #: Whether the objective learns a noise-dependent field (denoiser, score) and so needs a
    #: stochastic or one-sided interpolant; checked at construction.
    needs_noise: bool = False

    def __init__(
        self,
        interpolant: Interpolant,
        *,
        time_sampler: TimeSampler | None = None,
        antithetic: bool = False,
    ) -> None:
        if not isinstance(interpolant, Interpolant):
            raise TypeError(f"interpolant must be an Interpolant, got {type(interpolant).__name__}")
        if time_sampler is not None and not isinstance(time_sampler, TimeSampler):
            raise TypeError(
                f"time_sampler must be a TimeSampler, got {type(time_sampler).__name__}"
            )
        if self.needs_noise and not interpolant.has_noise:
            raise ValueError(
                f"{type(self).__name__} needs a noise to predict: a stochastic (γ ≠ 0) or "
                f"one-sided interpolant, got {interpolant!r}"
            )
        if antithetic and not interpolant.has_noise:
            raise ValueError(
                f"antithetic=True needs a noise to flip (a stochastic or one-sided "
                f"interpolant), got {interpolant!r}"
            )
        self.interpolant = interpolant
        self.time_sampler = UniformTime() if time_sampler is None else time_sampler
        self.antithetic = bool(antithetic)

    @abc.abstractmethod
    def sample_losses(self, predict: Predict, sample: InterpolantSample) -> Float[Tensor, " batch"]:
        """The unweighted per-sample losses of one draw, shape ``(B,)``.

        This is the method a new objective implements. ``sample`` holds the draw (t, x0, x1,
        z), x_t, every regression target and the schedule values
        (:class:`InterpolantSample`); ``predict(t, x)`` calls the
        model (with its condition bound) and may return anything the objective expects.
        Validate the prediction's shape with :func:`check_prediction` and build the loss from
        :func:`regression_loss` (or any per-sample loss whose minimiser is the field wanted).
        It must not read tensor values on the host (it runs every training step). The
        antithetic pair, time weights and the mean are applied by :meth:`per_sample_loss` and
        :meth:`loss`.
        """

    def per_sample_loss(
        self,
        model: Model,
        x0: Float[Tensor, "batch *dims"],
        x1: Float[Tensor, "batch *dims"],
        *,
        t: TimeLike | None = None,
        z: Float[Tensor, "batch *dims"] | None = None,
        generator: torch.Generator | None = None,
        condition: Any = None,
    ) -> Float[Tensor, " batch"]:
        """The weighted per-sample losses, shape ``(B,)``; their mean is :meth:`loss`.

        Parameters
        ----------
        model:
            The model, called as ``model(t, x)`` or ``model(t, x, condition=condition)``.
        x0, x1:
            Paired base and target samples, shape ``(B, *dims)`` (for a one-sided
            interpolant x0 ~ N(0, I) is the noise).
        t:
            Optional times (number, scalar or shape ``(B,)`` in [0, 1]); drawn from
            ``time_sampler`` if omitted.
        z:
            Optional noise of x0's shape; drawn if omitted (stochastic interpolants only).
        generator:
            The random generator for t and z (on x0's device).
        condition:
            Passed to the model as the keyword ``condition`` when not ``None``.
        """
        check_floating(x0, "x0")
        check_floating(x1, "x1")
        check_same_shape([("x0", x0), ("x1", x1)])
        if x0.ndim == 0 or x0.shape[0] == 0:
            raise ValueError(f"x0 must have shape (batch, *dims) with batch > 0, got {x0.shape}")
        if x1.dtype != x0.dtype or x1.device != x0.device:
            raise TypeError(
                f"x1 must have x0's dtype and device ({x0.dtype}, {x0.device}), "
                f"got ({x1.dtype}, {x1.device})"
            )
        n = x0.shape[0]
        if t is None:  # drawn here: in range and of the right shape by construction
            tt = self.time_sampler.sample(n, generator=generator, dtype=x0.dtype, device=x0.device)
        else:  # given by the caller: checked once, the one host read of the call
            tt = _given_time(t, x0)
        if self.interpolant.is_stochastic and z is None:
            z = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)

        def predict(time: Tensor, x: Tensor) -> Any:
            if condition is None:
                return model(time, x)
            return model(time, x, condition=condition)

        interpolant = self.interpolant
        sample = interpolant.sample(tt, x0, x1, z)
        losses = self.sample_losses(predict, sample)
        if self.antithetic:  # the flipped draw shares the schedule values
            flip = interpolant.antithetic(x0, x1, z)
            flipped = interpolant.sample(tt, *flip, coefficients=sample.coefficients)
            losses = 0.5 * (losses + self.sample_losses(predict, flipped))
        if type(self.time_sampler).weight is TimeSampler.weight:
            return losses  # unit weights: no multiply (and no node in the backward pass)
        return self.time_sampler.weight(tt) * losses

    def loss(
        self,
        model: Model,
        x0: Float[Tensor, "batch *dims"],
        x1: Float[Tensor, "batch *dims"],
        *,
        t: TimeLike | None = None,
        z: Float[Tensor, "batch *dims"] | None = None,
        generator: torch.Generator | None = None,
        condition: Any = None,
    ) -> Scalar:
        """The scalar Monte-Carlo loss: the mean of :meth:`per_sample_loss` (same arguments)."""
        return self.per_sample_loss(
            model, x0, x1, t=t, z=z, generator=generator, condition=condition
        ).mean()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.interpolant!r}, time_sampler={self.time_sampler!r}, "
            f"antithetic={self.antithetic})"
        )


def _given_time(t: TimeLike, x0: Tensor) -> Tensor:
    """A caller's time as shape ``(B,)`` on x0's dtype and device, its range checked once."""
    n = x0.shape[0]
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"t must lie in [0, 1], got {t}")
        return torch.full((n,), float(t), dtype=x0.dtype, device=x0.device)
    if not isinstance(t, Tensor):
        raise TypeError(f"t must be a number or a torch.Tensor, got {type(t).__name__}")
    check_floating(t, "t")
    if t.ndim > 1 or (t.ndim == 1 and t.shape[0] != n):
        raise ValueError(f"t must have shape () or ({n},), got {tuple(t.shape)}")
    check_time_range(t, "t")
    return t.to(dtype=x0.dtype, device=x0.device).expand(n)
