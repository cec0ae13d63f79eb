"""The client commands against a real server: submit, status, list, watch, ..."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest


def gradpool(command, *arguments, timeout=300):
    return subprocess.run(
        [*command, *arguments], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def finished_job(shared_server, gradpool_command):
    """A job submitted with --wait through the command line."""
    done = gradpool(
        gradpool_command,
        "submit",
        "--server",
        shared_server.address,
        "--dataset",
        "iris",
        "--epochs",
        "3",
        "--standardize",
        "--wait",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_submit_prints_the_job_id_alone_on_standard_output(finished_job):
    lines = finished_job.stdout.splitlines()
    assert len(lines) == 1
    assert len(lines[0]) == 16 and all(c in "0123456789abcdef" for c in lines[0])
    assert "state=SUCCEEDED" in finished_job.stderr


def test_status_shows_the_job_as_json(finished_job, shared_server, gradpool_command):
    job_id = finished_job.stdout.strip()
    status = gradpool(
        gradpool_command, "status", job_id, "--server", shared_server.address
    )
    assert status.returncode == 0, status.stderr
    job = json.loads(status.stdout)
    assert job["job_id"] == job_id
    assert job["state"] == "JOB_STATE_SUCCEEDED"
    assert int(job["metrics"]["epoch"]) == 3


def test_list_includes_the_job_with_its_state(
    finished_job, shared_server, gradpool_command
):
    job_id = finished_job.stdout.strip()
    listed = gradpool(
        gradpool_command,
        "list",
        "--state",
        "succeeded",
        "--server",
        shared_server.address,
    )
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if job_id in line)
    assert "state=SUCCEEDED" in line


def test_weights_and_predict_agree(
    finished_job, shared_server, gradpool_command, tmp_path
):
    job_id = finished_job.stdout.strip()
    weights = tmp_path / "weights.npz"
    saved = gradpool(
        gradpool_command,
        "weights",
        job_id,
        "--output",
        str(weights),
        "--server",
        shared_server.address,
    )
    assert saved.returncode == 0, saved.stderr
    x = np.random.default_rng(0).normal(loc=5, size=(4, 4))
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, x=x)
    outputs = tmp_path / "y_hat.npy"
    predicted = gradpool(
        gradpool_command,
        "predict",
        job_id,
        "--input",
        str(inputs),
        "--output",
        str(outputs),
        "--server",
        shared_server.address,
    )
    assert predicted.returncode == 0, predicted.stderr

    with np.load(weights) as w:
        z1 = x @ w["W1"].T + w["b1"]
        z2 = np.maximum(z1, 0) @ w["W2"].T + w["b2"]
    expected = np.exp(z2 - z2.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(np.load(outputs), expected, rtol=1e-4, atol=1e-6)


def test_cancel_of_a_finished_job_says_why_it_cannot(
    finished_job, shared_server, gradpool_command
):
    job_id = finished_job.stdout.strip()
    cancelled = gradpool(
        gradpool_command, "cancel", job_id, "--server", shared_server.address
    )
    assert cancelled.returncode == 1
    lines = cancelled.stderr.strip().splitlines()
    assert lines == [
        f"gradpool cancel: error: FAILED_PRECONDITION: job_id: job {job_id} "
        "already ended as SUCCEEDED"
    ]


def test_submit_uploads_a_local_file(shared_server, gradpool_command, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 3))
    data = tmp_path / "local.csv"
    np.savetxt(data, np.column_stack([x, x[:, 0] > 0]), delimiter=",", fmt="%.6f")
    done = gradpool(
        gradpool_command,
        "submit",
        "--server",
        shared_server.address,
        "--dataset",
        str(data),
        "--epochs",
        "2",
        "--wait",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "state=SUCCEEDED" in done.stderr


def test_unreachable_server_is_one_clear_line(gradpool_command):
    status = gradpool(gradpool_command, "status", "abc", "--server", "127.0.0.1:1")
    assert status.returncode == 1
    assert status.stderr.strip().splitlines() == [
        "gradpool status: error: cannot reach a server at 127.0.0.1:1; is "
        "gradpool serve running there? (--server HOST:PORT)"
    ]
