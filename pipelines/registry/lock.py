"""An exclusive, non-blocking process lock on a file (``fcntl.flock``).

The kernel drops a ``flock`` when its holder dies, even under ``kill -9``, so a
crashed retrain never leaves a stale lock behind: the next run simply gets it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["LockedError", "exclusive_lock"]


class LockedError(RuntimeError):
    """Another process holds the lock."""


@contextmanager
def exclusive_lock(path: str | Path) -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` for the ``with`` block.

    Parameters
    ----------
    path : path
        Lock file; created (with its folder) if missing, never deleted (deleting
        it would let a third process lock a different inode).

    Raises
    ------
    LockedError
        At once, without waiting, when another process holds the lock; the
        message names the holder's pid when it wrote one.

    Examples
    --------
    >>> with exclusive_lock("mlruns/retrain.lock"):  # doctest: +SKIP
    ...     run_retrain()
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise LockedError(
                f"{path} is locked by another process (pid {holder}); wait for it to finish or retry later"
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock
