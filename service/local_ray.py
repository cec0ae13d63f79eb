"""Connecting to Ray: a given cluster, RAY_ADDRESS, or a private local instance."""

from __future__ import annotations

import logging
import os
import socket

from service.config import ConfigError

# NOTE: Ray picks the address other machines would use to reach this one,
# even for a single-node instance. With cluster support switched off it
# binds every process to 127.0.0.1 instead, which is what a local instance
# on a laptop or in a test should do. Ray reads the switch when it is first
# imported, so it is set before that import.
LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
CONNECT_TIMEOUT = 5.0

logger = logging.getLogger(__name__)


def use_loopback_only() -> None:
    """Make a local Ray instance started by this process listen on loopback."""
    os.environ.setdefault(LOOPBACK_SWITCH, "0")


def check_reachable(address: str) -> None:
    """Fail fast on a host:port that accepts no connection.

    ``ray.init`` retries an unreachable address for minutes without a word;
    "auto" and ray:// addresses are left to Ray.
    """
    host, _, port = address.rpartition(":")
    if address == "auto" or "://" in address or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as error:
        raise ConfigError(
            "ray_address",
            f"nothing answers at {address} ({error.strerror or error}); start "
            "the cluster with ray start --head, or leave the option out to "
            "start a local instance",
        ) from None


def connect_ray(address: str | None, num_workers: int) -> None:
    """Join the given cluster, RAY_ADDRESS, or start a local instance."""
    address = address or os.environ.get("RAY_ADDRESS")
    if not address or address.split(":")[0] in LOOPBACK_HOSTS:
        # A cluster on loopback: this driver must stay on loopback too.
        use_loopback_only()
    import ray

    if address:
        check_reachable(address)
        try:
            ray.init(address=address, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ConfigError(
                "ray_address",
                f"cannot join the Ray cluster at {address!r}: {reason}; check "
                "the address or leave it out to start a local instance",
            ) from None
        return
    # A local instance gets a CPU slot for every worker even when the
    # machine has fewer cores, so a small laptop can still run the job.
    cores = os.cpu_count() or 1
    if num_workers > cores:
        logger.warning(
            "workers=%d cores=%d: workers will share cores and run slower",
            num_workers,
            cores,
        )
    cpus = max(cores, num_workers)
    ray.init(
        address="local",
        num_cpus=cpus,
        include_dashboard=False,
        logging_level=logging.WARNING,
    )
