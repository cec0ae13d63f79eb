"""Atomic file writes: a reader sees the old file or the new one, never half.

The content goes to a temporary file in the target's directory, is flushed
and fsynced, then renamed over the target; the directory is fsynced so the
rename itself survives a crash.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def _read_umask() -> int:
    # os.umask can only be read by setting it; done once, at import, before
    # threads that create files could see the momentary value.
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _read_umask()


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` with a binary file, then move it into place at path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            # mkstemp makes the file private; give it the mode an ordinary
            # new file would get under the current umask.
            os.fchmod(handle.fileno(), 0o666 & ~UMASK)
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
