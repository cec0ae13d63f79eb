"""Exclusive use of a data folder by one server process."""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import TextIO

from service.config import ConfigError


def lock_data_dir(data_dir: Path) -> TextIO:
    """Hold an exclusive lock on data_dir for this process's lifetime.

    Two servers on one data directory would both resume its jobs and write
    the same checkpoints.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / "lock", "w")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(
            "data_dir",
            f"another gradpool serve uses {data_dir}; stop it or choose "
            "another --data-dir",
        ) from None
    return handle
