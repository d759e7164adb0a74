r"""The :class:`Interpolant` contract: coefficients, states, targets, conventions, conversions.

An interpolant owns everything that depends on its path: the schedule values, x_t and the
regression targets, which variable is the noise and its scale, the antithetic flip, and the
exact conversions between the velocity b, the mean velocity v, the score s, the denoiser η_z
and the target prediction η1 (:doc:`/mathematics`). Nothing outside this package branches on
an interpolant's family: consumers call these methods.

Checks. Shapes, dtypes and devices are checked at every public method (host metadata only).
Time *values* are checked when they are Python numbers; a time tensor's values are not read
here (that would synchronise an accelerator with the host in per-step code): the entry points
that own a whole computation (an objective's loss given ``t``, an integrator's grid) check
them once.
"""

import abc

import torch
from jaxtyping import Float
from torch import Tensor

from .._overrides import covers
from .._types import State, TimeLike, Times
from .._validation import broadcast_time
from ._gamma import GammaSchedule, NoGamma
from ._values import (
    Coefficients,
    InterpolantSample,
    _nonzero,
    _state,
    _states,
    _time,
    _view,
)

__all__ = ["Interpolant"]


class Interpolant(abc.ABC):
    r"""Abstract spatially linear interpolant x_t = α(t)x0 + β(t)x1 + γ(t)z.

    **Writing a family.** Subclass and implement :meth:`alpha`, :meth:`beta`,
    :meth:`alpha_dot` and :meth:`beta_dot`: elementwise functions of a floating tensor of
    times in [0, 1], returning a tensor of its shape, dtype and device, with
    α(0) = β(1) = 1 and α(1) = β(0) = 0, finite on all of [0, 1] (derivatives included).
    Pass the noise schedule γ to ``super().__init__``. Everything else (x_t, the targets,
    the conventions and the conversions) follows. Optional, for speed: :meth:`schedule` (the
    four values from one call, where they share work) and the constants
    :attr:`constant_rates` and :attr:`constant_weights`. A family whose base sample plays the noise
    subclasses :class:`~interpolants.interpolant.OneSidedInterpolant` instead.

    Parameters
    ----------
    gamma:
        The noise schedule γ(t) (:class:`NoGamma` for flow matching).

    Example
    -------
    >>> import torch
    >>> from interpolants import Interpolant
    >>> from interpolants.interpolant import NoGamma
    >>> class Quadratic(Interpolant):  # α = (1 − t)², β = 1 − (1 − t)²
    ...     def __init__(self):
    ...         super().__init__(NoGamma())
    ...     def alpha(self, t):
    ...         return (1 - t) ** 2
    ...     def beta(self, t):
    ...         return 1 - (1 - t) ** 2
    ...     def alpha_dot(self, t):
    ...         return -2 * (1 - t)
    ...     def beta_dot(self, t):
    ...         return 2 * (1 - t)
    >>> x0, x1 = torch.zeros(2, 1), torch.ones(2, 1)
    >>> Quadratic().interpolate(0.5, x0, x1)
    tensor([[0.7500],
            [0.7500]])
    """

    def __init__(self, gamma: GammaSchedule) -> None:
        if not isinstance(gamma, GammaSchedule):
            raise TypeError(f"gamma must be a GammaSchedule, got {type(gamma).__name__}")
        self._gamma_schedule = gamma
        self._stochastic = not isinstance(gamma, NoGamma)

    # --- what a family implements -------------------------------------------------------
    @abc.abstractmethod
    def alpha(self, t: Times) -> Times:
        """α(t), elementwise: the weight of x0."""

    @abc.abstractmethod
    def beta(self, t: Times) -> Times:
        """β(t), elementwise: the weight of x1."""

    @abc.abstractmethod
    def alpha_dot(self, t: Times) -> Times:
        """dα/dt, elementwise, finite on [0, 1]."""

    @abc.abstractmethod
    def beta_dot(self, t: Times) -> Times:
        """dβ/dt, elementwise, finite on [0, 1]."""

    #: (α̇, β̇) as Python numbers when both are constant in t (the linear paths: (−1, 1)), else
    #: ``None``. Optional: it lets the targets skip evaluating them; it must agree with
    #: :meth:`alpha_dot` and :meth:`beta_dot` (a contract test checks every family).
    constant_rates: tuple[float, float] | None = None
    #: (α, β) as Python numbers when both are constant in t, else ``None``; optional,
    #: likewise checked against :meth:`alpha` and :meth:`beta`. Only the mirror path, (0, 1),
    #: can have them (the boundary conditions need α and β to vary) and x_t is then x1 + γz.
    constant_weights: tuple[float, float] | None = None

    def schedule(self, t: Times) -> tuple[Times, Times, Times, Times]:
        """(α, β, α̇, β̇) at ``t`` in one call. Optional: a family whose four values share work
        (one sine and cosine for the trigonometric paths) overrides it, and the coefficients of
        a sample then take all four from one call; it must agree with the four methods (a
        contract test checks every family). The default calls them one by one."""
        return self.alpha(t), self.beta(t), self.alpha_dot(t), self.beta_dot(t)

    def __init_subclass__(cls, **kwargs: object) -> None:
        # a shortcut is used only where it was written with (or after) the methods it stands
        # for: a subclass that overrides them but inherits the shortcut does not get it
        super().__init_subclass__(**kwargs)
        values, rates = ("alpha", "beta"), ("alpha_dot", "beta_dot")
        cls._joint_schedule = cls.schedule is not Interpolant.schedule and covers(
            cls, "schedule", *values, *rates
        )
        if not covers(cls, "constant_rates", *rates):
            cls.constant_rates = None
        if not covers(cls, "constant_weights", *values):
            cls.constant_weights = None

    _joint_schedule: bool = False

    # --- the noise schedule and the conventions -------------------------------------------
    @property
    def gamma_schedule(self) -> GammaSchedule:
        """The noise schedule γ(t)."""
        return self._gamma_schedule

    @property
    def is_stochastic(self) -> bool:
        """Whether γ is not identically zero (a latent noise z enters x_t)."""
        return self._stochastic

    @property
    def one_sided(self) -> bool:
        """Whether the base sample x0 ~ N(0, I) itself plays the noise (γ ≡ 0).

        Then the velocity, the score and the denoiser determine each other in closed form
        (:meth:`score_from_velocity` and its siblings), and the base must be N(0, I).
        """
        return False

    @property
    def has_noise(self) -> bool:
        """Whether x_t has a noise variable (a stochastic or a one-sided interpolant).

        The denoiser, score and split objectives, antithetic pairs and ε ∝ σ diffusions
        need one.
        """
        return self.is_stochastic or self.one_sided

    def gamma(self, t: Times) -> Times:
        """γ(t), elementwise."""
        return self._gamma_schedule.gamma(t)

    def gamma_dot(self, t: Times) -> Times:
        """dγ/dt, finite everywhere (clamped near singular ends, see the γ schedules)."""
        return self._gamma_schedule.gamma_dot(t)

    def gamma_gamma_dot(self, t: Times) -> Times:
        """γ(t)·γ̇(t), exact and finite at both ends."""
        return self._gamma_schedule.gamma_gamma_dot(t)

    def noise_scale(self, t: Times) -> Times:
        """σ(t), the scale of the noise in x_t (score s = −η_z/σ): γ(t), or α(t) if one-sided."""
        return self.gamma(t)

    def noise(
        self, x0: Float[Tensor, "batch *dims"], z: Float[Tensor, "batch *dims"] | None
    ) -> State:
        """The noise variable of a draw, whose conditional mean given x_t is the denoiser η_z.

        ``z`` for a two-sided interpolant (zeros when γ ≡ 0 and no ``z`` is given); ``x0``
        for a one-sided one. Raises :class:`ValueError` when γ ≠ 0 and ``z`` is ``None``.
        """
        if z is not None:
            return z
        if self.is_stochastic:
            raise ValueError(
                "z is required for a stochastic interpolant: pass z = torch.randn_like(x0)"
            )
        return torch.zeros_like(x0)

    def antithetic(
        self,
        x0: Float[Tensor, "batch *dims"],
        x1: Float[Tensor, "batch *dims"],
        z: Float[Tensor, "batch *dims"] | None,
    ) -> tuple[State, State, State | None]:
        """The antithetic partner of a draw: the noise flipped, everything else kept.

        (x0, x1, −z) for a two-sided interpolant, (−x0, x1, z) for a one-sided one. Both
        draws have the same law, so averaging a loss over the pair keeps its expectation and
        cancels the terms odd in the noise. Raises :class:`ValueError` without a noise.
        """
        if not self.is_stochastic or z is None:
            raise ValueError(f"{self!r} has no noise to flip (γ ≡ 0 and not one-sided)")
        return x0, x1, -z

    # --- values at a time ---------------------------------------------------------------
    def coefficients(self, t: TimeLike) -> Coefficients:
        """All schedule values at ``t`` (a number, checked to lie in [0, 1], or a tensor of
        any shape, not value-checked), each of ``t``'s shape, evaluated when first read."""
        return Coefficients(self, _time(t, None))

    # --- states and targets -------------------------------------------------------------
    def sample(
        self,
        t: TimeLike,
        x0: Float[Tensor, "batch *dims"],
        x1: Float[Tensor, "batch *dims"],
        z: Float[Tensor, "batch *dims"] | None = None,
        *,
        coefficients: Coefficients | None = None,
    ) -> InterpolantSample:
        """x_t together with every regression target, from one evaluation of the schedule.

        Arguments
        ---------
        t:
            A number in [0, 1], or a tensor of shape ``()`` or ``(B,)``.
        x0, x1:
            Paired samples of the base and the target, shape ``(B, *dims)``.
        z:
            The latent noise N(0, I) of x0's shape; needed when γ ≠ 0.
        coefficients:
            The ``coefficients`` of a previous sample at the same ``t`` (e.g. for the second
            draw of an antithetic pair), so the schedule is evaluated once.

        Example
        -------
        >>> import torch
        >>> from interpolants import LinearInterpolant
        >>> s = LinearInterpolant().sample(0.25, torch.zeros(1, 2), torch.ones(1, 2))
        >>> s.xt, s.velocity
        (tensor([[0.2500, 0.2500]]), tensor([[1., 1.]]))
        """
        _states(x0, x1, z)
        if z is None and self.is_stochastic:
            raise ValueError(
                "z is required for a stochastic interpolant: pass z = torch.randn_like(x0)"
            )
        tt = _time(t, x0)
        tv = _view(tt, x0)  # one view: every coefficient then broadcasts against the states
        if coefficients is None or coefficients.t.shape != tv.shape:
            coefficients = Coefficients(self, tv)
        return InterpolantSample(self, tt, x0, x1, z, coefficients)

    def interpolate(
        self,
        t: TimeLike,
        x0: Float[Tensor, "batch *dims"],
        x1: Float[Tensor, "batch *dims"],
        z: Float[Tensor, "batch *dims"] | None = None,
    ) -> State:
        """x_t = α(t) x0 + β(t) x1 + γ(t) z, shape ``(B, *dims)`` (see :meth:`sample`)."""
        return self.sample(t, x0, x1, z).xt

    def velocity_target(
        self,
        t: TimeLike,
        x0: Float[Tensor, "batch *dims"],
        x1: Float[Tensor, "batch *dims"],
        z: Float[Tensor, "batch *dims"] | None = None,
    ) -> State:
        """The conditional velocity α̇ x0 + β̇ x1 + γ̇ z, whose conditional mean is b."""
        return self.sample(t, x0, x1, z).velocity

    def noise_target(
        self,
        t: TimeLike,
        x0: Float[Tensor, "batch *dims"],
        x1: Float[Tensor, "batch *dims"],
        z: Float[Tensor, "batch *dims"] | None = None,
    ) -> State:
        """The noise variable (:meth:`noise`), whose conditional mean is the denoiser η_z."""
        return self.sample(t, x0, x1, z).noise

    # --- exact conversions between the fields ------------------------------------------
    # Each evaluates only the schedule values it needs. A time given as a Python number is
    # checked against the conversion's singular points; a time tensor is not read (see the
    # module notes), so there a singular point gives non-finite values.
    def _at(self, t: TimeLike, x: Tensor, name: str, *others: tuple[str, Tensor]) -> Tensor:
        _state(x, name)
        for other, value in others:
            _state(value, other, x, name)
        return _time(t, x)

    def _det(self, t: Tensor) -> Tensor:
        return self.alpha(t) * self.beta_dot(t) - self.alpha_dot(t) * self.beta(t)

    def score_from_denoiser(self, t: TimeLike, denoiser: Float[Tensor, "batch *dims"]) -> State:
        r"""s = −η_z/σ (σ = γ, or α if one-sided). Singular where σ = 0: t = 0 and 1 for a
        two-sided interpolant, t = 1 for a one-sided one."""
        tt = self._at(t, denoiser, "denoiser")
        sigma = _nonzero(self.noise_scale(tt), t, "score from denoiser (divides by σ)")
        return -denoiser / broadcast_time(sigma, denoiser)

    def denoiser_from_score(self, t: TimeLike, score: Float[Tensor, "batch *dims"]) -> State:
        r"""η_z = −σ s (σ = γ, or α if one-sided). Finite everywhere."""
        tt = self._at(t, score, "score")
        return -broadcast_time(self.noise_scale(tt), score) * score

    def velocity_from_mean_and_score(
        self,
        t: TimeLike,
        mean_velocity: Float[Tensor, "batch *dims"],
        score: Float[Tensor, "batch *dims"],
    ) -> State:
        r"""b = v − γγ̇ s, with the closed-form γγ̇ (finite at both ends). For γ ≡ 0, b = v."""
        tt = self._at(t, mean_velocity, "mean_velocity", ("score", score))
        return mean_velocity - broadcast_time(self.gamma_gamma_dot(tt), score) * score

    def mean_velocity_from_velocity_and_score(
        self,
        t: TimeLike,
        velocity: Float[Tensor, "batch *dims"],
        score: Float[Tensor, "batch *dims"],
    ) -> State:
        r"""v = b + γγ̇ s (the inverse of :meth:`velocity_from_mean_and_score`)."""
        tt = self._at(t, velocity, "velocity", ("score", score))
        return velocity + broadcast_time(self.gamma_gamma_dot(tt), score) * score

    def velocity_from_mean_and_denoiser(
        self,
        t: TimeLike,
        mean_velocity: Float[Tensor, "batch *dims"],
        denoiser: Float[Tensor, "batch *dims"],
    ) -> State:
        r"""b = v + γ̇ η_z (= v − γγ̇ s where γ > 0).

        Uses the schedule's γ̇, finite everywhere but clamped near the ends for the Brownian
        γ; the exact η_z vanishes like γ there, a learned one need not, so evaluate it inside
        (0, 1) (as the integrators' grids do away from the last step).
        """
        tt = self._at(t, mean_velocity, "mean_velocity", ("denoiser", denoiser))
        return mean_velocity + broadcast_time(self.gamma_dot(tt), denoiser) * denoiser

    def target_from_velocity(
        self,
        t: TimeLike,
        x: Float[Tensor, "batch *dims"],
        velocity: Float[Tensor, "batch *dims"],
    ) -> State:
        r"""Target prediction η1 = E[x1 | x_t = x] = (αb − α̇x)/D, D = αβ̇ − α̇β, for γ ≡ 0.

        Valid for every deterministic interpolant (one-sided included) and every coupling;
        raises :class:`TypeError` when γ ≠ 0 (then η1 alone does not determine b).
        """
        self.require_deterministic("target_from_velocity")
        tt = self._at(t, x, "x", ("velocity", velocity))
        det = _nonzero(self._det(tt), t, "target from velocity (divides by D)")
        alpha, alpha_dot, det = (
            broadcast_time(v, x) for v in (self.alpha(tt), self.alpha_dot(tt), det)
        )
        return (alpha * velocity - alpha_dot * x) / det

    def velocity_from_target(
        self,
        t: TimeLike,
        x: Float[Tensor, "batch *dims"],
        target: Float[Tensor, "batch *dims"],
    ) -> State:
        r"""b = (α̇x + Dη1)/α from a target prediction η1, for γ ≡ 0. Singular at t = 1."""
        self.require_deterministic("velocity_from_target")
        tt = self._at(t, x, "x", ("target", target))
        alpha = _nonzero(self.alpha(tt), t, "velocity from target (divides by α)")
        alpha, alpha_dot, det = (
            broadcast_time(v, x) for v in (alpha, self.alpha_dot(tt), self._det(tt))
        )
        return (alpha_dot * x + det * target) / alpha

    def score_from_velocity(
        self,
        t: TimeLike,
        x: Float[Tensor, "batch *dims"],
        velocity: Float[Tensor, "batch *dims"],
    ) -> State:
        r"""One-sided: s = (βb − β̇x)/(αD). Singular at t = 1 (α = 0); raises
        :class:`TypeError` for an interpolant that is not one-sided."""
        self.require_one_sided("score_from_velocity")
        tt = self._at(t, x, "x", ("velocity", velocity))
        den = _nonzero(self.alpha(tt) * self._det(tt), t, "score from velocity (divides by αD)")
        beta, beta_dot, den = (
            broadcast_time(v, x) for v in (self.beta(tt), self.beta_dot(tt), den)
        )
        return (beta * velocity - beta_dot * x) / den

    def velocity_from_score(
        self,
        t: TimeLike,
        x: Float[Tensor, "batch *dims"],
        score: Float[Tensor, "batch *dims"],
    ) -> State:
        r"""One-sided: b = (β̇x + αDs)/β. Singular at t = 0 (β = 0), where b is not determined
        by s; raises :class:`TypeError` for an interpolant that is not one-sided."""
        self.require_one_sided("velocity_from_score")
        tt = self._at(t, x, "x", ("score", score))
        beta = _nonzero(self.beta(tt), t, "velocity from score (divides by β)")
        ad = self.alpha(tt) * self._det(tt)
        beta, beta_dot, ad = (broadcast_time(v, x) for v in (beta, self.beta_dot(tt), ad))
        return (beta_dot * x + ad * score) / beta

    def denoiser_from_velocity(
        self,
        t: TimeLike,
        x: Float[Tensor, "batch *dims"],
        velocity: Float[Tensor, "batch *dims"],
    ) -> State:
        r"""One-sided: η_z = E[x0 | x_t = x] = (β̇x − βb)/D, finite on [0, 1] for the built-in
        families; raises :class:`TypeError` for an interpolant that is not one-sided."""
        self.require_one_sided("denoiser_from_velocity")
        tt = self._at(t, x, "x", ("velocity", velocity))
        det = _nonzero(self._det(tt), t, "denoiser from velocity (divides by D)")
        beta, beta_dot, det = (
            broadcast_time(v, x) for v in (self.beta(tt), self.beta_dot(tt), det)
        )
        return (beta_dot * x - beta * velocity) / det

    def velocity_from_denoiser(
        self,
        t: TimeLike,
        x: Float[Tensor, "batch *dims"],
        denoiser: Float[Tensor, "batch *dims"],
    ) -> State:
        r"""One-sided: b = (β̇x − Dη_z)/β. Singular at t = 0 (β = 0); raises
        :class:`TypeError` for an interpolant that is not one-sided."""
        self.require_one_sided("velocity_from_denoiser")
        tt = self._at(t, x, "x", ("denoiser", denoiser))
        beta = _nonzero(self.beta(tt), t, "velocity from denoiser (divides by β)")
        beta, beta_dot, det = (
            broadcast_time(v, x) for v in (beta, self.beta_dot(tt), self._det(tt))
        )
        return (beta_dot * x - det * denoiser) / beta

    def require_one_sided(self, what: str) -> None:
        """Raise :class:`TypeError` naming ``what`` unless this interpolant is one-sided (the
        closed-form conversions between b, s and η_z need a Gaussian base)."""
        if not self.one_sided:
            raise TypeError(
                f"{what} needs a Gaussian base: a one-sided interpolant (OneSidedInterpolant), "
                f"got {self!r} (with a general base learn two fields instead)"
            )

    def require_deterministic(self, what: str) -> None:
        """Raise :class:`TypeError` naming ``what`` unless γ ≡ 0 (the target prediction alone
        determines the velocity only then)."""
        if self.is_stochastic:
            raise TypeError(
                f"{what} needs a deterministic interpolant (γ ≡ 0), got {self!r}: with γ > 0 "
                "the target prediction alone does not determine the velocity"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(gamma={self._gamma_schedule!r})"
