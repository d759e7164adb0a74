"""The seeding scheme of the training data: one generator per (seed, batch index, rank)."""

import hashlib

import torch
import torch.distributed as dist

__all__ = ["batch_generator", "default_rank", "derived_seed"]


def derived_seed(*parts: object) -> int:
    """63 bits of BLAKE2b of ``parts`` joined by ``/``: unrelated seeds for distinct parts."""
    digest = hashlib.blake2b("/".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def batch_generator(seed: int, index: int, rank: int = 0) -> torch.Generator:
    """The generator that batch ``index`` of rank ``rank`` of a stream seeded with ``seed`` is
    drawn with.

    Seeded with 63 bits of BLAKE2b of ``(seed, index)`` (rank 0) or ``(seed, index, rank)``:
    distinct streams, batches and ranks get unrelated seeds, and a batch does not depend on
    who computes it (the trainer inline, a thread, a process, a ``DataLoader`` worker) nor on
    what was drawn before it. This makes a batch a pure function of (seed, step, rank).

    Example
    -------
    >>> import torch
    >>> from interpolants.data import batch_generator
    >>> a = torch.rand(2, generator=batch_generator(0, 5))
    >>> torch.equal(a, torch.rand(2, generator=batch_generator(0, 5)))
    True
    >>> torch.equal(a, torch.rand(2, generator=batch_generator(0, 5, rank=1)))
    False
    """
    if rank < 0:
        raise ValueError(f"rank must be >= 0, got {rank}")
    parts = (int(seed), int(index)) if rank == 0 else (int(seed), int(index), int(rank))
    return torch.Generator().manual_seed(derived_seed(*parts))


def default_rank() -> int:
    """The :mod:`torch.distributed` rank of this process (0 when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return 0
