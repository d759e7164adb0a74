r"""The abstract :class:`Objective`: time sampling, noise, antithetic pairs, model calls.

See :mod:`interpolants.objective` for the model protocol and the list of objectives.
"""

import abc
from collections.abc import Callable
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from .._overrides import covers
from .._types import Scalar, TimeLike
from .._validation import check_floating, check_same_shape, check_time_range
from ..interpolant._base import Interpolant
from ..interpolant._values import InterpolantSample
from ._time import TimeSampler, UniformTime

__all__ = [
    "LossWeight",
    "Model",
    "Objective",
    "Predict",
    "check_prediction",
]

Model = Callable[..., Any]
"""Any callable ``model(t, x)`` or ``model(t, x, condition=c)`` (see the package docs)."""

Predict = Callable[[Tensor, Tensor], Any]
"""The model with its condition bound: ``predict(t, x)`` (what :meth:`~Objective.sample_losses`
receives)."""


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


def bind_condition(model: Model, condition: Any) -> Predict:
    """``model`` with its condition bound: ``model(t, x)`` if ``condition`` is ``None``, else
    ``model(t, x, condition=condition)`` (any positional arguments, so an average velocity
    ``model(t, r, x)`` is bound alike)."""
    if condition is None:
        return model

    def predict(*args: Tensor) -> Any:
        return model(*args, condition=condition)

    return predict


LossWeight = Callable[[Tensor], Tensor]
"""A per-time loss weight ``weight(t)``: ``t`` of shape ``(B,)`` to positive weights of that
shape, multiplying the per-sample losses (the ``loss_weight`` of an :class:`Objective`)."""


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
    loss_weight:
        An optional per-time weight λ(t) (:data:`LossWeight`, e.g. a module-level function, so
        that the objective pickles) multiplying each per-sample loss, after the time
        sampler's :meth:`~TimeSampler.weight`: the loss becomes E[w(t)λ(t)ℓ(t)]. It changes
        the emphasis of the times (and, for a model that cannot fit every t, the fit), not
        the minimiser of an exact model wherever λ > 0. Default: none (λ ≡ 1).

    Notes
    -----
    **Scale.** Every per-sample loss is a mean squared error (1/D)‖m̂ − y‖² over the D trailing
    entries (:func:`~interpolants.objective.regression_loss`), for a prediction m̂ and a target
    y whose conditional mean given x_t is the field learned, and :meth:`loss` is its batch
    mean: the quantity torchcfm and
    torchebm report (``mean((m̂ − y)**2)`` over batch and entries), so loss curves compare with
    theirs for the same path, coupling and time law. Its optimum is the mean conditional
    variance of y per entry, (1/D)E‖y − E[y | x_t]‖², not zero.

    **Gradients.** (1/D)‖m̂ − y‖² = (2/D)(½‖m̂‖² − y·m̂) + ‖y‖²/D, and ‖y‖² has no gradient:
    the gradient of the loss is 2/D times that of the "dot" form ½‖m̂‖² − y·m̂ summed over the
    entries (the value earlier versions of this library reported; identical for D = 2). Adam is
    invariant to that factor, up to its ``eps``; gradient clipping and SGD learning rates are
    not.

    **Variance near the ends.** With :class:`~interpolants.BrownianGamma` the velocity target
    holds γ̇z with γ̇² = a(1 − 2t)²/(4t(1 − t)), so E‖y‖² = ∞ for uniform t (∫dt/t diverges):
    the reported MSE has a heavy tail, all of it from the parameter-free ‖y‖²/D. The gradient
    carries none of it: with ``antithetic=True`` the γ̇z terms of the pair cancel in the
    gradient to O(γγ̇), which is bounded. So this library reports the MSE and optimises it
    (the same gradient as the finite dot form); for a low-variance loss *value* (e.g. a
    validation curve) prefer :class:`~interpolants.SplitObjective`, whose targets are bounded,
    or a γ with bounded γ̇ (:class:`~interpolants.interpolant.QuadraticGamma`,
    :class:`~interpolants.interpolant.SineSquaredGamma`).

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
    >>> float(objective.loss(lambda t, x: x1 - x0, x0, x1))  # at the minimiser (no noise)
    0.0
    >>> float(objective.loss(lambda t, x: torch.zeros_like(x), x0, x1))  # mean((0 − 1)²)
    1.0
    """

    #: Whether the objective learns a noise-dependent field (denoiser, score) and so needs a
    #: stochastic or one-sided interpolant; checked at construction.
    needs_noise: bool = False

    # Set per class: whether loss() is the mean of an overriding per_sample_loss, and whether
    # it may use sample_mean_loss (not where a subclass overrides sample_losses,
    # per_sample_loss or _losses_at below the class that defines the shortcut).
    _loss_by_per_sample: bool = False
    _fused_mean: bool = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._loss_by_per_sample = not covers(cls, "loss", "per_sample_loss")
        cls._fused_mean = (
            not cls._loss_by_per_sample
            and covers(cls, "sample_mean_loss", "sample_losses")
            and covers(cls, "_mean_at", "_losses_at")
        )

    def __init__(
        self,
        interpolant: Interpolant,
        *,
        time_sampler: TimeSampler | None = None,
        antithetic: bool = False,
        loss_weight: LossWeight | None = None,
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
        if loss_weight is not None and not callable(loss_weight):
            raise TypeError(
                f"loss_weight must be callable as loss_weight(t), got {type(loss_weight).__name__}"
            )
        self.interpolant = interpolant
        self.time_sampler = UniformTime() if time_sampler is None else time_sampler
        self.antithetic = bool(antithetic)
        self.loss_weight = loss_weight

    @abc.abstractmethod
    def sample_losses(self, predict: Predict, sample: InterpolantSample) -> Float[Tensor, " batch"]:
        """The unweighted per-sample losses of one draw, shape ``(B,)``.

        This is the method a new objective implements. ``sample`` holds the draw (t, x0, x1,
        z), x_t, every regression target and the schedule values
        (:class:`InterpolantSample`); ``predict(t, x)`` calls the
        model (with its condition bound) and may return anything the objective expects.
        Validate the prediction's shape with :func:`check_prediction` and build the loss from
        :func:`~interpolants.objective.regression_loss` (or any per-sample loss whose minimiser is
        the field wanted).
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
        tt, z = self._checked_draw(x0, x1, t, z, generator)
        return self._losses_at(bind_condition(model, condition), tt, x0, x1, z)

    def _checked_draw(
        self,
        x0: Tensor,
        x1: Tensor,
        t: TimeLike | None,
        z: Tensor | None,
        generator: torch.Generator | None,
    ) -> tuple[Tensor, Tensor | None]:
        """Validate the pair and draw (t, z) for :meth:`per_sample_loss` and :meth:`loss`."""
        check_pair(x0, x1)
        if t is None:  # drawn here: in range and of the right shape by construction
            return self.draw(x0, generator=generator, z=z)
        # given by the caller: checked once, the one host read of the call
        return self.draw(x0, generator=generator, z=z, t=check_given_time(t, x0))

    def draw(
        self,
        x0: Float[Tensor, "batch *dims"],
        *,
        generator: torch.Generator | None = None,
        z: Float[Tensor, "batch *dims"] | None = None,
        t: Float[Tensor, " batch"] | None = None,
    ) -> tuple[Float[Tensor, " batch"], Float[Tensor, "batch *dims"] | None]:
        """The random draw of one loss for the batch ``x0``: times and noise ``(t, z)``.

        t ~ ``time_sampler`` (unless given) and, for a stochastic interpolant, z ~ N(0, I) of
        x0's shape (unless given), in this order from ``generator``, in x0's dtype and on its
        device; z is ``None`` otherwise. :meth:`per_sample_loss` draws with it, so a caller
        that draws first and evaluates the loss on slices of the batch (gradient
        accumulation, as :class:`~interpolants.Trainer` does) gets the same losses. Reads no value.
        """
        n = x0.shape[0]
        if t is None:
            t = self.time_sampler.sample(n, generator=generator, dtype=x0.dtype, device=x0.device)
        if self.interpolant.is_stochastic and z is None:
            z = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        return t, z

    def _losses_at(
        self,
        predict: Predict,
        t: Float[Tensor, " batch"],
        x0: Float[Tensor, "batch *dims"],
        x1: Float[Tensor, "batch *dims"],
        z: Float[Tensor, "batch *dims"] | None,
    ) -> Float[Tensor, " batch"]:
        """The weighted per-sample losses at a given draw, without validating the inputs
        (internal: the trainer's unchecked path).

        The core of :meth:`per_sample_loss` (which validates, draws ``(t, z)`` with
        :meth:`draw` and binds the condition): forms the sample with the interpolant, calls
        :meth:`sample_losses` (twice if ``antithetic``) and applies the time weights. The
        caller guarantees what :meth:`per_sample_loss` checks: floating x0 and x1 of one shape,
        dtype and device, t of shape ``(B,)`` in [0, 1], z of x0's shape or ``None`` (for a
        stochastic interpolant it must be given).
        """
        interpolant = self.interpolant
        sample = interpolant.sample(t, x0, x1, z)
        losses = self.sample_losses(predict, sample)
        if self.antithetic:  # the flipped draw shares the schedule values
            flip = interpolant.antithetic(x0, x1, z)
            flipped = interpolant.sample(t, *flip, coefficients=sample.coefficients)
            losses = 0.5 * (losses + self.sample_losses(predict, flipped))
        if type(self.time_sampler).weight is not TimeSampler.weight:  # else unit weights
            losses = self.time_sampler.weight(t) * losses
        return self._apply_loss_weight(losses, t)

    def _apply_loss_weight(
        self, losses: Float[Tensor, " batch"], t: Float[Tensor, " batch"]
    ) -> Float[Tensor, " batch"]:
        """``losses`` times ``loss_weight(t)`` (checked for its shape only), if one is set."""
        if self.loss_weight is None:
            return losses  # no multiply (and no node in the backward pass)
        weight = self.loss_weight(t)
        if not isinstance(weight, Tensor) or weight.shape != t.shape:
            raise ValueError(
                f"loss_weight must return a tensor of the shape of t, {tuple(t.shape)}, got "
                f"{tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__}"
            )
        return weight * losses

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
        """The scalar Monte-Carlo loss: the mean of :meth:`per_sample_loss` (same arguments).

        Where no per-sample weight applies (``antithetic`` off, a time sampler with unit
        weights and no ``loss_weight``) it is :meth:`sample_mean_loss` of the draw: the same
        value, by the objective's fused mean where it has one. A subclass that overrides
        :meth:`per_sample_loss` or :meth:`sample_losses` below the class that defines
        :meth:`sample_mean_loss` gets the mean of its override instead.
        """
        if self._loss_by_per_sample:
            return self.per_sample_loss(
                model, x0, x1, t=t, z=z, generator=generator, condition=condition
            ).mean()
        tt, z = self._checked_draw(x0, x1, t, z, generator)
        return self._mean_at(bind_condition(model, condition), tt, x0, x1, z)

    def sample_mean_loss(self, predict: Predict, sample: InterpolantSample) -> Scalar:
        """The batch mean of :meth:`sample_losses` at one draw, a scalar.

        :meth:`loss` (and :class:`~interpolants.Trainer`) call it for a draw without
        per-sample weights, so an objective may override it with a fused computation of the
        same value: :class:`~interpolants.objective.RegressionObjective` (every built-in
        objective but the MeanFlow one) takes one
        :func:`~interpolants.objective.mean_regression_loss` per term instead of per-sample
        means and their mean. The default is ``self.sample_losses(predict, sample).mean()``.
        """
        return self.sample_losses(predict, sample).mean()

    def _mean_at(
        self,
        predict: Predict,
        t: Float[Tensor, " batch"],
        x0: Float[Tensor, "batch *dims"],
        x1: Float[Tensor, "batch *dims"],
        z: Float[Tensor, "batch *dims"] | None,
    ) -> Scalar:
        """The mean of :meth:`_losses_at` (same unchecked arguments), by
        :meth:`sample_mean_loss` where no per-sample weight applies."""
        if (
            not self._fused_mean
            or self.antithetic
            or self.loss_weight is not None
            or type(self.time_sampler).weight is not TimeSampler.weight
        ):
            return self._losses_at(predict, t, x0, x1, z).mean()
        return self.sample_mean_loss(predict, self.interpolant.sample(t, x0, x1, z))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._repr_arguments()})"

    def _repr_arguments(self) -> str:
        """The constructor's arguments as written in the ``repr`` (the loss weight only if
        set, by its qualified name)."""
        out = (
            f"{self.interpolant!r}, time_sampler={self.time_sampler!r}, "
            f"antithetic={self.antithetic}"
        )
        if self.loss_weight is not None:
            out += f", loss_weight={callable_name(self.loss_weight)}"
        return out


def callable_name(fn: Callable[..., Any]) -> str:
    """A function's ``module.qualname`` (stable across pickling), else its ``repr``."""
    qualname = getattr(fn, "__qualname__", None)
    module = getattr(fn, "__module__", None)
    if isinstance(qualname, str) and isinstance(module, str):
        return f"{module}.{qualname}"
    return repr(fn)


def check_pair(x0: Tensor, x1: Tensor) -> None:
    """Validate a paired batch from its metadata (floating, one shape, dtype and device, a
    non-empty batch); reads no value."""
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


def check_given_time(t: TimeLike, x0: Tensor, name: str = "t") -> Tensor:
    """A caller's time as shape ``(B,)`` on x0's dtype and device, its range checked once
    (errors name the argument ``name``)."""
    n = x0.shape[0]
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {t}")
        return torch.full((n,), float(t), dtype=x0.dtype, device=x0.device)
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a number or a torch.Tensor, got {type(t).__name__}")
    check_floating(t, name)
    if t.ndim > 1 or (t.ndim == 1 and t.shape[0] != n):
        raise ValueError(f"{name} must have shape () or ({n},), got {tuple(t.shape)}")
    check_time_range(t, name)
    return t.to(dtype=x0.dtype, device=x0.device).expand(n)
