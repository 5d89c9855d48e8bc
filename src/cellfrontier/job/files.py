"""Durable file replacement: temp file in the same directory, fsync, rename, directory fsync.

A reader sees the old file or the new one, never a mix; after the call returns the new file
survives a power loss.  A process killed midway may leave its hidden temporary file
(``.<name>.<random>.tmp``) behind; nothing reads those, and the job removes its own on resume.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from typing import BinaryIO

__all__ = ["TEMP_SUFFIX", "fsync_directory", "replace_atomically"]

TEMP_SUFFIX = ".tmp"


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """Make a rename inside *path* durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace_atomically(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> None:
    """Write *path* through ``write(file)`` so that it appears whole or not at all."""
    directory, name = os.path.split(os.fspath(path))
    fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=TEMP_SUFFIX, dir=directory or ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    fsync_directory(directory or ".")
