r"""The mean squared error every built-in objective regresses with, per sample and as one
fused batch mean, and :class:`RegressionObjective`, the objectives made of such terms."""

import abc
from collections.abc import Callable, Sequence

import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from .._types import Scalar
from ..interpolant._values import InterpolantSample
from ._base import Objective, Predict

__all__ = ["RegressionObjective", "mean_regression_loss", "regression_loss"]


def regression_loss(
    prediction: Float[Tensor, "batch *dims"], target: Float[Tensor, "batch *dims"]
) -> Float[Tensor, " batch"]:
    r"""Per-sample mean squared error (1/D)‖m̂ − y‖² over the D trailing entries.

    The loss of torchcfm and torchebm (their ``mean((m̂ − y)**2)`` is the batch mean of this),
    so loss values compare with theirs for the same path. Its minimiser over m̂ of the
    expectation given x_t is E[y | x_t], where it equals the mean conditional variance of y
    per entry (not zero). Since (1/D)‖m̂ − y‖² = (2/D)(½‖m̂‖² − y·m̂) + ‖y‖²/D and ‖y‖² does not
    depend on m̂, its gradient is 2/D times that of ½‖m̂‖² − y·m̂ (the two coincide for D = 2).

    Example
    -------
    >>> import torch
    >>> regression_loss(torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 0.0]]))  # (0² + 2²)/2
    tensor([2.])
    """
    return (prediction - target).square().flatten(1).mean(1)


def mean_regression_loss(
    prediction: Float[Tensor, "batch *dims"], target: Float[Tensor, "batch *dims"]
) -> Scalar:
    r"""The batch mean of :func:`regression_loss`, (1/(BD)) Σ_b ‖m̂_b − y_b‖², as one fused
    operation (:func:`torch.nn.functional.mse_loss`).

    Every sample has the same D entries, so the mean of the per-sample means is the mean over
    all B·D entries: the same value (up to the order of the float additions) and the same
    gradient as ``regression_loss(prediction, target).mean()``, with one reduction and no
    per-sample intermediate in the forward and backward passes.

    Example
    -------
    >>> import torch
    >>> m, y = torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    >>> mean_regression_loss(m, y), regression_loss(m, y).mean()  # ((0 + 4) + (1 + 1)) / 4
    (tensor(1.5000), tensor(1.5000))
    """
    return F.mse_loss(prediction, target)


class RegressionObjective(Objective):
    r"""An objective whose per-sample loss is a sum of mean squared errors (1/D)‖m̂ − y‖² of
    (prediction, target) pairs: the form of every built-in objective but the MeanFlow one.

    Implement :meth:`regression_pairs`; this class derives :meth:`~Objective.sample_losses`
    and :meth:`~Objective.sample_mean_loss` from it: the per-sample losses are
    Σ_k ``regression_loss(m̂_k, y_k)``, and the scalar loss of an unweighted draw is
    Σ_k ``mean_regression_loss(m̂_k, y_k)``, one fused reduction per pair. A subclass that
    overrides ``sample_losses`` as well gets the plain mean of its override (the fused form
    no longer describes it). Time sampling, weights, antithetic pairs and conditions are
    inherited from :class:`Objective`.

    Example
    -------
    >>> import torch
    >>> from interpolants import LinearInterpolant
    >>> from interpolants.objective import RegressionObjective, check_prediction
    >>> class MeanVelocityObjective(RegressionObjective):  # v = E[α̇x0 + β̇x1 | x_t]
    ...     def regression_pairs(self, predict, sample):
    ...         v = check_prediction(predict(sample.t, sample.xt), sample.xt, "model")
    ...         return ((v, sample.mean_velocity),)
    >>> objective = MeanVelocityObjective(LinearInterpolant())
    >>> x0, x1 = torch.zeros(4, 2), torch.ones(4, 2)
    >>> float(objective.loss(lambda t, x: torch.zeros_like(x), x0, x1))  # mean((0 − 1)²)
    1.0
    >>> objective.per_sample_loss(lambda t, x: torch.zeros_like(x), x0, x1)
    tensor([1., 1., 1., 1.])
    """

    @abc.abstractmethod
    def regression_pairs(
        self, predict: Predict, sample: InterpolantSample
    ) -> Sequence[tuple[Tensor, Tensor]]:
        """The (prediction, target) pairs of one draw (a non-empty sequence), each two tensors
        of one shape ``(B, *dims)``, whose mean squared errors add up to the loss. Call the
        model through ``predict(t, x)`` and check its output with
        :func:`~interpolants.objective.check_prediction`; read no tensor value on the host."""

    def sample_losses(self, predict: Predict, sample: InterpolantSample) -> Float[Tensor, " batch"]:
        """Σ_k ``regression_loss(m̂_k, y_k)`` over :meth:`regression_pairs`."""
        return self._sum(regression_loss, predict, sample)

    def sample_mean_loss(self, predict: Predict, sample: InterpolantSample) -> Scalar:
        """Σ_k ``mean_regression_loss(m̂_k, y_k)`` over :meth:`regression_pairs`."""
        return self._sum(mean_regression_loss, predict, sample)

    def _sum(
        self,
        loss: Callable[[Tensor, Tensor], Tensor],
        predict: Predict,
        sample: InterpolantSample,
    ) -> Tensor:
        """Σ_k ``loss(m̂_k, y_k)`` over :meth:`regression_pairs`, checked from metadata: at
        least one pair, each a prediction and a target of one shape."""
        pairs = tuple(self.regression_pairs(predict, sample))
        if not pairs:
            raise ValueError(
                f"{type(self).__name__}.regression_pairs returned no (prediction, target) pair"
            )
        for k, pair in enumerate(pairs):
            if (
                len(pair) != 2
                or not isinstance(pair[0], Tensor)
                or not isinstance(pair[1], Tensor)
                or pair[0].shape != pair[1].shape
            ):
                shapes = [
                    tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__ for v in pair
                ]
                raise ValueError(
                    f"{type(self).__name__}.regression_pairs: pair {k} must be a prediction "
                    f"and a target tensor of one shape, got {shapes}"
                )
        total = loss(*pairs[0])
        for prediction, target in pairs[1:]:
            total = total + loss(prediction, target)
        return total
