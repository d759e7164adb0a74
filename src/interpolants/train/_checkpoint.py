"""Checkpoint files: a header with a content checksum, then a ``torch.save`` payload."""

import hashlib
import io
import os
import pickle
import struct
from pathlib import Path
from typing import Any

import torch

from .._atomic import remove_stale_temporaries, write_atomic

__all__ = ["CheckpointError", "load_checkpoint", "save_checkpoint"]

MAGIC = b"interpolants checkpoint v1\n"
_HEADER = struct.Struct("<Q32s")  # payload length, SHA-256 of the payload


class CheckpointError(ValueError):
    """A file that is not a readable checkpoint: truncated, corrupt (checksum mismatch),
    foreign (not written by :func:`save_checkpoint`), refused by ``weights_only=True``, or not
    the state a :class:`~interpolants.Trainer` wrote. Its message is one line naming the file.
    """


def first_line(err: BaseException) -> str:
    """``Type: first line of the message`` of an error (for one-line reports)."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> None:
    r"""Write ``state`` (tensors and plain containers) to ``path`` atomically, with a checksum.

    The file is the line ``interpolants checkpoint v1``, the payload's length (8 bytes,
    little-endian) and SHA-256 (32 bytes), then the payload, ``torch.save(state)``. It is
    written to a temporary sibling, fsynced and renamed over ``path`` (a reader sees the old
    file or the new one); temporary siblings of dead writers are removed (the rule is in
    :func:`~interpolants.train.load_checkpoint`'s notes).

    Example
    -------
    >>> import tempfile, torch
    >>> from interpolants.train import load_checkpoint, save_checkpoint
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     save_checkpoint({"w": torch.ones(2)}, f"{folder}/ck.pt")
    ...     load_checkpoint(f"{folder}/ck.pt")
    {'w': tensor([1., 1.])}
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getbuffer()
    header = MAGIC + _HEADER.pack(len(payload), hashlib.sha256(payload).digest())

    def write(fh: Any) -> None:
        fh.write(header)
        fh.write(payload)

    write_atomic(path, write)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, verify it, load it on the CPU.

    The checksum is verified before anything is unpickled, and the payload is loaded with
    ``torch.load(weights_only=True)``, which refuses every object but tensors, numbers,
    strings and plain containers (a crafted pickle cannot run code).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    CheckpointError
        A truncated, corrupt (flipped bytes: checksum mismatch), foreign (e.g. a plain
        ``torch.save`` file) or refused file, or one that is not a dictionary.

    Notes
    -----
    Loading (like every save) removes the temporary siblings ``.<name>.XXXXXXXX.tmp`` left
    by writers that died mid-save: a writer holds an exclusive ``flock`` on its temporary file
    until after the rename, the kernel drops it when the writer dies, so a sibling nobody
    holds a lock on and unchanged for a minute is an orphan. A live writer's file is never
    touched.
    """
    target = Path(path)
    remove_stale_temporaries(target)
    with open(target, "rb") as fh:
        data = fh.read()
    start = len(MAGIC) + _HEADER.size
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):
            raise CheckpointError(f"{target} is truncated: {len(data)} bytes, not even a header")
        kind = "a plain torch.save file" if data.startswith(b"PK\x03\x04") else "unknown data"
        raise CheckpointError(
            f"{target} is not an interpolants checkpoint ({kind}, no checksummed header)"
        )
    if len(data) < start:
        raise CheckpointError(f"{target} is truncated: {len(data)} bytes, inside its header")
    length, digest = _HEADER.unpack_from(data, len(MAGIC))
    payload = memoryview(data)[start:]
    if len(payload) < length:
        raise CheckpointError(
            f"{target} is truncated: holds {len(payload)} of its {length} payload bytes"
        )
    if len(payload) > length or hashlib.sha256(payload).digest() != digest:
        raise CheckpointError(
            f"{target} is corrupt: its content does not match its SHA-256 checksum"
        )
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{target} was refused by torch.load(weights_only=True): {first_line(err)}"
        ) from err
    except Exception as err:  # a payload that torch cannot parse despite a valid checksum
        raise CheckpointError(f"{target} cannot be read: {first_line(err)}") from err
    if not isinstance(state, dict):
        raise CheckpointError(f"{target} does not hold a checkpoint dictionary")
    return state
