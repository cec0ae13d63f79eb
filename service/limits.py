"""Limits that protect the service from requests too large to serve."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """What one server accepts; each has a command-line option."""

    max_message_bytes: int = 64 * MIB
    max_tensor_elements: int = 16_000_000
    max_upload_bytes: int = 1024 * MIB
    max_hidden: int = 4096
    max_workers: int = 32
    max_epochs: int = 100_000
    max_active_jobs: int = 64  # pending plus running
    max_running_jobs: int = 4
    # Each open WatchJob stream holds a server thread; the rest are kept for
    # other calls and the health check.
    max_watchers: int = 32
