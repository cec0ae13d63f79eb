"""``gradpool train`` submitted as a Ray job to a head node of its own.

The module starts ``ray start --head --block`` as a subprocess bound to
127.0.0.1, with token authentication and a token made for it, and stops it
by its process id at the end. The session's shared Ray instance is neither
used nor stopped.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
import requests
from ray.job_submission import JobStatus, JobSubmissionClient
from ray.util.state import StateApiClient
from ray.util.state.common import ListApiOptions, StateResource

from service.checkpoints import load_checkpoint
from service.local_ray import LOOPBACK_SWITCH

HEAD_CPUS = 2
HEAD_START_TIMEOUT_SECONDS = 120
HEAD_STOP_TIMEOUT_SECONDS = 60
JOB_TIMEOUT_SECONDS = 180
POLL_SECONDS = 0.5
# Every port the head would otherwise choose itself or take from a fixed
# default that another Ray instance on the machine may hold.
PORT_OPTIONS = (
    "--port",
    "--dashboard-port",
    "--node-manager-port",
    "--object-manager-port",
    "--ray-client-server-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--runtime-env-agent-port",
    "--metrics-export-port",
)
# Logs reach `ray job logs` as they are written.
RUNTIME_ENV = {"env_vars": {"PYTHONUNBUFFERED": "1"}}

# NOTE: Ray's dashboard, which serves the job API, looks up which cloud it
# runs on and reports that usage statistics are disabled when it starts. A
# cluster configuration file in the head's home folder names the provider
# ("local"), so no cloud metadata service is asked, and the report goes to a
# closed port on loopback; everything the head does stays on this machine.
CLUSTER_CONFIG = "provider:\n  type: local\n"
LOOPBACK_REPORT_URL = "http://127.0.0.1:9/"


T = TypeVar("T")


def free_ports(count: int) -> list[int]:
    """Distinct ports on 127.0.0.1 that nothing listens on right now."""
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(probe)
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def wait_for(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll check until it returns something other than None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value is not None:
            return value
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"{what} within {timeout:g} s")


@dataclass
class HeadNode:
    """A running ``ray start --head --block`` and how to reach it."""

    process: subprocess.Popen
    dashboard_url: str
    headers: dict[str, str]
    log_path: Path

    def log(self) -> str:
        """What ``ray start`` printed so far."""
        return self.log_path.read_text(errors="replace")

    def jobs(self) -> JobSubmissionClient:
        """A job client of this head, or an error while it is not ready."""
        if self.process.poll() is not None:
            raise RuntimeError(
                f"ray start exited with {self.process.returncode}:\n{self.log()}"
            )
        return JobSubmissionClient(self.dashboard_url, headers=self.headers)

    def actor_states(self, name_prefix: str) -> dict[str, str]:
        """State of every actor, living or dead, whose name has the prefix."""
        client = StateApiClient(self.dashboard_url, headers=self.headers)
        actors = client.list(
            StateResource.ACTORS,
            options=ListApiOptions(limit=1000),
            raise_on_missing_output=False,
        )
        return {
            actor.name: actor.state
            for actor in actors
            if (actor.name or "").startswith(name_prefix)
        }

    def stop(self) -> None:
        """SIGTERM to ``ray start``, which stops what it started; then SIGKILL."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=HEAD_STOP_TIMEOUT_SECONDS)
        # The group holds only processes of this head: it was started in a
        # session of its own. A group with no members left raises.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def head_ready(head: HeadNode) -> JobSubmissionClient | None:
    """A job client once the head's job server answers, else None."""
    try:
        client = head.jobs()
        client.list_jobs()
    except (ConnectionError, RuntimeError, requests.RequestException):
        if head.process.poll() is not None:
            raise
        return None
    return client


@pytest.fixture(scope="module")
def head_node(tmp_path_factory) -> Iterator[HeadNode]:
    """One Ray head node on loopback for the tests of this module."""
    directory = tmp_path_factory.mktemp("ray-head")
    # Ray's socket paths live under the temp dir and have a length limit,
    # so it gets a short path of its own rather than pytest's.
    temp_dir = tempfile.mkdtemp(prefix="gpray-")
    token = secrets.token_hex(32)
    token_file = directory / "auth_token"
    token_file.touch(mode=0o600)
    token_file.write_text(token)

    ports = dict(zip(PORT_OPTIONS, free_ports(len(PORT_OPTIONS)), strict=True))
    ray_script = Path(sys.executable).with_name("ray")
    command = [
        str(ray_script),
        "start",
        "--head",
        "--block",
        "--node-ip-address",
        "127.0.0.1",
        "--dashboard-host",
        "127.0.0.1",
        "--include-dashboard",
        "true",
        "--num-cpus",
        str(HEAD_CPUS),
        "--temp-dir",
        temp_dir,
        "--disable-usage-stats",
    ]
    for option, port in ports.items():
        command += [option, str(port)]
    home = directory / "home"
    home.mkdir()
    (home / "ray_bootstrap_config.yaml").write_text(CLUSTER_CONFIG)
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    env.update(
        {
            LOOPBACK_SWITCH: "0",
            "HOME": str(home),
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_USAGE_STATS_REPORT_URL": LOOPBACK_REPORT_URL,
            # Jobs and their drivers inherit these from the head's processes.
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(token_file),
        }
    )
    log_path = directory / "ray-start.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    head = HeadNode(
        process=process,
        dashboard_url=f"http://127.0.0.1:{ports['--dashboard-port']}",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
        },
        log_path=log_path,
    )
    try:
        client = wait_for(
            lambda: head_ready(head),
            HEAD_START_TIMEOUT_SECONDS,
            "the head's job server did not answer",
        )
        yield head
        for job in client.list_jobs():
            if not job.status.is_terminal():
                client.stop_job(job.submission_id)
    finally:
        head.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)


def submit_train(
    head: HeadNode, gradpool_command: list[str], *options: str
) -> tuple[JobSubmissionClient, str]:
    """Submit ``gradpool train`` with options; return the client and job id."""
    entrypoint = shlex.join(
        [*gradpool_command, "train", "--workers", "1", "--metrics-port", "0", *options]
    )
    client = head.jobs()
    job_id = client.submit_job(entrypoint=entrypoint, runtime_env=RUNTIME_ENV)
    return client, job_id


def wait_until_terminal(client: JobSubmissionClient, job_id: str) -> JobStatus:
    """The job's final status."""

    def terminal() -> JobStatus | None:
        status = client.get_job_status(job_id)
        return status if status.is_terminal() else None

    return wait_for(terminal, JOB_TIMEOUT_SECONDS, f"job {job_id} did not end")


def test_submitted_job_logs_every_epoch_and_the_summary(head_node, gradpool_command):
    client, job_id = submit_train(
        head_node, gradpool_command, "--dataset", "iris", "--epochs", "3"
    )

    status = wait_until_terminal(client, job_id)

    logs = client.get_job_logs(job_id)
    assert status == JobStatus.SUCCEEDED, logs
    epochs = re.findall(r"INFO \S+: epoch=(\d+)/3 step=\d+ loss=\d", logs)
    assert epochs == ["1", "2", "3"], logs
    assert re.search(r"^done epoch=3/3 step=\d+ loss=\d", logs, re.MULTILINE), logs


def test_stopped_job_keeps_its_checkpoint_and_releases_its_actors(
    head_node, gradpool_command, tmp_path
):
    checkpoint = tmp_path / "ckpt.npz"
    client, job_id = submit_train(
        head_node,
        gradpool_command,
        *("--dataset", "digits", "--epochs", "500"),
        *("--checkpoint", str(checkpoint), "--checkpoint-interval", "20"),
    )

    def first_checkpoint() -> bool | None:
        if client.get_job_status(job_id).is_terminal():
            raise AssertionError(f"job ended early:\n{client.get_job_logs(job_id)}")
        return True if checkpoint.exists() else None

    wait_for(first_checkpoint, JOB_TIMEOUT_SECONDS, "no checkpoint was written")
    client.stop_job(job_id)
    status = wait_until_terminal(client, job_id)

    logs = client.get_job_logs(job_id)
    assert status == JobStatus.STOPPED, logs
    run = re.search(r"job=(train-[0-9a-f]+) ", logs)
    stopped = re.search(r"stopped at step (\d+); checkpoint ", logs)
    assert run and stopped, logs
    prefix = f"gradpool-{run.group(1)}."

    def actors_dead() -> dict[str, str] | None:
        states = head_node.actor_states(prefix)
        return states if set(states.values()) == {"DEAD"} else None

    states = wait_for(actors_dead, JOB_TIMEOUT_SECONDS, "the job's actors lived on")
    assert set(states) == {prefix + "ps", prefix + "worker-0"}
    saved, _, _ = load_checkpoint(checkpoint)
    assert saved.step > 0
    assert saved.step == int(stopped.group(1))
