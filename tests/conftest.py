"""Shared fixtures: one local Ray instance on loopback for the whole session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.local_ray import use_loopback_only

# Before Ray is imported anywhere, so every Ray process binds to 127.0.0.1;
# subprocesses started by tests inherit it.
use_loopback_only()

import ray  # noqa: E402

# Logical CPUs of the shared instance: enough for three workers plus slack,
# whatever the machine has.
RAY_CPUS = 4


@pytest.fixture(scope="session")
def ray_address() -> str:
    """Address of a Ray instance shared by every test of the session."""
    ray.init(
        address="local",
        num_cpus=RAY_CPUS,
        include_dashboard=False,
        logging_level="WARNING",
        # Actors' output would reach whichever test happens to be capturing
        # standard error when Ray forwards it; tests read their own output.
        log_to_driver=False,
    )
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="session")
def gradpool_command() -> list[str]:
    """How to run the installed command line in a subprocess."""
    script = Path(sys.executable).with_name("gradpool")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "service.cli"]


@pytest.fixture
def clean_env() -> dict[str, str]:
    """Environment for subprocesses, without a RAY_ADDRESS from outside."""
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    return env


@pytest.fixture
def start_server(ray_address, gradpool_command, tmp_path_factory):
    """Start ``gradpool serve`` subprocesses; each is stopped at teardown."""
    from tests.service.server_process import ServerProcess

    started = []

    def start(*extra: str, data_dir: Path | None = None, env=None) -> ServerProcess:
        directory = data_dir or tmp_path_factory.mktemp("server")
        server = ServerProcess(
            gradpool_command, directory, ray_address, *extra, env=env
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


@pytest.fixture(scope="module")
def shared_server(ray_address, gradpool_command, tmp_path_factory):
    """One ``gradpool serve`` shared by the tests of a module."""
    from tests.service.server_process import ServerProcess

    server = ServerProcess(
        gradpool_command, tmp_path_factory.mktemp("shared-server"), ray_address
    )
    yield server
    server.terminate()


def require_tool(name: str) -> str:
    """The path of a program the test needs; CI must have it, elsewhere skip."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed; .ci/run installs Debian's prometheus"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def run_train(gradpool_command, ray_address):
    """Run ``gradpool train`` on the shared Ray instance; it must succeed."""

    def run(*arguments: str):
        finished = subprocess.run(
            [
                *gradpool_command,
                "train",
                "--metrics-port",
                "0",
                "--ray-address",
                ray_address,
                *arguments,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert finished.returncode == 0, finished.stderr[-3000:]
        return finished

    return run
