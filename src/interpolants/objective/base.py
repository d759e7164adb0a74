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
from .._validation import as_time, check_floating, check_same_shape
from ..interpolant import Coefficients, Interpolant, InterpolantSample, OneSidedInterpolant
from .time import TimeSampler, UniformTime

__all__ = ["Model", "Objective"]

Model = Callable[..., Any]
"""Any callable ``model(t, x)`` or ``model(t, x, condition=c)`` (see the package docs)."""

Predict = Callable[[Tensor, Tensor], Any]


def dot_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """Per-sample ½|m̂|² − y·m̂ summed over the trailing dims, shape ``(B,)``."""
    return (prediction * (0.5 * prediction - target)).flatten(1).sum(1)


def check_prediction(out: object, x: Tensor, what: str) -> Tensor:
    """Raise unless ``out`` is a tensor of ``x``'s shape; return it."""
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

    One call of :meth:`loss` draws t ~ ``time_sampler`` and z ~ N(0, I) per sample (unless
    given), forms x_t and the regression target with the interpolant, calls the model once
    (twice if ``antithetic``) and returns the mean of the weighted per-sample losses.

    Parameters
    ----------
    interpolant:
        The :class:`~interpolants.Interpolant` defining x_t and the targets.
    time_sampler:
        The distribution of t (default :class:`UniformTime`); its :meth:`TimeSampler.weight`
        multiplies each per-sample loss.
    antithetic:
        Average the per-sample loss at the pair x_t^± = αx0 + βx1 ± γz (targets with ±z), or,
        for a one-sided interpolant, x_t^± = ±αx0 + βx1. The same expectation (z and −z have
        the same law) and a much lower variance near the ends, where the O(γ̇) and O(γ⁻¹)
        noise terms cancel within the pair (MATH.md §3). Needs a noise to flip: a stochastic
        or a one-sided interpolant.

    Notes
    -----
    Every per-sample loss has the form ½|m̂|² − y·m̂ = ½|m̂ − y|² − ½|y|² for a prediction m̂
    and a target y whose conditional mean given x_t is the field learned, summed over the
    trailing dims. The dropped constant ½|y|² does not change the minimiser or the gradients,
    but it has unbounded variance near the ends (y contains γ̇z); so the loss value may be
    negative, and its optimum is −½E|E[y|x_t]|², not zero.
    """

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
        if antithetic and not self._has_noise(interpolant):
            raise ValueError(
                f"antithetic=True needs a noise to flip (a stochastic or one-sided "
                f"interpolant), got {interpolant!r}"
            )
        self.interpolant = interpolant
        self.time_sampler = UniformTime() if time_sampler is None else time_sampler
        self.antithetic = bool(antithetic)

    @staticmethod
    def _has_noise(interpolant: Interpolant) -> bool:
        return interpolant.is_stochastic or isinstance(interpolant, OneSidedInterpolant)

    @abc.abstractmethod
    def _sample_loss(
        self, predict: Predict, t: Tensor, sample: InterpolantSample, c: Coefficients, x1: Tensor
    ) -> Tensor:
        """Unweighted per-sample losses, shape ``(B,)``; ``predict(t, x)`` calls the model."""

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
        n = x0.shape[0]
        if t is not None or z is not None:  # caller-given values: validate them once
            tt = (
                as_time(t, x0, "t").expand(n)
                if t is not None
                else self.time_sampler.sample(
                    n, generator=generator, dtype=x0.dtype, device=x0.device
                )
            )
            tt, z = self.interpolant._inputs(tt, x0, x1, z)
        else:  # sampled here: in range and of the right shape by construction
            tt = self.time_sampler.sample(n, generator=generator, dtype=x0.dtype, device=x0.device)
        if self.interpolant.is_stochastic and z is None:
            z = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        c = self.interpolant._coefficients(tt)

        def predict(time: Tensor, x: Tensor) -> Any:
            if condition is None:
                return model(time, x)
            return model(time, x, condition=condition)

        losses = self._sample_loss(predict, tt, self.interpolant._sample(tt, x0, x1, z, c), c, x1)
        if self.antithetic:
            if isinstance(self.interpolant, OneSidedInterpolant):
                flipped = self.interpolant._sample(tt, -x0, x1, z, c)
            else:
                assert z is not None
                flipped = self.interpolant._sample(tt, x0, x1, -z, c)
            losses = 0.5 * (losses + self._sample_loss(predict, tt, flipped, c, x1))
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
