r"""Batches for training: sources of samples and the coupled-batch pipeline.

A *source* is anything with ``sample(n, generator) -> Tensor`` (a
:class:`GaussianMixture`, a toy from :mod:`interpolants.data`, or a
:class:`TensorData` over a fixed tensor, optionally with labels).

:class:`PairedBatches` draws x0 from the base and x1 (with labels) from the
target and pairs them with a :class:`Coupling`. It runs either *inline* (the
trainer calls it every step), in background threads or processes through
:class:`PrefetchedBatches`, or inside :class:`torch.utils.data.DataLoader`
worker processes through :class:`CoupledBatchStream`; the last two overlap
the CPU-side assignment of an exact OT coupling with the model step instead of adding it.

When is each faster? Inline costs ``T_pair + T_step`` per step. Overlapped, the step costs
about ``max(T_step, T_pair / k)`` with ``k`` producers and ``k`` free cores, and about
``(T_pair + T_step) / 2`` on two cores when the training loop assists (see
:class:`PrefetchedBatches`; measured in ``benchmarks/training_step.py``).
``PrefetchedBatches``'s processes return a batch as raw bytes through a pipe, while a
``DataLoader`` worker moves every tensor through a shared-memory file, which costs as much as a
small coupling. Inline wins for the independent coupling, for tiny models on a machine with no
spare core, and whenever exact resumability matters (the streams are reproducible from the
seed, and :class:`~interpolants.Trainer` positions a stream at its step).

**One seeding scheme.** Batch ``i`` of rank ``r`` of a run seeded with ``s`` is
``batches(batch_generator(s, i, r))`` (:func:`batch_generator`): a pure function of
``(s, i, r)``, whoever computes it. The trainer draws its inline batches so, the producers of
:class:`PrefetchedBatches` and the workers of a ``DataLoader`` over :class:`CoupledBatchStream`
too, so the same seed gives bit-identical batches with prefetching off, in threads, in
processes and in ``DataLoader`` workers, and a resumed or distributed run needs no stored
stream state: its step and rank say which batch comes next.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, final, runtime_checkable

import torch
from torch import Tensor
from torch.utils.data import IterableDataset, get_worker_info

from .._validation import check_finite, check_floating
from ..analytic._exact import GaussianMixture
from ..coupling._base import Coupling
from ..coupling._independent import IndependentCoupling
from ._datasets import GaussianMixtureData, ToyDataset
from ._seed import batch_generator, default_rank

__all__ = [
    "Batch",
    "CoupledBatchStream",
    "PairedBatches",
    "Source",
    "TensorData",
]


@runtime_checkable
class Source(Protocol):
    """Anything that draws ``n`` samples with a generator."""

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor: ...


@final
class TensorData:
    """A fixed tensor of samples (and optional labels), drawn uniformly with replacement.

    With labels it can also draw *class-matched* rows (:meth:`matching_indices`): row i
    uniformly among the rows whose label is ``labels[i]``; :class:`PairedBatches` draws a
    labelled base so, to match the target's labels.
    """

    def __init__(self, data: Tensor, labels: Tensor | None = None) -> None:
        if not isinstance(data, Tensor):
            raise TypeError(f"data must be a torch.Tensor, got {type(data).__name__}")
        if data.ndim < 1 or data.shape[0] == 0:
            raise ValueError(
                f"data must be a non-empty tensor of shape (N, *dims), got {tuple(data.shape)}"
            )
        check_floating(data, "data")
        check_finite(data, "data")  # once, at construction
        if labels is not None:
            if not isinstance(labels, Tensor) or labels.is_floating_point():
                got = labels.dtype if isinstance(labels, Tensor) else type(labels).__name__
                raise TypeError(f"labels must be an integer or boolean tensor, got {got}")
            if labels.shape != (data.shape[0],):
                raise ValueError(
                    f"labels must have shape ({data.shape[0]},), got {tuple(labels.shape)}"
                )
        self.data, self.labels = data, labels
        self._classes: tuple[Tensor, Tensor, Tensor, Tensor] | None = None

    def indices(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` row indices drawn uniformly with replacement."""
        return torch.randint(0, self.data.shape[0], (n,), generator=generator)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` rows drawn uniformly with replacement."""
        return self.data[self.indices(n, generator)]

    def classes(self) -> Tensor:
        """The distinct labels, sorted (raises ``ValueError`` without labels)."""
        return self._class_table()[1]

    def matching_indices(self, labels: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Row ``i`` drawn uniformly among the rows labelled ``labels[i]`` (with replacement).

        Raises ``ValueError`` for a label that no row carries. Draws ``len(labels)`` uniform
        float64 numbers from ``generator``, one per row, whatever the classes.
        """
        order, classes, counts, starts = self._class_table()
        wanted = labels.to(device=classes.device, dtype=classes.dtype)
        pos = torch.searchsorted(classes, wanted).clamp_(max=classes.shape[0] - 1)
        if not bool((classes[pos] == wanted).all()):
            missing = sorted(set(wanted.tolist()) - set(classes.tolist()))
            raise ValueError(f"no rows carry the labels {missing}")
        u = torch.rand(wanted.shape, generator=generator, dtype=torch.float64)
        offset = (u * counts[pos]).long().clamp_(max=counts[pos] - 1)
        return order[starts[pos] + offset]

    def _class_table(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(rows sorted by label, sorted classes, their counts, first sorted row of each)."""
        if self.labels is None:
            raise ValueError("this TensorData has no labels")
        if self._classes is None:
            order = torch.argsort(self.labels, stable=True)
            classes, counts = torch.unique_consecutive(self.labels[order], return_counts=True)
            self._classes = (order, classes, counts, torch.cumsum(counts, 0) - counts)
        return self._classes


@dataclass(frozen=True)
class Batch:
    """A coupled training batch.

    Attributes
    ----------
    x0, x1:
        The paired samples, shape ``(m, *dims)``.
    labels:
        The target labels of the pairs (``y1``, in the pairs' order), or ``None``;
        :class:`~interpolants.Trainer` passes them to the model with ``conditional=True``.
    condition:
        The conditioning information ξ of a data-dependent coupling
        (:attr:`~interpolants.coupling.Pairing.condition`, e.g. an inpainting mask), or
        ``None``; the trainer always passes it to the model as ``condition``.
    """

    x0: Tensor
    x1: Tensor
    labels: Tensor | None = None
    condition: Tensor | None = None

    def to(self, device: torch.device | str) -> "Batch":
        """The batch on ``device``."""
        labels = None if self.labels is None else self.labels.to(device)
        condition = None if self.condition is None else self.condition.to(device)
        return Batch(self.x0.to(device), self.x1.to(device), labels, condition)


@final
class PairedBatches:
    """Draw (x0, x1[, labels]) from two sources and pair them with a coupling.

    **Labels.** A :class:`TensorData` with labels yields labels; the coupling receives them
    as ``y0`` and ``y1`` (a :class:`~interpolants.coupling.LabelConditionalCoupling` pairs
    within classes) and the batch carries the target's (:attr:`Batch.labels`):

    =================  ==================  =====================================================
    base               target              what the coupling receives
    =================  ==================  =====================================================
    unlabelled         unlabelled          no labels
    unlabelled         labelled            ``y0 = y1``: x0 is drawn independently of the
                                           labels, so x0ᵢ is a draw from ρ0(· | y1ᵢ) = ρ0 and
                                           may carry the label y1ᵢ (noise to class)
    labelled           labelled            ``y0 = y1``, class-matched: x0ᵢ is drawn among the
                                           base rows labelled y1ᵢ (:meth:`TensorData.
                                           matching_indices`), so x0ᵢ ~ ρ0(· | y1ᵢ): the two
                                           sides' labels name the same classes (class to class)
    labelled           unlabelled          ``y0`` only (x0 drawn uniformly)
    =================  ==================  =====================================================

    With class-matched draws the batch's x0 follow Σ_y p1(y) ρ0(· | y) (the base's classes
    in the target's proportions), as a class-conditional model b(t, x, y) needs; every target
    class must occur in the base (checked here). A data-dependent coupling's condition ξ is
    returned as :attr:`Batch.condition`.

    Parameters
    ----------
    base, target:
        Sources of x0 and x1.
    batch_size:
        Samples per batch.
    coupling:
        The minibatch coupling (independent by default).

    Example
    -------
    >>> import torch
    >>> from interpolants import GaussianMixture, PairedBatches
    >>> from interpolants.coupling import LabelConditionalCoupling
    >>> from interpolants.data import TensorData, batch_generator
    >>> data = TensorData(torch.randn(100, 2), torch.arange(100) % 3)
    >>> batches = PairedBatches(GaussianMixture.standard_normal(2), data, 16,
    ...                         LabelConditionalCoupling())
    >>> batch = batches(batch_generator(seed=0, index=0))
    >>> batch.x0.shape, batch.labels.shape
    (torch.Size([16, 2]), torch.Size([16]))
    """

    def __init__(
        self,
        base: Source,
        target: Source,
        batch_size: int,
        coupling: Coupling | None = None,
    ) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        for name, src in (("base", base), ("target", target)):
            if not isinstance(src, Source):
                raise TypeError(f"{name} must have a sample(n, generator) method")
        shapes = (event_shape(base), event_shape(target))
        if shapes[0] is not None and shapes[1] is not None and shapes[0] != shapes[1]:
            raise ValueError(
                f"base and target must have samples of one shape: base draws {shapes[0]} "
                f"per sample, target {shapes[1]}"
            )
        if coupling is not None and not isinstance(coupling, Coupling):
            raise TypeError(f"coupling must be a Coupling, got {type(coupling).__name__}")
        if _labelled(base) and _labelled(target):
            assert isinstance(base, TensorData) and isinstance(target, TensorData)
            missing = sorted(set(target.classes().tolist()) - set(base.classes().tolist()))
            if missing:
                raise ValueError(
                    f"the target's classes {missing} do not occur in the labelled base: "
                    "class-matched draws need every target class in the base"
                )
        self.base, self.target = base, target
        self.batch_size = batch_size
        self.coupling = IndependentCoupling() if coupling is None else coupling

    def __call__(self, generator: torch.Generator | None = None) -> Batch:
        """One coupled batch (on the sources' device, normally the CPU)."""
        return self._pair(*self._draw(generator), generator)

    def _draw(
        self, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """Unpaired (x0, x1, y0, y1) by the labels rule (class docs); target drawn first."""
        n = self.batch_size
        base, target = self.base, self.target
        y0: Tensor | None = None
        y1: Tensor | None = None
        if isinstance(target, TensorData) and target.labels is not None:
            idx = target.indices(n, generator)
            x1, y1 = target.data[idx], target.labels[idx]
        else:
            x1 = target.sample(n, generator)
        if isinstance(base, TensorData) and base.labels is not None:
            if y1 is not None:  # class-matched
                idx0 = base.matching_indices(y1, generator)
                x0, y0 = base.data[idx0], y1
            else:
                idx0 = base.indices(n, generator)
                x0, y0 = base.data[idx0], base.labels[idx0]
        else:
            x0, y0 = base.sample(n, generator), y1
        if x0.shape[1:] != x1.shape[1:] or x0.shape[0] != n or x1.shape[0] != n:  # metadata
            raise ValueError(
                f"base and target must each draw batch_size = {n} samples of one shape, got "
                f"base {tuple(x0.shape)} and target {tuple(x1.shape)}"
            )
        return x0.to(x1.dtype), x1, y0, y1

    def _pair(
        self,
        x0: Tensor,
        x1: Tensor,
        y0: Tensor | None,
        y1: Tensor | None,
        generator: torch.Generator | None,
    ) -> Batch:
        """Couple drawn batches (the trainer also calls it on all-gathered ones)."""
        if isinstance(self.coupling, IndependentCoupling):
            return Batch(x0, x1, y1)  # already independent draws: pairing is a no-op
        pairing = self.coupling(x0, x1, y0=y0, y1=y1, generator=generator)
        labels = pairing.y1 if isinstance(pairing.y1, Tensor) else None
        return Batch(pairing.x0, pairing.x1, labels, pairing.condition)

    def __repr__(self) -> str:
        return (
            f"PairedBatches({self.base!r}, {self.target!r}, batch_size={self.batch_size}, "
            f"coupling={self.coupling!r})"
        )


def event_shape(source: object) -> tuple[int, ...] | None:
    """The shape of one sample of a library source, known without drawing (``None`` for a
    user's source, whose batches are checked when drawn)."""
    if isinstance(source, TensorData):
        return tuple(source.data.shape[1:])
    if isinstance(source, (GaussianMixture, GaussianMixtureData, ToyDataset)):
        return (source.dim,)
    return None


def _labelled(source: Source) -> bool:
    return isinstance(source, TensorData) and source.labels is not None


@final
class CoupledBatchStream(IterableDataset[Batch]):
    """An endless stream of coupled batches for :class:`torch.utils.data.DataLoader` workers.

    Use with ``DataLoader(stream, batch_size=None, num_workers=k)``. Batch ``i`` is
    ``batches(batch_generator(seed, i, rank))`` whoever computes it: worker ``w`` of ``k``
    makes batches ``start + w``, ``start + w + k``, ..., and the loader hands them out in
    that round-robin order, so the stream is the same for any ``k`` (0 included) and the same
    as :class:`PrefetchedBatches` and the trainer's inline batches with the same seed.
    :class:`~interpolants.Trainer` calls :meth:`seek` with its step before it iterates the
    loader, so a resumed run continues the stream; a loader with ``persistent_workers=True``
    takes the position when its workers start, at its first iteration.

    Parameters
    ----------
    batches:
        The batch recipe.
    seed:
        Seed of the stream.
    rank:
        The rank whose batches to make; ``None``: this process's :mod:`torch.distributed`
        rank at construction (0 when not distributed).
    start:
        Index of the first batch.
    """

    def __init__(
        self, batches: PairedBatches, seed: int = 0, rank: int | None = None, start: int = 0
    ) -> None:
        if not isinstance(batches, PairedBatches):
            raise TypeError(f"batches must be PairedBatches, got {type(batches).__name__}")
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        self.batches, self.seed = batches, int(seed)
        self.rank = default_rank() if rank is None else int(rank)
        self.start = int(start)

    def seek(self, index: int) -> None:
        """Make ``index`` the next batch of iterators created from now on."""
        if index < 0:
            raise ValueError(f"index must be >= 0, got {index}")
        self.start = int(index)

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        index = self.start + worker
        while True:
            yield self.batches(batch_generator(self.seed, index, self.rank))
            index += workers
