r"""A trained velocity field as a distribution: ``log_prob``, ``sample``, ``rsample``.

The probability-flow ODE ẋ = b(t, x) carries the base ρ0 at t = 0 to the model's ρ1 at
t = 1. :class:`InterpolantFlow` holds b and ρ0 as a module (parameters, ``.to(device)``,
``state_dict``), and calling it returns an :class:`InterpolantDistribution`, a
:class:`torch.distributions.Distribution` whose

* ``sample(shape)`` draws x0 ~ ρ0 and integrates the ODE forwards (no graph),
* ``rsample(shape)`` does the same keeping the graph (reparameterised: gradients reach b's
  parameters and those of ρ0 if it has ``rsample``),
* ``log_prob(x)`` integrates the augmented ODE backwards from the data (exact divergence or
  Hutchinson; :func:`~interpolants.log_likelihood`), in chunks, without a graph unless
  ``differentiable=True``.

This is zuko's convention (a lazy distribution: a module called to get a distribution), so
an :class:`InterpolantFlow` can stand where a zuko flow does, and a zuko flow (or any module
returning a distribution, or a distribution) can be its base.
"""

import math
import os
from collections.abc import Callable
from typing import Any, ClassVar, final

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, constraints

from .._atomic import write_atomic
from ..integrate._adaptive import AdaptiveIntegrator, Dopri5
from ..integrate._base import Integrator, time_grid
from ..integrate._divergence import DivergenceEstimator
from ..integrate._dynamics import ODE
from ..integrate._likelihood import log_likelihood

__all__ = ["InterpolantDistribution", "InterpolantFlow"]


class _GaussianMixtureBase(nn.Module):
    """Our :class:`~interpolants.GaussianMixture` as a base module (its tensors as buffers)."""

    weights: Tensor
    means: Tensor
    covariances: Tensor

    def __init__(self, mixture: Any) -> None:
        super().__init__()
        self.register_buffer("weights", mixture.weights.clone())
        self.register_buffer("means", mixture.means.clone())
        self.register_buffer("covariances", mixture.covariances.clone())

    def forward(self) -> Distribution:
        mix = torch.distributions.Categorical(probs=self.weights)
        comp = torch.distributions.MultivariateNormal(
            self.means, covariance_matrix=self.covariances
        )
        return torch.distributions.MixtureSameFamily(mix, comp)


class _FixedBase(nn.Module):
    """A distribution object as a base module (moved by ``.to`` only if it has ``.to``)."""

    def __init__(self, distribution: Distribution) -> None:
        super().__init__()
        self.distribution = distribution

    def forward(self) -> Distribution:
        return self.distribution


def _as_base(base: Any) -> nn.Module:
    from ..analytic._exact import GaussianMixture

    if isinstance(base, GaussianMixture):
        return _GaussianMixtureBase(base)
    if isinstance(base, Distribution):
        return _FixedBase(base)
    if isinstance(base, nn.Module) and callable(base):
        return base  # a lazy distribution (e.g. a zuko flow): called to get the base
    raise TypeError(
        "base must be a torch Distribution, a GaussianMixture, or a module returning a "
        f"Distribution when called (e.g. a zuko flow), got {type(base).__name__}"
    )


@final
class InterpolantFlow(nn.Module):
    r"""A velocity field and a base distribution as one trained model (see the module notes).

    Parameters
    ----------
    velocity:
        The velocity b(t, x) as a module (its parameters are this module's).
    base:
        ρ0: a :class:`torch.distributions.Distribution` (e.g. ``Independent(Normal(0, 1), 1)``
        of the data's event shape), a :class:`~interpolants.GaussianMixture`, or a module
        that returns a distribution when called (a zuko flow, for one).
    sampler:
        The integrator for ``sample``/``rsample`` (default Dopri5, rtol = atol = 1e-5).
    likelihood:
        The integrator for ``log_prob`` (default Dopri5, rtol = atol = 1e-5).
    steps:
        Uniform grid steps of ``log_prob`` for a fixed-step integrator (the adaptive ones use
        only the ends).
    sample_steps:
        The same for ``sample``/``rsample`` (default: ``steps``).
    divergence:
        The divergence estimator of ``log_prob`` (default exact).
    chunk:
        Points per ``log_prob`` integration (bounds the memory of the exact divergence).

    Example
    -------
    >>> import math
    >>> import torch
    >>> from torch.distributions import Independent, Normal
    >>> from interpolants.density import InterpolantFlow
    >>> class Scale(torch.nn.Module):  # b = x: N(0, 1) at t = 0 becomes N(0, e²) at t = 1
    ...     def forward(self, t, x):
    ...         return x
    >>> base = Independent(Normal(torch.zeros(1, dtype=torch.float64), 1.0), 1)
    >>> model = InterpolantFlow(Scale(), base)()
    >>> x = torch.tensor([[0.5], [2.0]], dtype=torch.float64)
    >>> exact = Independent(Normal(torch.zeros(1, dtype=torch.float64), math.e), 1).log_prob(x)
    >>> bool((model.log_prob(x) - exact).abs().max() < 1e-5)
    True
    >>> model.sample((1000,)).std().item() > 2.0  # e ≈ 2.72
    True
    """

    def __init__(
        self,
        velocity: nn.Module,
        base: Any,
        *,
        sampler: Integrator | None = None,
        likelihood: Integrator | None = None,
        steps: int = 64,
        divergence: DivergenceEstimator | None = None,
        chunk: int = 4096,
        sample_steps: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(velocity, nn.Module):
            raise TypeError(f"velocity must be an nn.Module, got {type(velocity).__name__}")
        for name, n in (("steps", steps), ("sample_steps", sample_steps)):
            if n is not None and (not isinstance(n, int) or n < 1):
                raise ValueError(f"{name} must be a positive integer, got {n!r}")
        if not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
        for name, value in (("sampler", sampler), ("likelihood", likelihood)):
            if value is not None and not isinstance(value, Integrator):
                raise TypeError(f"{name} must be an Integrator, got {type(value).__name__}")
        self.velocity = velocity
        self.base = _as_base(base)
        self.sampler = Dopri5() if sampler is None else sampler
        self.likelihood = Dopri5() if likelihood is None else likelihood
        self.steps = steps
        self.sample_steps = steps if sample_steps is None else sample_steps
        self.divergence = divergence
        self.chunk = chunk

    def forward(self) -> "InterpolantDistribution":
        """The model's distribution ρ1."""
        base = self.base()
        if not isinstance(base, Distribution):
            raise TypeError(
                f"the base module must return a Distribution, got {type(base).__name__}"
            )
        return InterpolantDistribution(self, base)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`state_dict` atomically (load it with :meth:`load`)."""
        state = self.state_dict()
        write_atomic(path, lambda fh: torch.save(state, fh))

    def load(self, path: str | os.PathLike[str]) -> None:
        """Load the weights written by :meth:`save` into this (identically built) flow, with
        ``torch.load(weights_only=True)``."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.load_state_dict(state)


class InterpolantDistribution(Distribution):
    r"""The distribution ρ1 of an :class:`InterpolantFlow` (returned by calling the flow).

    Its event shape is the base's; it has no batch shape. ``log_prob`` takes samples of shape
    ``(*sample_shape, *event_shape)`` and returns ``sample_shape``.
    """

    has_rsample = True
    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {}

    def __init__(self, flow: InterpolantFlow, base: Distribution) -> None:
        self.flow = flow
        self.base = base
        super().__init__(
            batch_shape=torch.Size(), event_shape=base.event_shape, validate_args=False
        )

    @property
    def support(self) -> constraints.Constraint:
        support: constraints.Constraint = constraints.independent(  # type: ignore[no-untyped-call]
            constraints.real, len(self.event_shape)
        )
        return support

    def _grid(self, integrator: Integrator, forwards: bool, like: Tensor) -> Tensor:
        steps = self.flow.sample_steps if forwards else self.flow.steps
        if isinstance(integrator, AdaptiveIntegrator):
            steps = 1
        start, end = (0.0, 1.0) if forwards else (1.0, 0.0)
        return time_grid(steps, start, end, dtype=like.dtype, device=like.device)

    def rsample(self, sample_shape: torch.Size | list[int] | tuple[int, ...] = ()) -> Tensor:
        """Samples of shape ``(*sample_shape, *event_shape)``, differentiable (reparameterised)."""
        shape = torch.Size(sample_shape)
        n = max(1, math.prod(shape))
        x0 = self.base.rsample((n,)) if self.base.has_rsample else self.base.sample((n,))
        grid = self._grid(self.flow.sampler, True, x0)
        x1 = self.flow.sampler.integrate(ODE(self.flow.velocity), x0, grid).state
        return x1.reshape(*shape, *self.event_shape)

    def sample(self, sample_shape: torch.Size | list[int] | tuple[int, ...] = ()) -> Tensor:
        """Samples of shape ``(*sample_shape, *event_shape)``, without a graph."""
        with torch.no_grad():
            return self.rsample(sample_shape)

    def log_prob(self, value: Tensor, differentiable: bool = False) -> Tensor:
        """log ρ1(value) by the probability-flow ODE, shape ``value.shape[:-event_dim]``.

        Computed in chunks of ``flow.chunk`` points; without a graph unless
        ``differentiable`` (then gradients reach the velocity's parameters).
        """
        if not isinstance(value, Tensor) or not value.is_floating_point():
            kind = value.dtype if isinstance(value, Tensor) else type(value).__name__
            raise TypeError(f"value must be a floating-point tensor, got {kind}")
        event = len(self.event_shape)
        if tuple(value.shape[value.ndim - event :]) != tuple(self.event_shape):
            raise ValueError(
                f"value must end with the event shape {tuple(self.event_shape)}, got "
                f"{tuple(value.shape)}"
            )
        batch = value.shape[: value.ndim - event]
        flat = value.reshape(-1, *self.event_shape)
        base_log_prob: Callable[[Tensor], Tensor] = self.base.log_prob
        flow = self.flow
        parts = []
        context = torch.enable_grad() if differentiable else torch.no_grad()
        with context:
            for chunk in torch.split(flat, flow.chunk):
                grid = self._grid(flow.likelihood, False, chunk)
                res = log_likelihood(
                    flow.velocity,
                    chunk,
                    base_log_prob,
                    integrator=flow.likelihood,
                    grid=grid,
                    divergence=flow.divergence,
                    differentiable=differentiable,
                )
                parts.append(res.log_prob)
        return torch.cat(parts).reshape(batch)
