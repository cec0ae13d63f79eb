"""A small Python client of the gradpool.v1.Trainer service.

with TrainerClient("127.0.0.1:50051") as client:
    upload = lambda path: client.upload(path).dataset_id
    request = request_from_settings({"dataset": "iris"}, upload)
    job = client.submit(request).job
    for event in client.watch(job.job_id):
        ...
    params, step = client.parameters(job.job_id)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np

from service.proto import trainer_pb2 as pb
from service.proto import trainer_pb2_grpc as pb_grpc
from service.tensors import from_tensor, to_tensor
from workers.network import Params

UPLOAD_CHUNK_BYTES = 1 << 20
# Decoded replies are trusted up to the message size the channel allows.
REPLY_ELEMENTS = 1 << 40


class TrainerClient:
    """Calls one server; every method raises grpc.RpcError on failure."""

    def __init__(
        self,
        server: str = "127.0.0.1:50051",
        token: str | None = None,
        tls_ca: str | None = None,
        timeout: float = 60.0,
        max_message_bytes: int = 64 << 20,
    ) -> None:
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        if tls_ca:
            credentials = grpc.ssl_channel_credentials(Path(tls_ca).read_bytes())
            self.channel = grpc.secure_channel(server, credentials, options)
        else:
            self.channel = grpc.insecure_channel(server, options)
        self.stub = pb_grpc.TrainerStub(self.channel)
        self.metadata = [("authorization", f"Bearer {token}")] if token else []
        self.timeout = timeout

    def __enter__(self) -> TrainerClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()

    def _call(self, method, request):
        return method(request, timeout=self.timeout, metadata=self.metadata)

    def submit(
        self, request: pb.TrainingRequest, request_id: str = ""
    ) -> pb.SubmitJobResponse:
        """Submit a training request; the reply says whether it is new."""
        message = pb.SubmitJobRequest(request=request, request_id=request_id)
        return self._call(self.stub.SubmitJob, message)

    def get(self, job_id: str) -> pb.Job:
        """One job."""
        return self._call(self.stub.GetJob, pb.GetJobRequest(job_id=job_id))

    def list(
        self, states: tuple[int, ...] = (), page_size: int = 100
    ) -> Iterator[pb.Job]:
        """Every job, newest first, fetched a page at a time."""
        token = ""
        while True:
            reply = self._call(
                self.stub.ListJobs,
                pb.ListJobsRequest(
                    states=states, page_size=page_size, page_token=token
                ),
            )
            yield from reply.jobs
            token = reply.next_page_token
            if not token:
                return

    def cancel(self, job_id: str) -> pb.Job:
        """Cancel a pending or running job."""
        return self._call(self.stub.CancelJob, pb.CancelJobRequest(job_id=job_id))

    def watch(self, job_id: str, step_interval: int = 1) -> Iterator[pb.JobEvent]:
        """Progress events until the job ends (no deadline)."""
        request = pb.WatchJobRequest(job_id=job_id, step_interval=step_interval)
        return self.stub.WatchJob(request, metadata=self.metadata)

    def parameters(self, job_id: str) -> tuple[Params, int]:
        """W1, b1, W2, b2 (acting on raw inputs) and their step."""
        reply = self._call(
            self.stub.GetParameters, pb.GetParametersRequest(job_id=job_id)
        )
        tensors = reply.parameters
        arrays = [
            from_tensor(name, getattr(tensors, name), REPLY_ELEMENTS)
            for name in ("w1", "b1", "w2", "b2")
        ]
        return Params(*arrays), reply.step

    def predict(self, job_id: str, x: np.ndarray) -> tuple[np.ndarray, int]:
        """Network outputs y_hat for inputs x (B, D), and the weights' step."""
        reply = self._call(
            self.stub.Predict, pb.PredictRequest(job_id=job_id, x=to_tensor(x))
        )
        return from_tensor("y_hat", reply.y_hat, REPLY_ELEMENTS), reply.step

    def upload(self, path: str, name: str = "") -> pb.UploadDatasetResponse:
        """Upload an .npz or .csv file in chunks; returns its data set id."""
        file = Path(path)
        content = file.read_bytes()
        header = pb.UploadHeader(
            name=name or file.name,
            format=file.suffix.lstrip(".").lower(),
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
        )

        def messages() -> Iterator[pb.UploadDatasetRequest]:
            yield pb.UploadDatasetRequest(header=header)
            for start in range(0, len(content), UPLOAD_CHUNK_BYTES):
                chunk = content[start : start + UPLOAD_CHUNK_BYTES]
                yield pb.UploadDatasetRequest(chunk=chunk)

        return self.stub.UploadDataset(
            messages(), timeout=self.timeout, metadata=self.metadata
        )
