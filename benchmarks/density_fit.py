r"""The training loop shared by every method of :mod:`density`.

:func:`fit` runs AdamW on a loss until a :class:`Budget` (CPU-seconds of this process, or a
number of steps) is spent, with a learning rate following :func:`cosine` of the budget's
fraction; :class:`EMA` averages the weights after each step and :class:`Checkpoints` keeps the
best validation state (the digits' early stopping), neither charged to the budget.
"""

import copy
import math
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn


def cosine(frac: float, warmup: float = 0.0) -> float:
    """Learning-rate factor at ``frac`` of the budget: linear warm-up, then a cosine to 0."""
    if warmup > 0 and frac < warmup:
        return frac / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))


class Budget:
    """Training progress in CPU-seconds of this process (or in steps), with a clock that
    :meth:`pause` stops (validation is not charged)."""

    def __init__(self, seconds: float | None, steps: int | None) -> None:
        self.seconds, self.steps = seconds, steps
        self.spent, self.step = 0.0, 0
        self._start: float | None = time.process_time()

    def cpu(self) -> float:
        """CPU-seconds charged so far."""
        running = 0.0 if self._start is None else time.process_time() - self._start
        return self.spent + running

    def fraction(self) -> float:
        if self.steps is not None:
            return self.step / self.steps
        assert self.seconds is not None
        return self.cpu() / self.seconds

    def pause(self) -> None:
        self.spent = self.cpu()
        self._start = None

    def resume(self) -> None:
        self._start = time.process_time()


def fit(
    loss_fn: Callable[[Tensor, torch.Generator], Tensor],
    params: list[nn.Parameter],
    sample: Callable[[int, torch.Generator], Tensor],
    *,
    batch: int,
    lr: float,
    budget: Budget,
    seed: int,
    after_step: Callable[[int], None] | None = None,
    validate: Callable[[], None] | None = None,
    validations: int = 0,
    warmup: float = 0.0,
    clip: float | None = 1.0,
    weight_decay: float = 0.0,
) -> None:
    """Adam on ``loss_fn(batch, generator)`` until the budget is spent (cosine schedule)."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    next_val = 1
    while (frac := budget.fraction()) < 1:
        if validate is not None and frac * validations >= next_val:
            budget.pause()
            validate()
            budget.resume()
            next_val += 1
        for group in opt.param_groups:
            group["lr"] = lr * cosine(frac, warmup)
        loss = loss_fn(sample(batch, g), g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        budget.step += 1
        if after_step is not None:
            after_step(budget.step)
    budget.pause()
    if validate is not None:
        validate()


class EMA:
    """Exponential moving average of a module's parameters (decay warmed up as (1+n)/(10+n))."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model).requires_grad_(False).eval()
        self.source, self.decay = model, decay

    @torch.no_grad()
    def __call__(self, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for avg, p in zip(self.model.parameters(), self.source.parameters(), strict=True):
            avg.lerp_(p, 1 - d)


class Checkpoints:
    """Keeps the state of the best validation score (the digits' early stopping)."""

    def __init__(self, module: nn.Module, score: Callable[[], float]) -> None:
        self.module, self.score = module, score
        self.best = math.inf
        self.state: dict[str, Tensor] | None = None
        self.history: list[tuple[int, float]] = []
        self.cpu_s = 0.0

    def __call__(self, step: int) -> None:
        start = time.process_time()
        value = self.score()
        self.history.append((step, value))
        if value < self.best:
            self.best = value
            self.state = copy.deepcopy(self.module.state_dict())
        self.cpu_s += time.process_time() - start

    def restore(self) -> None:
        if self.state is not None:
            self.module.load_state_dict(self.state)
