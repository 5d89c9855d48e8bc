"""Durable files: written to a temporary file in the same directory, fsynced, then put in place.

:func:`replace_atomically` renames the temporary file over the target: a reader sees the old
file or the new one, never a mix (a tracker's checkpoint, a job's manifest and shard
checkpoints).  :func:`create_once` hard-links it to the target instead, which fails when the
target exists: the first writer wins and later writers keep nothing, so a file once written
never changes (a job's row-group files, written by whichever attempt of a shard finishes the
group first).  :func:`replace_if` replaces a file only while a check made just before the
rename still holds (a row group's file, replaced by a newer job version only over an older
one).  After any of them returns, the file survives a power loss.  A process killed
midway may leave its hidden temporary file (``.<name>.<random>.tmp``) behind; nothing reads
those, and the job removes its own on resume.

One file-mode policy for every file the library writes: a replaced file keeps its mode (a
user who restricted a checkpoint keeps it restricted), a new one gets 0644.  ``mkstemp``
creates files private (0600), but a dataset and its checkpoints are read by other users and
processes (a cluster's workers, a notebook).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from typing import BinaryIO

__all__ = [
    "NEW_FILE_MODE",
    "TEMP_SUFFIX",
    "create_once",
    "fsync_directory",
    "replace_atomically",
    "replace_if",
]

TEMP_SUFFIX = ".tmp"
NEW_FILE_MODE = 0o644
"""Mode of a file that did not exist before (a replaced file keeps its own)."""


def _open_temporary(directory: str, prefix: str, mode: int) -> tuple[int, str]:
    fd, temp = tempfile.mkstemp(prefix=prefix, suffix=TEMP_SUFFIX, dir=directory or ".")
    if hasattr(os, "fchmod"):  # POSIX
        os.fchmod(fd, mode)
    return fd, temp


def _write_and_sync(fd: int, write: Callable[[BinaryIO], object]) -> None:
    with os.fdopen(fd, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


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


def replace_atomically(
    path: str | os.PathLike[str], write: Callable[[BinaryIO], object], *, tag: str = ""
) -> None:
    """Write *path* through ``write(file)`` so that it appears whole or not at all.

    A file already at *path* is replaced and its mode kept; a new file gets 0644.  *tag* goes
    into the temporary file's name (``.<name>.<tag>.<random>.tmp``), to tell whose it is.
    """
    replace_if(path, write, still_wanted=None, tag=tag)


def replace_if(
    path: str | os.PathLike[str],
    write: Callable[[BinaryIO], object],
    *,
    still_wanted: Callable[[], bool] | None,
    tag: str = "",
    sync_directory: bool = True,
) -> bool:
    """Replace *path* with what ``write(file)`` writes, if ``still_wanted()`` holds just before.

    The new content is written to a temporary file and fsynced first; then *still_wanted* is
    asked (None: always) and only if it answers True is the temporary file renamed over
    *path* (the old file disappears in the same atomic step) and the directory fsynced.
    Returns whether the file was replaced.  The check and the rename are two steps: a writer
    that replaces the file between them is overwritten (callers document that window).
    Without *sync_directory* the caller fsyncs the directory itself before it relies on the
    rename surviving a power loss (several renames, one directory fsync).
    """
    directory, name = os.path.split(os.fspath(path))
    try:
        mode = os.stat(path).st_mode & 0o777
    except OSError:
        mode = NEW_FILE_MODE
    fd, temp = _open_temporary(directory, f".{name}.{tag}." if tag else f".{name}.", mode)
    try:
        _write_and_sync(fd, write)
        if still_wanted is not None and not still_wanted():
            os.unlink(temp)
            return False
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    if sync_directory:
        fsync_directory(directory or ".")
    return True


def create_once(
    path: str | os.PathLike[str],
    write: Callable[[BinaryIO], object],
    *,
    tag: str = "",
    sync_directory: bool = True,
) -> bool:
    """Write *path* through ``write(file)`` unless it exists; True when this call created it.

    The content is complete before the name appears (temp file, fsync, hard link), and an
    existing file is never replaced.  On a filesystem without hard links the file is renamed
    into place after checking that it is absent, which leaves a short window in which two
    writers may both succeed (the later one replacing the earlier one, whole).  *tag* goes
    into the temporary file's name (``.<name>.<tag>.<random>.tmp``), to tell whose it is.
    Without *sync_directory* the caller fsyncs the directory (as :func:`replace_if`).
    """
    directory, name = os.path.split(os.fspath(path))
    prefix = f".{name}.{tag}." if tag else f".{name}."
    fd, temp = _open_temporary(directory, prefix, NEW_FILE_MODE)
    try:
        _write_and_sync(fd, write)
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
        except FileNotFoundError:  # the temporary file was removed meanwhile (by a newer writer)
            if os.path.exists(path):
                return False
            raise
        except OSError:  # no hard links here (some network and FUSE filesystems)
            if os.path.exists(path):
                return False
            os.replace(temp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)
    if sync_directory:
        fsync_directory(directory or ".")
    return True
