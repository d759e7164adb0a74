"""Atomic file writes, written once: a temporary file in the target's folder, flushed to disk,
then renamed over the target, so a reader sees the old file or the new one, never half of it.

**Temporary files of dead writers.** A writer killed between creating its temporary file
``.<name>.<8 random characters>.tmp`` and the rename leaves it behind. Every write (and
:func:`remove_stale_temporaries`, which checkpoint loading calls) removes such siblings of its
target, by this rule: a writer holds an exclusive ``flock`` on its temporary file from just
after creating it until after the rename, and the kernel drops the lock when the writer dies;
so a sibling whose lock can be taken (no live writer holds it) and which was last modified
more than ``STALE_AFTER_S`` seconds ago (which covers the instant between a live writer's
creating the file and locking it) is an orphan, and is deleted. A live writer's file is never
touched, in this process or any other on the same machine or lock-supporting file system.
Without ``fcntl`` (Windows) nothing is cleaned.
"""

import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

try:
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - not POSIX
    _fcntl = None  # type: ignore[assignment]
fcntl: Any = _fcntl  # None where the platform has no flock

__all__ = ["STALE_AFTER_S", "remove_stale_temporaries", "write_atomic", "write_text_atomic"]

STALE_AFTER_S = 60.0
"""An unlocked temporary sibling older than this (seconds since its last change) is an orphan."""

_UMASK = os.umask(0o022)  # read the process umask once (at import, single-threaded) ...
os.umask(_UMASK)  # ... and put it back


def _temporaries(target: Path) -> list[Path]:
    """The temporary siblings ``.<name>.XXXXXXXX.tmp`` that writers of ``target`` create."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.[A-Za-z0-9_]{{8}}\.tmp")
    try:
        names = os.listdir(target.parent)
    except OSError:
        return []
    return [target.parent / n for n in names if pattern.fullmatch(n)]


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary siblings of ``path`` left by dead writers (module rule); the list
    of the files deleted."""
    if fcntl is None:  # pragma: no cover - not POSIX
        return []
    removed = []
    now = time.time()
    for tmp in _temporaries(Path(path)):
        try:
            fd = os.open(tmp, os.O_RDONLY)
        except OSError:
            continue  # renamed or removed meanwhile
        try:
            if now - os.fstat(fd).st_mtime < STALE_AFTER_S:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a live writer holds it
            try:
                os.unlink(tmp)
                removed.append(tmp)
            except FileNotFoundError:
                pass
        finally:
            os.close(fd)  # drops our lock
    return removed


def write_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync it, rename it to ``path``.

    The folder is created if needed; on any error the temporary file is removed and the
    previous ``path`` (if any) is left untouched. Stale temporary siblings of dead writers
    are removed first (module notes).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # held until closed, after the rename
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600: give the usual file mode
            if fcntl is not None:
                os.replace(tmp, target)
        if fcntl is None:  # pragma: no cover - Windows renames closed files only
            os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see ``write_atomic``)."""
    write_atomic(path, lambda fh: fh.write(text.encode()))
