r"""The problems of :mod:`density`: the 2-D toys and the dequantised 8×8 digits.

A :class:`Task` holds a sampler of fresh training batches and the fixed validation and test
sets, and scores a model's test log-likelihood (mean NLL in nats, or bits/dim on the digits,
whose 17 intensity levels are dequantised onto [−1, 1) the same way for every method).
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from interpolants.data import Checkerboard, EightGaussians, Moons, bits_per_dim, dequantize

LEVELS = 17  # digits: intensity levels 0..16, dequantised onto [−1, 1)


@dataclass(frozen=True)
class Task:
    """A density-estimation problem: fresh training batches, fixed validation/test sets."""

    name: str
    dim: int
    budget_s: float
    test: Tensor
    sample: Callable[[int, torch.Generator], Tensor]
    val: Tensor | None = None
    digits: bool = False

    def score(self, log_prob: Tensor) -> float:
        """Mean test NLL (nats) or, for the digits, bits/dim."""
        if self.digits:
            return float(bits_per_dim(log_prob, self.dim, levels=LEVELS, low=-1.0, high=1.0).mean())
        return float(-log_prob.mean())


TOYS = {"moons": Moons, "8gaussians": EightGaussians, "checkerboard": Checkerboard}


def toy_task(name: str, budget_s: float, n_test: int, seed: int) -> Task:
    toy = TOYS[name]()
    test = toy.sample(n_test, torch.Generator().manual_seed(20_000 + seed))
    return Task(name, 2, budget_s, test, toy.sample)


def digits_task(budget_s: float, seed: int, n_val: int = 200, test_size: int = 300) -> Task:
    """The digits with :func:`~interpolants.data.load_digits`'s fixed split (permutation seeded
    with 0, the first ``test_size`` images for test); the next ``n_val`` for validation."""
    from sklearn.datasets import load_digits as sk_digits

    raw = torch.as_tensor(sk_digits().data, dtype=torch.float32)
    raw = raw[torch.randperm(raw.shape[0], generator=torch.Generator().manual_seed(0))]
    test_raw, val_raw = raw[:test_size], raw[test_size : test_size + n_val]
    train_raw = raw[test_size + n_val :]
    fixed = torch.Generator().manual_seed(30_000 + seed)

    def deq(x: Tensor, g: torch.Generator) -> Tensor:
        return dequantize(x, levels=LEVELS, low=-1.0, high=1.0, generator=g, dtype=torch.float32)

    def sample(n: int, g: torch.Generator) -> Tensor:
        return deq(train_raw[torch.randint(0, train_raw.shape[0], (n,), generator=g)], g)

    return Task(
        "digits", 64, budget_s, deq(test_raw, fixed), sample, val=deq(val_raw, fixed), digits=True
    )
