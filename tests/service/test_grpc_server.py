"""The gRPC service end to end: a real server on 127.0.0.1 and real Ray."""

from __future__ import annotations

import hashlib

import grpc
import numpy as np
import pytest

from service.proto import trainer_pb2 as pb
from service.requests import request_from_settings
from service.tensors import to_tensor
from workers.backprop import predict
from workers.network import NetworkSpec

REL_TOLERANCE = 1e-10
FLOAT32_TOLERANCE = 1e-6


def run_to_end(client, request, request_id=""):
    """Submit, watch to the end, return the final Job and all events."""
    reply = client.submit(request, request_id)
    events = list(client.watch(reply.job.job_id))
    final = events[-1].job
    return final, events


def saved_by_train(run_train, tmp_path, *arguments):
    """Run gradpool train with --save and return the saved arrays."""
    saved = tmp_path / "train.npz"
    run_train("--save", str(saved), *arguments)
    with np.load(saved) as archive:
        return {name: archive[name] for name in archive.files}


def test_submit_watch_weights_and_predict_match_gradpool_train(
    shared_server, run_train, tmp_path
):
    settings = {"dataset": "iris", "epochs": 4, "batch_size": 16, "seed": 5}
    with shared_server.client() as client:
        request = request_from_settings(settings, upload=None)
        final, events = run_to_end(client, request)
        assert final.state == pb.JOB_STATE_SUCCEEDED
        kinds = [event.WhichOneof("event") for event in events]
        assert kinds.count("epoch") == 4
        assert kinds.count("step") == final.total_steps - events[0].job.step
        params, step = client.parameters(final.job_id)
        x = np.random.default_rng(0).normal(size=(7, 4))
        y_hat, predict_step = client.predict(final.job_id, x)

    assert step == predict_step == final.total_steps
    expected = saved_by_train(
        run_train,
        tmp_path,
        "--dataset",
        "iris",
        "--epochs",
        "4",
        "--batch-size",
        "16",
        "--seed",
        "5",
    )
    for name, value in zip(("W1", "b1", "W2", "b2"), params, strict=True):
        np.testing.assert_allclose(value, expected[name], rtol=FLOAT32_TOLERANCE)

    spec = NetworkSpec(inputs=4, hidden=64, outputs=3)
    theta = spec.flatten(params)
    np.testing.assert_allclose(
        y_hat, predict(spec, theta, x.astype(np.float32)), rtol=FLOAT32_TOLERANCE
    )


def test_float64_full_batch_request_with_init_matches_gradpool_train(
    shared_server, run_train, tmp_path
):
    rng = np.random.default_rng(3)
    init = tmp_path / "init.npz"
    np.savez(
        init,
        W1=rng.normal(size=(6, 13)),
        b1=rng.normal(size=6),
        W2=rng.normal(size=(3, 6)),
        b2=rng.normal(size=3),
    )
    settings = {
        "dataset": "wine",
        "dtype": "float64",
        "init": str(init),
        "batch_size": 100_000,
        "shuffle": False,
        "standardize": True,
        "epochs": 10,
        "workers": 3,
        "optimizer": "rmsprop",
        "centered": True,
    }
    with shared_server.client() as client:
        final, _ = run_to_end(client, request_from_settings(settings, upload=None))
        assert final.state == pb.JOB_STATE_SUCCEEDED
        params, _ = client.parameters(final.job_id)

    expected = saved_by_train(
        run_train,
        tmp_path,
        "--dataset",
        "wine",
        "--dtype",
        "float64",
        "--init",
        str(init),
        "--batch-size",
        "100000",
        "--no-shuffle",
        "--standardize",
        "--epochs",
        "10",
        "--workers",
        "3",
        "--optimizer",
        "rmsprop",
        "--centered",
    )
    for name, value in zip(("W1", "b1", "W2", "b2"), params, strict=True):
        error = np.linalg.norm(value - expected[name]) / np.linalg.norm(expected[name])
        assert error < REL_TOLERANCE, name


def test_repeated_request_id_returns_the_same_job(shared_server):
    request = request_from_settings({"dataset": "iris", "epochs": 1}, upload=None)
    with shared_server.client() as client:
        first = client.submit(request, "same-key-1")
        second = client.submit(request, "same-key-1")
    assert first.created and not second.created
    assert first.job.job_id == second.job.job_id


def test_request_id_reused_for_another_request_is_already_exists(shared_server):
    one = request_from_settings({"dataset": "iris", "epochs": 1}, upload=None)
    other = request_from_settings({"dataset": "iris", "epochs": 2}, upload=None)
    with shared_server.client() as client:
        client.submit(one, "same-key-2")
        with pytest.raises(grpc.RpcError) as caught:
            client.submit(other, "same-key-2")
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "request_id" in caught.value.details()


def test_uploaded_data_set_trains_by_id(shared_server, tmp_path):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(120, 3))
    path = tmp_path / "blobs.npz"
    np.savez(path, x=x, y=(x[:, 0] + x[:, 1] > 0).astype(np.int64))
    with shared_server.client() as client:
        uploaded = client.upload(str(path))
        assert (uploaded.num_samples, uploaded.num_features) == (120, 3)
        request = pb.TrainingRequest(
            data=pb.DataSource(dataset_id=uploaded.dataset_id), epochs=2
        )
        final, _ = run_to_end(client, request)
    assert final.state == pb.JOB_STATE_SUCCEEDED
    assert uploaded.dataset_id == hashlib.sha256(path.read_bytes()).hexdigest()


def test_upload_with_wrong_digest_is_refused(shared_server, tmp_path):
    content = b"a,b,y\n1,2,0\n3,4,1\n"

    def messages():
        header = pb.UploadHeader(format="csv", size=len(content), sha256="0" * 64)
        yield pb.UploadDatasetRequest(header=header)
        yield pb.UploadDatasetRequest(chunk=content)

    with shared_server.client() as client, pytest.raises(grpc.RpcError) as caught:
        client.stub.UploadDataset(messages(), timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "header.sha256" in caught.value.details()


def test_inline_arrays_train(shared_server):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(60, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    request = pb.TrainingRequest(
        data=pb.DataSource(inline=pb.InlineData(x=to_tensor(x), y=to_tensor(y))),
        epochs=2,
        workers=1,
    )
    with shared_server.client() as client:
        final, _ = run_to_end(client, request)
    assert final.state == pb.JOB_STATE_SUCCEEDED


def test_list_jobs_pages_through_every_job_newest_first(shared_server):
    request = request_from_settings({"dataset": "iris", "epochs": 1}, upload=None)
    with shared_server.client() as client:
        submitted = [client.submit(request).job.job_id for _ in range(3)]
        listed = [job.job_id for job in client.list(page_size=2)]
    positions = [listed.index(job_id) for job_id in submitted]
    assert positions == sorted(positions, reverse=True)
    assert len(listed) == len(set(listed))


def test_watch_of_a_finished_job_sends_its_final_state_and_ends(shared_server):
    request = request_from_settings({"dataset": "iris", "epochs": 1}, upload=None)
    with shared_server.client() as client:
        final, _ = run_to_end(client, request)
        events = list(client.watch(final.job_id))
    assert len(events) == 1
    assert events[0].job.state == pb.JOB_STATE_SUCCEEDED


def test_unknown_job_is_not_found(shared_server):
    with shared_server.client() as client, pytest.raises(grpc.RpcError) as caught:
        client.get("no-such-job")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "job_id" in caught.value.details()


def test_data_path_outside_the_data_root_is_refused(start_server, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "secret.npz"
    np.savez(outside, x=np.zeros((4, 2)), y=np.zeros(4, dtype=np.int64))
    server = start_server("--data-root", str(root))
    with server.client() as client:
        for path in ("../secret.npz", str(outside)):
            request = pb.TrainingRequest(data=pb.DataSource(path=path))
            with pytest.raises(grpc.RpcError) as caught:
                client.submit(request)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "outside the server's data root" in caught.value.details()


def test_epoch_events_report_throughput_while_the_job_runs(shared_server):
    request = request_from_settings(
        {"dataset": "digits", "epochs": 3, "batch_size": 32}, upload=None
    )
    with shared_server.client() as client:
        _, events = run_to_end(client, request)
    epochs = [e.epoch for e in events if e.WhichOneof("event") == "epoch"]
    assert len(epochs) == 3
    assert all(e.metrics.samples_per_second > 0 for e in epochs)
