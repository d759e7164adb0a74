r"""Data for training: sources of samples, the coupled-batch pipeline, datasets, dequantisation.

* **Sources** are anything with ``sample(n, generator) -> Tensor``
  (:class:`GaussianMixture`, the toys below, :class:`TensorData` over a fixed
  tensor, optionally with labels).
* :class:`PairedBatches` draws x0 and x1 (with labels on either side) from the base and the
  target and pairs them with a :class:`Coupling`: inline (the trainer calls it
  every step), ahead of time in background threads or processes
  (:class:`PrefetchedBatches`), or in :class:`torch.utils.data.DataLoader` workers
  (:class:`CoupledBatchStream`). Batch ``i`` of rank ``r`` is drawn with
  :func:`batch_generator` ``(seed, i, r)`` in every case, so the same seed gives the same
  batches whatever runs them.
* **Datasets** that need no download: 2-D toys, Gaussian mixtures and scikit-learn's bundled
  8×8 digits (:func:`load_digits`).
* **Discrete data**: :func:`dequantize` and :func:`bits_per_dim`.
"""

from ._batches import Batch as Batch
from ._batches import CoupledBatchStream as CoupledBatchStream
from ._batches import Source as Source
from ._batches import TensorData as TensorData
from ._datasets import TOY_DATASETS as _TOY_DATASETS
from ._datasets import Checkerboard as Checkerboard
from ._datasets import Circles as Circles
from ._datasets import DigitsData as DigitsData
from ._datasets import EightGaussians as EightGaussians
from ._datasets import GaussianMixtureData as GaussianMixtureData
from ._datasets import Moons as Moons
from ._datasets import Pinwheel as Pinwheel
from ._datasets import SwissRoll as SwissRoll
from ._datasets import ToyDataset as ToyDataset
from ._datasets import TwoSpirals as TwoSpirals
from ._datasets import load_digits as load_digits
from ._prefetch import PrefetchedBatches as PrefetchedBatches
from ._quantize import bits_per_dim as bits_per_dim
from ._quantize import dequantize as dequantize
from ._seed import batch_generator as batch_generator

TOY_DATASETS = _TOY_DATASETS
"""The 2-D toys by command-line name (``{name: class}``)."""

__all__ = [
    "TOY_DATASETS",
    "Batch",
    "Checkerboard",
    "Circles",
    "CoupledBatchStream",
    "DigitsData",
    "EightGaussians",
    "GaussianMixtureData",
    "Moons",
    "Pinwheel",
    "PrefetchedBatches",
    "Source",
    "SwissRoll",
    "TensorData",
    "ToyDataset",
    "TwoSpirals",
    "batch_generator",
    "bits_per_dim",
    "dequantize",
    "load_digits",
]
