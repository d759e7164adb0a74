"""What the trainer asks of :mod:`torch.distributed`: this process's rank and the world size,
and an all-gather along the first dimension."""

import torch
import torch.distributed as dist
from torch import Tensor

__all__: list[str] = []


def rank_world() -> tuple[int, int]:
    """(rank, world size); (0, 1) without an initialised process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_gather(x: Tensor) -> Tensor:
    """The tensors of every rank, concatenated along the first dimension."""
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)
