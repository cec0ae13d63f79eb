"""Server limits and the standard services: reflection, message size, job slots."""

from __future__ import annotations

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
