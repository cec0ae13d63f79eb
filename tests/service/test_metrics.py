"""Metrics: the registry's bookkeeping and the endpoint of a real running server."""

from __future__ import annotations

import socket
import subprocess
import urllib.request

import grpc
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from service.metrics import Metrics
from service.parameter_server import StepStats
from service.proto import trainer_pb2 as pb
from service.requests import request_from_settings
from tests.conftest import require_tool


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    return samples(text)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def value(values, name, **labels) -> float:
    return values[(name, tuple(sorted(labels.items())))]


def step_stats(step: int, loss: float) -> StepStats:
    return StepStats(
        step=step,
        epoch=0,
        loss=loss,
        correct=3,
        count=8,
        grad_norm=2.0,
        update_norm=0.1,
        lr=0.01,
        step_seconds=0.02,
        compute_seconds=(0.01, 0.012),
        wait_seconds=(0.003, 0.004),
        worker_restarts=0,
    )


def test_recorded_steps_appear_under_the_job_label():
    metrics = Metrics(CollectorRegistry())
    metrics.start_job("j1", total_steps=10, workers=2)
    metrics.record_step("j1", step_stats(1, 0.9))
    metrics.record_step("j1", step_stats(2, 0.7))
    values = samples(generate_latest(metrics.registry).decode())

    assert value(values, "gradpool_steps_total", job_id="j1") == 2
    assert value(values, "gradpool_samples_total", job_id="j1") == 16
    assert value(values, "gradpool_train_loss", job_id="j1") == 0.7
    assert value(values, "gradpool_step_duration_seconds_count", job_id="j1") == 2
    assert (
        value(values, "gradpool_worker_compute_seconds_count", job_id="j1", rank="1")
        == 2
    )
    assert value(values, "gradpool_job_running", job_id="j1") == 1


def test_finished_job_series_are_removed_after_the_retention():
    metrics = Metrics(CollectorRegistry(), retention_seconds=0)
    metrics.start_job("gone", total_steps=1, workers=2)
    metrics.record_step("gone", step_stats(1, 0.5))
    metrics.end_job("gone")

    assert metrics.sweep() == ["gone"]
    text = generate_latest(metrics.registry).decode()
    assert 'job_id="gone"' not in text


def test_finished_job_series_stay_within_the_retention():
    metrics = Metrics(CollectorRegistry(), retention_seconds=3600)
    metrics.start_job("kept", total_steps=1, workers=1)
    metrics.end_job("kept")

    assert metrics.sweep() == []
    values = samples(generate_latest(metrics.registry).decode())
    assert value(values, "gradpool_job_running", job_id="kept") == 0


@pytest.fixture(scope="module")
def metered_run(ray_address, gradpool_command, tmp_path_factory):
    """A server with a metrics port, one finished job and scrapes taken during it."""
    from tests.service.server_process import ServerProcess

    port = free_port()
    server = ServerProcess(
        gradpool_command,
        tmp_path_factory.mktemp("metered"),
        ray_address,
        "--metrics-port",
        str(port),
        "--checkpoint-interval",
        "10",
    )
    settings = {"dataset": "digits", "epochs": 6, "batch_size": 32, "workers": 2}
    during = []
    with server.client() as client:
        job = client.submit(request_from_settings(settings, upload=None)).job
        for event in client.watch(job.job_id):
            if event.WhichOneof("event") == "epoch" and len(during) < 2:
                during.append(scrape(port))
            if event.WhichOneof("event") == "job":
                final = event.job
        with pytest.raises(grpc.RpcError):
            client.get("missing-job")
    after = scrape(port)
    yield {"port": port, "job": final, "during": during, "after": after}
    server.terminate()


def test_steps_rise_and_loss_falls_while_a_job_runs(metered_run):
    job = metered_run["job"].job_id
    first, second = metered_run["during"]
    after = metered_run["after"]
    steps = [
        value(v, "gradpool_steps_total", job_id=job) for v in (first, second, after)
    ]
    assert steps[0] < steps[1] < steps[2]
    loss = [value(v, "gradpool_validation_loss", job_id=job) for v in (first, after)]
    assert loss[1] < loss[0]


def test_histogram_counts_match_the_steps(metered_run):
    final = metered_run["job"]
    after = metered_run["after"]
    job = final.job_id
    assert final.state == pb.JOB_STATE_SUCCEEDED
    steps = value(after, "gradpool_steps_total", job_id=job)
    assert steps == final.total_steps
    assert value(after, "gradpool_step_duration_seconds_count", job_id=job) == steps
    assert value(after, "gradpool_staleness_updates_count", job_id=job) == steps
    for rank in ("0", "1"):
        compute = value(
            after, "gradpool_worker_compute_seconds_count", job_id=job, rank=rank
        )
        wait = value(after, "gradpool_worker_wait_seconds_count", job_id=job, rank=rank)
        assert compute == wait == steps


def test_job_figures_have_sensible_values(metered_run):
    final = metered_run["job"]
    after = metered_run["after"]
    job = final.job_id
    assert value(after, "gradpool_samples_total", job_id=job) == 6 * 1438
    assert value(after, "gradpool_epoch", job_id=job) == 6
    assert 0.9 < value(after, "gradpool_validation_accuracy", job_id=job) <= 1.0
    assert value(after, "gradpool_gradient_norm", job_id=job) > 0
    assert value(after, "gradpool_update_norm", job_id=job) > 0
    assert value(after, "gradpool_learning_rate", job_id=job) == pytest.approx(1e-3)
    assert value(after, "gradpool_job_running", job_id=job) == 0
    assert value(after, "gradpool_job_step", job_id=job) == final.total_steps
    assert value(after, "gradpool_worker_restarts_total", job_id=job) == 0
    checkpoints = value(after, "gradpool_checkpoints_total", job_id=job)
    assert checkpoints == final.total_steps // 10 + 1
    assert value(after, "gradpool_checkpoint_duration_seconds_count", job_id=job) == (
        checkpoints
    )


def test_service_figures_count_calls_and_jobs(metered_run):
    after = metered_run["after"]
    ok = value(after, "gradpool_grpc_requests_total", method="SubmitJob", code="OK")
    assert ok == 1
    missing = value(
        after, "gradpool_grpc_requests_total", method="GetJob", code="NOT_FOUND"
    )
    assert missing == 1
    watch = value(
        after, "gradpool_grpc_request_duration_seconds_count", method="WatchJob"
    )
    assert watch == 1
    assert value(after, "gradpool_jobs", state="succeeded") == 1
    assert value(after, "gradpool_jobs", state="failed") == 0
    assert value(after, "gradpool_watch_streams") == 0
    build = [key for key in after if key[0] == "gradpool_build_info"]
    assert len(build) == 1


def test_served_metrics_pass_promtool_check_metrics(metered_run):
    require_tool("promtool")
    url = f"http://127.0.0.1:{metered_run['port']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read()
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
