r"""Dequantisation of discrete data and bits per dimension, in one place.

Discrete data x ∈ {0, …, L−1}^D are dequantised to y = low + (x + u)·a with u ~ U[0, 1)^D and
a = (high − low)/L (:func:`dequantize`); then

.. math::

    \mathrm{bpd} = \frac{−\log p_Y(y) − D \log a}{D \ln 2}

(:func:`bits_per_dim`) is, in expectation over u, an upper bound on −log₂ P(x)/D. For 8-bit
data scaled to [0, 1) the −D log a term adds 8 bits; to [−1, 1) it adds 7.

References
----------
L. Theis, A. van den Oord, M. Bethge, *A note on the evaluation of generative models*,
arXiv:1511.01844.
"""

import math

import torch
from jaxtyping import Float, Shaped
from torch import Tensor

from .._validation import check_floating

__all__ = ["bits_per_dim", "dequantize"]


def dequantize(
    x: Shaped[Tensor, "batch *dims"],
    *,
    levels: int = 256,
    low: float = 0.0,
    high: float = 1.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> Float[Tensor, "batch *dims"]:
    r"""Uniform dequantisation y = low + (x + u)·(high − low)/levels, u ~ U[0, 1)^D.

    ``x`` holds integers in {0, …, levels − 1} (any integer or floating dtype); the result lies
    in [low, high) and has ``dtype`` (default: the default floating dtype).

    Example
    -------
    >>> import torch
    >>> from interpolants.data import dequantize
    >>> y = dequantize(torch.tensor([[0, 255]]), generator=torch.Generator().manual_seed(0))
    >>> bool((y[0, 0] < 1 / 256) & (y[0, 1] >= 255 / 256))
    True
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not isinstance(levels, int) or levels < 2:
        raise ValueError(f"levels must be an integer ≥ 2, got {levels!r}")
    if not high > low:
        raise ValueError(f"high must exceed low, got low={low}, high={high}")
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"x must hold integer levels, got dtype {x.dtype}")
    xf = x.to(torch.get_default_dtype() if dtype is None else dtype)
    if x.numel() and (
        bool((xf != xf.round()).any()) or float(xf.min()) < 0 or float(xf.max()) > levels - 1
    ):
        raise ValueError(f"x must hold integers in [0, {levels - 1}]")
    u = torch.rand(xf.shape, generator=generator, dtype=xf.dtype, device=xf.device)
    return low + (xf + u) * ((high - low) / levels)


def bits_per_dim(
    log_prob: Float[Tensor, " batch"],
    dims: int,
    *,
    levels: int = 256,
    low: float = 0.0,
    high: float = 1.0,
) -> Float[Tensor, " batch"]:
    r"""Bits per dimension of dequantised data: (−log p_Y(y) − D log a)/(D ln 2).

    Arguments
    ---------
    log_prob:
        log p_Y(y) of the dequantised data y in nats, shape ``(B,)`` (e.g.
        ``log_likelihood(...).log_prob``).
    dims:
        D, the number of dimensions of one sample.
    levels, low, high:
        The dequantisation of :func:`dequantize`: a = (high − low)/levels.

    Example
    -------
    >>> import torch
    >>> from interpolants.data import bits_per_dim
    >>> bits_per_dim(torch.zeros(1), 3072)  # uniform density on [0, 1): 8 bits
    tensor([8.])
    """
    check_floating(log_prob, "log_prob")
    if not isinstance(dims, int) or dims < 1:
        raise ValueError(f"dims must be a positive integer, got {dims!r}")
    if not isinstance(levels, int) or levels < 2:
        raise ValueError(f"levels must be an integer ≥ 2, got {levels!r}")
    if not high > low:
        raise ValueError(f"high must exceed low, got low={low}, high={high}")
    log_a = math.log((high - low) / levels)
    return (-log_prob - dims * log_a) / (dims * math.log(2.0))
