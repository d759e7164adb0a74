r"""Classifier-free guidance at sampling time.

A class-conditional model f(t, x, y) trained with label dropout
(:func:`drop_labels`) also predicts the unconditional field f(t, x, ∅).
The guided field is

.. math:: f_w(t, x) = (1 + w)\,f(t, x, y) - w\,f(t, x, ∅),

so ``scale = 0`` samples the conditional model and larger ``scale`` sharpens the classes.
Any integrator accepts the guided field in place of the model (it is a plain ``f(t, x)``).

References
----------
J. Ho, T. Salimans, *Classifier-Free Diffusion Guidance*, arXiv:2207.12598.
"""

from collections.abc import Callable
from typing import Any, final

import torch
from jaxtyping import Float, Int
from torch import Tensor

__all__ = ["ClassifierFreeGuidance"]


@final
class ClassifierFreeGuidance:
    """The guided field (1 + w) f(t, x, y) − w f(t, x, ∅) of a conditional model.

    Parameters
    ----------
    model:
        Called as ``model(t, x, condition=labels)``.
    labels:
        The classes to sample, shape ``(B,)`` (one per sample of the batch integrated).
    null_label:
        The index of the unconditional class (``num_classes`` for :class:`MLP`).
    scale:
        The guidance weight w ≥ 0.
    """

    def __init__(
        self,
        model: Callable[..., Any],
        labels: Int[Tensor, " batch"],
        null_label: int,
        scale: float = 1.0,
    ) -> None:
        if not scale >= 0:
            raise ValueError(f"scale must be non-negative, got {scale}")
        self.model = model
        self.labels = labels
        self.null = torch.full_like(labels, null_label)
        self.scale = float(scale)

    def __call__(
        self, t: Float[Tensor, " batch"], x: Float[Tensor, "batch *dims"]
    ) -> Float[Tensor, "batch *dims"]:
        if x.shape[0] != self.labels.shape[0]:
            raise ValueError(
                f"x has batch {x.shape[0]} but {self.labels.shape[0]} labels were given"
            )
        cond: Tensor = self.model(t, x, condition=self.labels)
        if self.scale == 0:
            return cond
        uncond: Tensor = self.model(t, x, condition=self.null)
        return (1 + self.scale) * cond - self.scale * uncond
