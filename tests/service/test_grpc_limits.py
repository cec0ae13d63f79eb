"""Server limits and the standard services: reflection, message size, job slots."""

from __future__ import annotations

import subprocess

import grpc
import numpy as np
import pytest
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from service.proto import trainer_pb2 as pb
from service.requests import request_from_settings
from service.tensors import to_tensor


def test_reflection_lists_the_trainer_and_health_services(shared_server):
    with grpc.insecure_channel(shared_server.address) as channel:
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {"gradpool.v1.Trainer", "grpc.health.v1.Health"} <= services


def test_message_over_the_size_limit_is_resource_exhausted(start_server):
    server = start_server("--max-message-bytes", "100000")
    x = np.zeros((1000, 50), dtype=np.float32)  # 200 kB of tensor data
    request = pb.PredictRequest(job_id="any", x=to_tensor(x))
    with server.client() as client, pytest.raises(grpc.RpcError) as caught:
        client.stub.Predict(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert server.healthy()


def test_submissions_beyond_the_active_job_limit_are_resource_exhausted(
    start_server,
):
    server = start_server("--max-active-jobs", "1")
    long_job = request_from_settings(
        {"dataset": "digits", "epochs": 500, "batch_size": 8, "workers": 1},
        upload=None,
    )
    with server.client() as client:
        first = client.submit(long_job).job
        with pytest.raises(grpc.RpcError) as caught:
            client.submit(long_job)
        client.cancel(first.job_id)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "limit of 1 pending or running jobs" in caught.value.details()


def test_compressed_upload_that_unpacks_beyond_the_limit_is_refused(
    start_server, tmp_path
):
    server = start_server("--max-tensor-elements", "1000")
    bomb = tmp_path / "zeros.npz"
    # A few hundred bytes on the wire, a million elements once unpacked.
    np.savez_compressed(bomb, x=np.zeros((100_000, 10)), y=np.zeros(100_000, int))
    with server.client() as client, pytest.raises(grpc.RpcError) as caught:
        client.upload(str(bomb))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "(100000, 10)" in caught.value.details()
    assert server.healthy()


def test_watch_streams_beyond_the_limit_are_refused_and_health_still_answers(
    start_server,
):
    server = start_server("--max-watchers", "2")
    long_job = request_from_settings(
        {"dataset": "digits", "epochs": 500, "batch_size": 8, "workers": 1},
        upload=None,
    )
    with server.client() as client:
        job = client.submit(long_job).job
        streams = [client.watch(job.job_id) for _ in range(2)]
        for stream in streams:
            next(stream)
        with pytest.raises(grpc.RpcError) as caught:
            next(client.watch(job.job_id))
        assert server.healthy()
        for stream in streams:
            stream.cancel()
        client.cancel(job.job_id)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "2 watch streams are open" in caught.value.details()


def test_second_server_on_the_same_data_dir_is_refused(
    start_server, gradpool_command, ray_address
):
    first = start_server()
    second = subprocess.run(
        [
            *gradpool_command,
            "serve",
            "--port",
            "0",
            "--metrics-port",
            "0",
            "--data-dir",
            str(first.data_dir),
            "--ray-address",
            ray_address,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 2
    assert "another gradpool serve uses" in second.stderr
    assert first.healthy()
