"""Jobs over their whole life: many at once, cancel, crash, restart, watchers.

Each test runs real ``gradpool serve`` processes on 127.0.0.1 against the
session's 4-CPU Ray instance, and waits by polling with a deadline.
"""

from __future__ import annotations

import re
import socket
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
import ray
from prometheus_client.parser import text_string_to_metric_families

from service.proto import trainer_pb2 as pb

# Seconds any one wait may take before the test fails.
WAIT_SECONDS = 90
POLL_SECONDS = 0.02
# Weights of a resumed float64 run against an uninterrupted one.
REL_TOLERANCE = 1e-10
CONCURRENT_CLIENTS = 20
# Watchers dropped one after another: more than the server's 64 stream
# threads, so leaked streams would also show up as RESOURCE_EXHAUSTED.
WATCH_CYCLES = 80
# How long a job that does not fit is observed to stay pending; longer
# than the scheduler's own one-second poll.
PENDING_WINDOW_SECONDS = 2.5
ENDED = (pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED)


def iris_request(**fields) -> pb.TrainingRequest:
    """A request on the bundled iris data (120 training samples)."""
    fields.setdefault("workers", 1)
    return pb.TrainingRequest(data=pb.DataSource(builtin="iris"), **fields)


def long_request(**fields) -> pb.TrainingRequest:
    """A run of 120,000 steps, far longer than any test waits for."""
    return iris_request(epochs=1000, batch_size=1, **fields)


def wait_for(condition, what: str, timeout: float = WAIT_SECONDS):
    """Poll condition until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout} s for {what}")
        time.sleep(POLL_SECONDS)


def job_when(client, job_id: str, predicate, what: str) -> pb.Job:
    """Poll GetJob until predicate(job) holds, and return that job."""

    def check():
        job = client.get(job_id)
        if predicate(job):
            return job
        if job.state in ENDED:
            pytest.fail(
                f"job ended as {pb.JobState.Name(job.state)} before {what}: {job.error}"
            )
        return None

    return wait_for(check, what)


def watch_to_end(client, job_id: str) -> list[pb.JobEvent]:
    """Every event of a watch, which ends when the job does."""
    return list(client.watch(job_id))


def actors_of(job_ids) -> list[str]:
    """Names of live actors that belong to any of the jobs."""
    prefixes = tuple(f"gradpool-{job_id}-" for job_id in job_ids)
    named = ray.util.list_named_actors(all_namespaces=True)
    return [entry["name"] for entry in named if entry["name"].startswith(prefixes)]


def wait_until_actors_gone(job_ids) -> None:
    """Wait for Ray to tear down the jobs' actors (ray.kill is asynchronous)."""
    wait_for(lambda: not actors_of(job_ids), f"the actors of {job_ids} to end")


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def open_watch_streams(metrics_port: int) -> float:
    """The server's gradpool_watch_streams gauge, read from /metrics."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == "gradpool_watch_streams":
            return family.samples[0].value
    raise AssertionError("the server exports no gradpool_watch_streams")


def server_log(server) -> str:
    """Everything a server process logged, readable after it exited."""
    return (server.data_dir / "server.log").read_text(errors="replace")


def step_events(events) -> list[pb.StepEvent]:
    """The step events among a watch's events, in order."""
    return [event.step for event in events if event.WhichOneof("event") == "step"]


def relative_error(value: np.ndarray, expected: np.ndarray) -> float:
    """Norm of the difference relative to the norm of the expected array."""
    return np.linalg.norm(value - expected) / np.linalg.norm(expected)


def test_twenty_concurrent_clients_all_succeed_and_leave_no_actors(shared_server):
    request = iris_request(epochs=2)
    ready = threading.Barrier(CONCURRENT_CLIENTS, timeout=WAIT_SECONDS)

    def submit_and_watch(_) -> tuple[str, list[pb.JobEvent]]:
        with shared_server.client() as client:
            ready.wait()
            job_id = client.submit(request).job.job_id
            return job_id, watch_to_end(client, job_id)

    with ThreadPoolExecutor(CONCURRENT_CLIENTS) as pool:
        outcomes = list(pool.map(submit_and_watch, range(CONCURRENT_CLIENTS)))

    job_ids = [job_id for job_id, _ in outcomes]
    assert len(set(job_ids)) == CONCURRENT_CLIENTS
    for job_id, events in outcomes:
        final = events[-1].job
        assert final.state == pb.JOB_STATE_SUCCEEDED, (job_id, final.error)
        assert final.step == final.total_steps
    wait_until_actors_gone(job_ids)


def test_cancel_stops_a_running_job_and_keeps_its_checkpoint(start_server):
    server = start_server("--checkpoint-interval", "5")
    with server.client() as client:
        job_id = client.submit(long_request()).job.job_id
        running = job_when(
            client,
            job_id,
            lambda job: job.step > 0 and job.checkpoint_step > 0,
            "a step and a checkpoint",
        )
        assert running.state == pb.JOB_STATE_RUNNING
        wait_for(lambda: actors_of([job_id]), "the job's actors to be listed")

        cancelled = client.cancel(job_id)
        assert cancelled.state == pb.JOB_STATE_CANCELLED
        wait_until_actors_gone([job_id])

        stored = client.get(job_id)
        _, step = client.parameters(job_id)

    assert stored.state == pb.JOB_STATE_CANCELLED
    assert stored.checkpoint_step >= running.checkpoint_step > 0
    assert (server.data_dir / "jobs" / job_id / "checkpoint.npz").is_file()
    assert step == stored.checkpoint_step


def test_job_killed_with_sigkill_resumes_from_its_checkpoint_and_ends_exactly(
    start_server,
):
    request = iris_request(
        dtype=pb.DTYPE_FLOAT64, epochs=20, batch_size=8, seed=2, standardize=True
    )
    first = start_server("--checkpoint-interval", "5")
    with first.client() as client:
        job_id = client.submit(request).job.job_id
        before = job_when(
            client,
            job_id,
            lambda job: job.checkpoint_step >= 10,
            "a checkpoint at step 10 or later",
        )
    first.kill()
    assert before.state == pb.JOB_STATE_RUNNING

    second = start_server("--checkpoint-interval", "5", data_dir=first.data_dir)
    with second.client() as client:
        assert job_id in [job.job_id for job in client.list()]
        events = watch_to_end(client, job_id)
        resumed, _ = client.parameters(job_id)

        reference_id = client.submit(request).job.job_id
        reference_final = watch_to_end(client, reference_id)[-1].job
        uninterrupted, _ = client.parameters(reference_id)

    final = events[-1].job
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.error
    assert final.step == final.total_steps
    assert events[0].job.step >= before.checkpoint_step
    steps = step_events(events)
    assert steps[0].step > before.checkpoint_step
    assert steps[-1].step == final.total_steps
    recovered = re.search(
        rf"recovered job={job_id} from_step=(\d+)", server_log(second)
    )
    assert recovered and int(recovered.group(1)) >= before.checkpoint_step

    assert reference_final.state == pb.JOB_STATE_SUCCEEDED
    for name, value, expected in zip(
        ("W1", "b1", "W2", "b2"), resumed, uninterrupted, strict=True
    ):
        assert relative_error(value, expected) < REL_TOLERANCE, name


def test_sigterm_checkpoints_running_jobs_which_resume_on_restart(start_server):
    request = iris_request(epochs=10, batch_size=2)
    first = start_server("--checkpoint-interval", "5")
    with first.client() as client:
        job_id = client.submit(request).job.job_id
        job_when(client, job_id, lambda job: job.step > 0, "a first step")

    assert first.terminate() == 0
    log = server_log(first)
    stopped_at = re.search(rf"job={job_id} state=PENDING step=(\d+)", log)
    assert stopped_at and int(stopped_at.group(1)) > 0
    assert "stopped" in log

    second = start_server("--checkpoint-interval", "5", data_dir=first.data_dir)
    with second.client() as client:
        events = watch_to_end(client, job_id)

    first_job = events[0].job
    assert first_job.state in (pb.JOB_STATE_PENDING, pb.JOB_STATE_RUNNING)
    assert first_job.step >= int(stopped_at.group(1))
    assert first_job.checkpoint_step >= int(stopped_at.group(1))
    final = events[-1].job
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.error
    assert final.step == final.total_steps


def test_job_that_does_not_fit_the_free_cpus_waits_pending(start_server):
    server = start_server("--max-running-jobs", "4")
    with server.client() as client:
        big_id = client.submit(long_request(workers=3)).job.job_id
        job_when(
            client,
            big_id,
            lambda job: job.state == pb.JOB_STATE_RUNNING and job.step > 0,
            "the three-worker job to run",
        )

        small_id = client.submit(iris_request(epochs=2, workers=2)).job.job_id
        deadline = time.monotonic() + PENDING_WINDOW_SECONDS
        while time.monotonic() < deadline:
            waiting = client.get(small_id)
            assert waiting.state == pb.JOB_STATE_PENDING, waiting.error
            time.sleep(POLL_SECONDS)

        assert client.cancel(big_id).state == pb.JOB_STATE_CANCELLED
        final = watch_to_end(client, small_id)[-1].job

    assert final.state == pb.JOB_STATE_SUCCEEDED, final.error


def test_watchers_that_disconnect_free_their_streams(start_server):
    metrics_port = free_port()
    server = start_server("--metrics-port", str(metrics_port))
    with server.client() as client:
        job_id = client.submit(long_request()).job.job_id
        job_when(client, job_id, lambda job: job.step > 0, "a first step")
        for _ in range(WATCH_CYCLES):
            call = client.watch(job_id)
            assert next(call).job.job_id == job_id
            call.cancel()
            with pytest.raises(grpc.RpcError) as caught:
                next(call)
            assert caught.value.code() == grpc.StatusCode.CANCELLED

        wait_for(
            lambda: open_watch_streams(metrics_port) == 0,
            "every dropped watch stream to close",
        )
        assert client.get(job_id).state == pb.JOB_STATE_RUNNING
        client.cancel(job_id)
        later_id = client.submit(iris_request(epochs=2)).job.job_id
        final = watch_to_end(client, later_id)[-1].job

    assert server.healthy()
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.error
