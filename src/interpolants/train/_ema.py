"""The exponential moving average of a model's weights (see :mod:`interpolants.train`)."""

import copy
from typing import final

import torch
from torch import nn

__all__ = ["EMA"]


@final
class EMA:
    """Exponential moving average of a model's parameters: θ̄ ← δₙ θ̄ + (1 − δₙ) θ.

    The average lives in a frozen deep copy of the model (``model``), usable as a field.
    Buffers are copied, not averaged. With ``warmup`` (default) the decay of the n-th update
    is δₙ = min(δ, (1 + n)/(10 + n)), so that early averages are not dominated by the random
    initialisation (short runs with δ = 0.999 otherwise sample from weights far behind).
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True) -> None:
        if not 0 <= decay < 1:
            raise ValueError(f"decay must lie in [0, 1), got {decay}")
        self.decay = decay
        self.warmup = warmup
        self.updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current parameters."""
        n = self.updates
        decay = min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay
        self.updates += 1
        for avg, p in zip(self.model.parameters(), model.parameters()):
            avg.lerp_(p.detach(), 1 - decay)
        for avg_b, b in zip(self.model.buffers(), model.buffers()):
            avg_b.copy_(b)
