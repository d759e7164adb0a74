r"""Held-out data for density estimation: train/validation/test splits and early stopping.

A likelihood reported on the data a model was selected on is biased low. The protocol of
the density-estimation literature (e.g. Papamakarios et al., *Masked Autoregressive Flow*,
arXiv:1705.07057) keeps three disjoint sets: the model is fit on the training set, its
checkpoint (and any hyper-parameter) chosen by the validation NLL, and the test NLL reported
once, for that checkpoint. :func:`split_data` makes the three sets from one tensor;
:class:`EarlyStopping` evaluates the validation NLL of an :class:`InterpolantFlow` as a
:meth:`~interpolants.Trainer.fit` callback, keeps the best weights, and stops the run when the
NLL has not improved for ``patience`` evaluations.
"""

import copy
import math
from dataclasses import dataclass
from typing import Any, final

import torch
from jaxtyping import Float, Shaped
from torch import Tensor

from ._flow import InterpolantFlow

__all__ = ["EarlyStopping", "Splits", "split_data"]


@final
@dataclass(frozen=True)
class Splits:
    """Three disjoint parts of a data set (rows of the tensor given to :func:`split_data`).

    Attributes
    ----------
    train, validation, test:
        The rows of each part, shapes ``(n_train, *dims)``, ``(n_validation, *dims)`` and
        ``(n_test, *dims)``.
    train_index, validation_index, test_index:
        Their row indices in the original tensor (int64), for labels or other per-row data.
    """

    train: Tensor
    validation: Tensor
    test: Tensor
    train_index: Tensor
    validation_index: Tensor
    test_index: Tensor


def split_data(
    x: Shaped[Tensor, "n *dims"],
    *,
    validation: float | int = 0.1,
    test: float | int = 0.1,
    generator: torch.Generator | None = None,
) -> Splits:
    r"""Split the rows of ``x`` at random into disjoint train, validation and test sets.

    A float size is a fraction of the n rows (rounded to the nearest count), an int a count.
    The rows are permuted once (by ``generator``; fix its seed for a reproducible split), the
    first n_test rows of the permutation form the test set, the next n_validation the
    validation set and the rest the training set, so that

    .. math::

        n_\mathrm{train} + n_\mathrm{validation} + n_\mathrm{test} = n,

    each at least one row except a zero-sized validation or test set asked for.

    Parameters
    ----------
    x:
        The data, shape ``(n, *dims)``.
    validation:
        Validation set size: a fraction in [0, 1) or a count.
    test:
        Test set size: a fraction in [0, 1) or a count.
    generator:
        Random generator of the permutation (default: torch's global one).

    Returns
    -------
    Splits
        The three parts and their row indices.

    Example
    -------
    >>> import torch
    >>> from interpolants.density import split_data
    >>> x = torch.arange(20.0).reshape(10, 2)
    >>> parts = split_data(x, validation=0.2, test=3, generator=torch.Generator().manual_seed(0))
    >>> parts.train.shape, parts.validation.shape, parts.test.shape
    (torch.Size([5, 2]), torch.Size([2, 2]), torch.Size([3, 2]))
    >>> bool(torch.equal(x[parts.test_index], parts.test))
    True
    """
    if not isinstance(x, Tensor) or x.ndim < 1:
        raise TypeError("x must be a tensor with one row per sample")
    n = x.shape[0]
    sizes = {}
    for name, size in (("validation", validation), ("test", test)):
        if isinstance(size, bool) or not isinstance(size, int | float):
            raise TypeError(f"{name} must be a fraction or a count, got {type(size).__name__}")
        if isinstance(size, float):
            if not 0 <= size < 1:
                raise ValueError(f"{name} as a fraction must lie in [0, 1), got {size}")
            size = round(size * n)
        if size < 0:
            raise ValueError(f"{name} must be non-negative, got {size}")
        sizes[name] = int(size)
    n_val, n_test = sizes["validation"], sizes["test"]
    if n_val + n_test >= n:
        raise ValueError(
            f"validation ({n_val}) and test ({n_test}) rows leave no training rows of {n}"
        )
    perm = torch.randperm(n, generator=generator).to(x.device)
    test_index, val_index = perm[:n_test], perm[n_test : n_test + n_val]
    train_index = perm[n_test + n_val :]
    return Splits(x[train_index], x[val_index], x[test_index], train_index, val_index, test_index)


@final
class EarlyStopping:
    r"""Validation NLL as a :meth:`~interpolants.Trainer.fit` callback; keeps the best weights.

    Each call computes the mean negative log-likelihood of the validation set under the flow,

    .. math::

        \mathrm{NLL}_\mathrm{val} = -\frac{1}{n} \sum_{i=1}^{n} \log \rho_1(x_i),

    with the flow's ``log_prob`` (its likelihood integrator and divergence), records it, and
    keeps a copy of ``flow.velocity``'s weights when it is below the best so far by more than
    ``min_delta``. It returns ``True`` (stop) once ``patience`` calls in a row brought no such
    improvement. :meth:`restore` loads the best weights back. Build the flow on the weights
    to be selected: with a :class:`~interpolants.Trainer` and EMA, its ``sampling_model`` (the
    EMA copy), which the trainer updates in place.

    Parameters
    ----------
    flow:
        The flow whose validation NLL is measured (its velocity's weights are kept).
    validation:
        The validation data, shape ``(n, *event_shape)``.
    patience:
        Evaluations without improvement before stopping (``None``: never stop, only keep the
        best).
    min_delta:
        The improvement (nats) an evaluation must make to count.

    Attributes
    ----------
    best:
        The lowest validation NLL so far (``inf`` before the first call).
    best_step:
        The trainer's step count at that evaluation (the call number without a trainer).
    history:
        ``[(step, nll), ...]`` of every evaluation.

    Example
    -------
    >>> import torch
    >>> from interpolants import MLP, GaussianMixture, LinearInterpolant, PairedBatches
    >>> from interpolants import Trainer, VelocityObjective
    >>> from interpolants.data import Moons
    >>> from interpolants.density import EarlyStopping, InterpolantFlow
    >>> from interpolants.integrate import RK4
    >>> torch.manual_seed(0) and None
    >>> base = GaussianMixture.standard_normal(2)
    >>> trainer = Trainer(MLP(2, hidden=32, depth=2), VelocityObjective(LinearInterpolant()),
    ...                   PairedBatches(base, Moons(), batch_size=64), seed=0)
    >>> flow = InterpolantFlow(trainer.sampling_model, base, likelihood=RK4(), steps=4)
    >>> val = Moons().sample(200, torch.Generator().manual_seed(1))
    >>> stopper = EarlyStopping(flow, val, patience=3)
    >>> state = trainer.fit(40, callback=stopper, eval_every=10, progress=False)
    >>> len(stopper.history), stopper.best == min(v for _, v in stopper.history)
    (4, True)
    >>> stopper.restore()  # the best validation weights, into trainer.sampling_model
    """

    def __init__(
        self,
        flow: InterpolantFlow,
        validation: Float[Tensor, "n *event"],
        *,
        patience: int | None = 5,
        min_delta: float = 0.0,
    ) -> None:
        if not isinstance(flow, InterpolantFlow):
            raise TypeError(f"flow must be an InterpolantFlow, got {type(flow).__name__}")
        if not isinstance(validation, Tensor) or validation.ndim < 1 or validation.shape[0] < 1:
            raise ValueError("validation must be a non-empty tensor of samples")
        if patience is not None and (
            isinstance(patience, bool) or not isinstance(patience, int) or patience < 1
        ):
            raise ValueError(f"patience must be a positive integer or None, got {patience!r}")
        if not min_delta >= 0:
            raise ValueError(f"min_delta must be non-negative, got {min_delta}")
        self.flow = flow
        self.validation = validation
        self.patience = patience
        self.min_delta = float(min_delta)
        self.best = math.inf
        self.best_step = -1
        self.bad = 0
        self.history: list[tuple[int, float]] = []
        self.best_state: dict[str, Tensor] | None = None

    def nll(self) -> float:
        """The validation NLL of the flow's current weights (nats)."""
        velocity = self.flow.velocity
        training = velocity.training
        velocity.eval()
        try:
            return float(-self.flow().log_prob(self.validation).mean())
        finally:
            velocity.train(training)

    def __call__(self, trainer: Any = None) -> bool:
        """Evaluate, keep the weights if best; ``True`` when the run should stop."""
        step = int(getattr(trainer, "step_count", len(self.history)))
        value = self.nll()
        if not math.isfinite(value):
            raise FloatingPointError(f"the validation NLL is {value} at step {step}")
        self.history.append((step, value))
        if value < self.best - self.min_delta:
            self.best, self.best_step, self.bad = value, step, 0
            self.best_state = copy.deepcopy(
                {k: v.detach().cpu() for k, v in self.flow.velocity.state_dict().items()}
            )
        else:
            self.bad += 1
        return self.patience is not None and self.bad >= self.patience

    @property
    def stopped(self) -> bool:
        """Whether the patience is spent."""
        return self.patience is not None and self.bad >= self.patience

    def restore(self) -> None:
        """Load the best weights seen into ``flow.velocity`` (nothing before the first call)."""
        if self.best_state is not None:
            self.flow.velocity.load_state_dict(self.best_state)

    def state_dict(self) -> dict[str, Any]:
        """The record (best value, step, patience count, history, best weights), to resume."""
        return {
            "best": self.best,
            "best_step": self.best_step,
            "bad": self.bad,
            "history": [list(h) for h in self.history],
            "best_state": self.best_state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a record written by :meth:`state_dict`."""
        self.best = float(state["best"])
        self.best_step = int(state["best_step"])
        self.bad = int(state["bad"])
        self.history = [(int(s), float(v)) for s, v in state["history"]]
        self.best_state = state["best_state"]
