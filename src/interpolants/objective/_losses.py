r"""The concrete objectives: velocity, denoiser, score, split (v, η_z) and target prediction.

Each is a small final class giving the target y (whose conditional mean given x_t = x is the
learned field) and the per-sample mean squared error (1/D)‖m̂ − y‖² over the D entries of a
sample (see :class:`Objective` for its scale, gradients and variance).
"""

from collections.abc import Sequence
from typing import final

from torch import Tensor

from .._validation import broadcast_time
from ..interpolant._values import InterpolantSample
from ._base import Predict, check_prediction
from ._regression import RegressionObjective

__all__ = [
    "DenoiserObjective",
    "ScoreObjective",
    "SplitObjective",
    "TargetObjective",
    "VelocityObjective",
]


@final
class VelocityObjective(RegressionObjective):
    r"""Learn the velocity b(t, x) = E[α̇x0 + β̇x1 + γ̇z | x_t = x].

    .. math:: L_b(\hat b) = \tfrac1D E\,|\hat b(t, x_t) − (\dot α x_0 + \dot β x_1
              + \dot γ z)|^2

    For γ ≡ 0 and x0 ~ N(0, I) this is (Gaussian) flow matching, and the value is torchcfm's
    ``mean((v − u)**2)`` for the same path. With the Brownian γ the target's γ̇z diverges like
    t^{-1/2} at the ends: use ``antithetic=True`` to cancel it in the gradient (the value keeps
    a heavy tail from ‖γ̇z‖², see :class:`Objective`).

    Example
    -------
    >>> import torch
    >>> from interpolants import LinearInterpolant
    >>> objective = VelocityObjective(LinearInterpolant())
    >>> model = lambda t, x: torch.zeros_like(x)
    >>> x0, x1 = torch.zeros(4, 2), torch.ones(4, 2)
    >>> float(objective.loss(model, x0, x1))  # mean((0 − (x1 − x0))²)
    1.0
    """

    def regression_pairs(
        self, predict: Predict, sample: InterpolantSample
    ) -> Sequence[tuple[Tensor, Tensor]]:
        pred = check_prediction(predict(sample.t, sample.xt), sample.xt, "model")
        return ((pred, sample.velocity),)


@final
class DenoiserObjective(RegressionObjective):
    r"""Learn the denoiser η_z(t, x) = E[z | x_t = x] (one-sided: E[x0 | x_t = x]).

    .. math:: L_η(\hat η) = \tfrac1D E\,|\hat η(t, x_t) − z|^2

    Paper sign convention: the score is s = −η_z/γ (−η_z/α one-sided); see
    :class:`ScoreFromDenoiser`. Needs a stochastic or one-sided
    interpolant.

    Example
    -------
    >>> import torch
    >>> from interpolants import BrownianGamma, LinearInterpolant
    >>> from interpolants.objective import DenoiserObjective
    >>> x0, x1, z = torch.zeros(3, 2), torch.zeros(3, 2), torch.ones(3, 2)
    >>> objective = DenoiserObjective(LinearInterpolant(BrownianGamma()))
    >>> float(objective.loss(lambda t, x: torch.zeros_like(x), x0, x1, t=0.5, z=z))  # (0 − 1)²
    1.0
    """

    needs_noise = True

    def regression_pairs(
        self, predict: Predict, sample: InterpolantSample
    ) -> Sequence[tuple[Tensor, Tensor]]:
        pred = check_prediction(predict(sample.t, sample.xt), sample.xt, "model")
        return ((pred, sample.noise),)


@final
class ScoreObjective(RegressionObjective):
    r"""Learn the score s(t, x) = ∇log ρ_t(x), with the weight σ(t)² that keeps it finite.

    With σ = γ (two-sided) or σ = α (one-sided, the noise being x0):

    .. math:: L_s(\hat s) = \tfrac1D E\,|σ\hat s + z|^2
              = \tfrac2D E\,[σ^2(\tfrac12|\hat s|^2 + σ^{-1} z\cdot \hat s)] + 1,

    i.e. σŝ is regressed on −z (denoising score matching with the weight λ = σ², the form
    torchebm reports). The unweighted loss of the paper, ½|ŝ|² + γ⁻¹z·ŝ, has a
    term of unbounded variance where γ → 0; the weight σ² removes it, keeps the minimiser
    s wherever σ > 0, and gives the ends (σ = 0) no weight: a score learned this way is
    accurate inside (0, 1) and unconstrained at the ends themselves.

    Example
    -------
    >>> import torch
    >>> from interpolants.interpolant import VPInterpolant
    >>> from interpolants.objective import ScoreObjective
    >>> x0, x1 = torch.randn(64, 2), torch.randn(64, 2)
    >>> objective = ScoreObjective(VPInterpolant(), antithetic=True)
    >>> objective.per_sample_loss(lambda t, x: -x, x0, x1).shape
    torch.Size([64])
    """

    needs_noise = True

    def regression_pairs(
        self, predict: Predict, sample: InterpolantSample
    ) -> Sequence[tuple[Tensor, Tensor]]:
        pred = check_prediction(predict(sample.t, sample.xt), sample.xt, "model")
        sigma = broadcast_time(sample.coefficients.noise_scale, pred)
        return ((sigma * pred, -sample.noise),)


@final
class SplitObjective(RegressionObjective):
    r"""Learn v(t, x) = E[α̇x0 + β̇x1 | x_t = x] and η_z(t, x) with one two-headed model.

    The model returns a pair ``(v̂, η̂)`` of tensors of x's shape; the loss is the sum of the two
    mean squared errors L_v(v̂) + L_η(η̂), with L_v = E‖v̂ − (α̇x0 + β̇x1)‖²/D and L_η as in
    :class:`DenoiserObjective`, so the two heads are fitted independently. Recombine them into
    the velocity b = v + γ̇η_z with :class:`VelocityFromSplit`, and into the score s = −η_z/γ
    with :class:`ScoreFromDenoiser`. With two separate networks pass
    ``lambda t, x: (v_net(t, x), eta_net(t, x))`` (and optimise both parameter sets).

    Unlike b, the target of v holds no γ̇ and the target of η_z no γ⁻¹, so neither has a
    singular variance at the ends (:doc:`/mathematics`). Needs a stochastic or one-sided
    interpolant.

    Example
    -------
    >>> import torch
    >>> from interpolants import BrownianGamma, LinearInterpolant, SplitObjective
    >>> from interpolants.nn import TwoHeadMLP
    >>> objective = SplitObjective(LinearInterpolant(BrownianGamma()), antithetic=True)
    >>> loss = objective.loss(TwoHeadMLP(2, hidden=16, depth=2), torch.randn(8, 2),
    ...                       torch.randn(8, 2))
    >>> loss.shape, loss.requires_grad
    (torch.Size([]), True)
    """

    needs_noise = True

    def regression_pairs(
        self, predict: Predict, sample: InterpolantSample
    ) -> Sequence[tuple[Tensor, Tensor]]:
        out = predict(sample.t, sample.xt)
        if not isinstance(out, tuple) or len(out) != 2:
            raise TypeError(
                "the model of SplitObjective must return a pair (v, eta) of tensors, got "
                f"{type(out).__name__}"
            )
        v = check_prediction(out[0], sample.xt, "model (head v)")
        eta = check_prediction(out[1], sample.xt, "model (head eta)")
        return ((v, sample.mean_velocity), (eta, sample.noise))


@final
class TargetObjective(RegressionObjective):
    r"""Learn the target prediction η1(t, x) = E[x1 | x_t = x] (x1-prediction).

    .. math:: L_1(\hat η_1) = \tfrac1D E\,|\hat η_1(t, x_t) − x_1|^2

    For a deterministic interpolant (γ ≡ 0, one-sided included) the velocity follows as
    b = (α̇x + (αβ̇ − α̇β)η1)/α (:class:`VelocityFromTarget`); with γ > 0
    η1 alone does not determine b.

    Example
    -------
    >>> import torch
    >>> from interpolants import LinearInterpolant
    >>> from interpolants.objective import TargetObjective
    >>> x0, x1 = torch.zeros(4, 2), torch.ones(4, 2)
    >>> float(TargetObjective(LinearInterpolant()).loss(lambda t, x: x1, x0, x1))  # exact
    0.0
    """

    def regression_pairs(
        self, predict: Predict, sample: InterpolantSample
    ) -> Sequence[tuple[Tensor, Tensor]]:
        pred = check_prediction(predict(sample.t, sample.xt), sample.xt, "model")
        return ((pred, sample.x1),)
