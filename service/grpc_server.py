"""The gRPC servicer: translation between messages and the job manager.

Handlers only decode requests, call the manager and encode replies; every
domain error becomes the gRPC status that fits, with a message that names
the field and the fix.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import re
from pathlib import Path

import grpc
import numpy as np

from service.data import DataError
from service.datasets import DatasetStore
from service.errors import UnavailableError, status_name
from service.jobs import JobManager
from service.limits import Limits
from service.messages import (
    STATE_NAMES,
    epoch_event,
    job_message,
    parameters_message,
    step_event,
)
from service.proto import trainer_pb2 as pb
from service.proto import trainer_pb2_grpc as pb_grpc
from service.requests import config_from_request, field_path
from service.tensors import from_tensor, to_tensor
from service.weights import read_weights, write_weights
from workers.backprop import predict
from workers.network import Params

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 1000
# Activations computed at once by Predict, whatever the batch size.
PREDICT_CHUNK_ELEMENTS = 1 << 20
DEFAULT_PAGE_SIZE = 100
MAX_REQUEST_ID = 128
# A page token is the sequence number of a job, which SQLite stores as a
# signed 64-bit INTEGER; 18 decimal digits always fit.
PAGE_TOKEN = re.compile(r"[0-9]{1,18}")
# Status details travel percent-encoded in trailing metadata, which clients
# may refuse beyond 8 KiB; a message that echoes a long input is cut to fit.
MAX_DETAILS_CHARACTERS = 500
# Seconds a watch stream waits for an event before checking its client.
WATCH_POLL_SECONDS = 1.0


def _abort(context: grpc.ServicerContext, error: DataError) -> None:
    code = getattr(grpc.StatusCode, status_name(error))
    context.abort(code, _shortened(f"{error.field}: {error}"))


def _shortened(details: str) -> str:
    """Details cut in the middle, keeping the field and the fix at the ends."""
    if len(details) <= MAX_DETAILS_CHARACTERS:
        return details
    keep = (MAX_DETAILS_CHARACTERS - 5) // 2
    return f"{details[:keep]} ... {details[-keep:]}"


def reports_errors(handler):
    """Turn domain errors raised by a handler into gRPC statuses."""
    if inspect.isgeneratorfunction(handler):

        @functools.wraps(handler)
        def streaming(self, request, context):
            try:
                yield from handler(self, request, context)
            except DataError as error:
                _abort(context, error)

        return streaming

    @functools.wraps(handler)
    def unary(self, request, context):
        try:
            return handler(self, request, context)
        except DataError as error:
            _abort(context, error)

    return unary


def _chunk(message: pb.UploadDatasetRequest) -> bytes:
    if message.WhichOneof("part") != "chunk":
        raise DataError("header", "only the first message may carry a header")
    return message.chunk


class TrainerServicer(pb_grpc.TrainerServicer):
    """Implements gradpool.v1.Trainer on top of a JobManager."""

    def __init__(self, manager: JobManager, datasets: DatasetStore, limits: Limits):
        self.manager = manager
        self.datasets = datasets
        self.limits = limits

    @reports_errors
    def SubmitJob(self, request, context):
        if len(request.request_id) > MAX_REQUEST_ID:
            raise DataError(
                "request_id",
                f"has {len(request.request_id)} characters; at most "
                f"{MAX_REQUEST_ID} are allowed",
            )
        config = config_from_request(request.request, self.limits, self._files)
        stored = pb.TrainingRequest()
        stored.CopyFrom(request.request)
        if stored.data.WhichOneof("source") == "inline":
            # The arrays now live in the dataset store; the job's record
            # names them by id, so Job messages stay small.
            stored.data.dataset_id = Path(config.dataset).stem
        try:
            record, created = self.manager.submit(
                config,
                stored.SerializeToString(deterministic=True),
                request.request_id,
            )
        except DataError as error:
            # Checks of the run plan name TrainConfig settings ("dataset");
            # the client needs the request field that holds each one.
            error.field = field_path(error.field)
            raise
        return pb.SubmitJobResponse(job=job_message(record), created=created)

    @reports_errors
    def GetJob(self, request, context):
        return job_message(self.manager.get(request.job_id))

    @reports_errors
    def ListJobs(self, request, context):
        page_size = request.page_size or DEFAULT_PAGE_SIZE
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise DataError(
                "page_size", f"must be 1 to {MAX_PAGE_SIZE}; got {request.page_size}"
            )
        states = []
        for code in request.states:
            if code not in STATE_NAMES:
                raise DataError("states", f"unknown job state {code}")
            states.append(STATE_NAMES[code])
        before = None
        if request.page_token:
            if not PAGE_TOKEN.fullmatch(request.page_token):
                raise DataError(
                    "page_token", "is not a token from a previous ListJobs reply"
                )
            before = int(request.page_token)
        records = self.manager.store.page(tuple(states), page_size + 1, before)
        reply = pb.ListJobsResponse(
            jobs=[job_message(self.manager.get(r.job_id)) for r in records[:page_size]]
        )
        if len(records) > page_size:
            reply.next_page_token = str(records[page_size - 1].seq)
        return reply

    @reports_errors
    def CancelJob(self, request, context):
        return job_message(self.manager.cancel(request.job_id))

    @reports_errors
    def WatchJob(self, request, context):
        interval = request.step_interval or 1
        if interval < 1:
            raise DataError(
                "step_interval", f"must be at least 1; got {request.step_interval}"
            )
        job_id = request.job_id
        record, events = self.manager.watch(job_id)
        first = pb.JobEvent(job_id=job_id, job=job_message(record))
        if events is None:
            yield first
            return
        # A client that goes away ends its stream at once, not at the next
        # event, so its thread and queue are freed. Both the callback and
        # the try come before the first yield: a client that leaves right
        # after the first event leaves the generator suspended there, and
        # its subscription would otherwise stay open until the job ends.
        context.add_callback(events.close)
        try:
            yield first
            while context.is_active():
                try:
                    event = events.next(WATCH_POLL_SECONDS)
                except StopIteration:
                    # The channel closed before the job ended: the server is
                    # stopping, and the job resumes after its restart.
                    raise UnavailableError(
                        "job_id",
                        f"the server is shutting down; job {job_id} resumes "
                        "when it restarts, watch it again then",
                    ) from None
                if event is None:
                    continue
                if event.kind == "step":
                    if event.payload.step % interval == 0:
                        yield step_event(job_id, event.payload)
                elif event.kind == "epoch":
                    yield epoch_event(job_id, event.payload)
                else:
                    yield pb.JobEvent(job_id=job_id, job=job_message(event.payload))
                    if event.payload.finished:
                        return
        finally:
            events.close()

    @reports_errors
    def GetParameters(self, request, context):
        params, step, _ = self.manager.parameters(request.job_id)
        return pb.GetParametersResponse(
            parameters=parameters_message(params), step=step
        )

    @reports_errors
    def Predict(self, request, context):
        x = from_tensor("x", request.x, self.limits.max_tensor_elements)
        params, step, spec = self.manager.parameters(request.job_id)
        if x.ndim != 2 or x.shape[1] != spec.inputs:
            raise DataError(
                "x",
                f"has shape {list(x.shape)}; the model expects (batch, {spec.inputs})",
            )
        if not np.issubdtype(x.dtype, np.floating):
            raise DataError("x", "must hold finite float32 or float64 values")
        # A float64 value beyond the float32 range of a float32 job would
        # turn into inf here; it is refused like any non-finite input.
        with np.errstate(over="ignore"):
            x = x.astype(spec.dtype)
        if not np.all(np.isfinite(x)):
            raise DataError(
                "x", f"must hold finite values within the range of {spec.dtype}"
            )
        theta = spec.flatten(params)
        # Rows go through in chunks so the hidden layer (B, H) of a large
        # batch never has to exist at once.
        rows = max(1, PREDICT_CHUNK_ELEMENTS // max(spec.hidden, spec.outputs))
        y_hat = np.concatenate(
            [predict(spec, theta, x[i : i + rows]) for i in range(0, len(x), rows)]
            or [np.zeros((0, spec.outputs), spec.dtype)]
        )
        return pb.PredictResponse(y_hat=to_tensor(y_hat), step=step)

    @reports_errors
    def UploadDataset(self, request_iterator, context):
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("part") != "header":
            raise DataError("header", "the first message must carry the header")
        header = first.header
        chunks = (_chunk(message) for message in request_iterator)
        dataset_id, samples, features = self.datasets.save_upload(
            header.name, header.format, header.size, header.sha256, chunks
        )
        logger.info("uploaded dataset=%s samples=%d", dataset_id[:12], samples)
        return pb.UploadDatasetResponse(
            dataset_id=dataset_id, num_samples=samples, num_features=features
        )

    def _files(self, request: pb.TrainingRequest) -> dict[str, str]:
        """Resolve the data source and initial weights to files."""
        data = request.data
        source = data.WhichOneof("source")
        files = {}
        if source == "builtin":
            files["dataset"] = data.builtin
        elif source == "path":
            files["dataset"] = self.datasets.under_root(data.path)
        elif source == "dataset_id":
            files["dataset"] = self.datasets.path_for(data.dataset_id)
        elif source == "inline":
            maximum = self.limits.max_tensor_elements
            x = from_tensor("request.data.inline.x", data.inline.x, maximum)
            y = from_tensor("request.data.inline.y", data.inline.y, maximum)
            files["dataset"] = self.datasets.save_arrays(x, y)
        if request.HasField("init"):
            files["init"] = self._initial_weights(request.init)
        return files

    def _initial_weights(self, init: pb.Parameters) -> str:
        maximum = self.limits.max_tensor_elements
        arrays = [
            from_tensor(f"request.init.{name}", getattr(init, name), maximum)
            for name in ("w1", "b1", "w2", "b2")
        ]
        # Content-addressed like uploads: the same weights, the same file.
        digest = hashlib.sha256()
        for array in arrays:
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
        path = self.datasets.directory / f"init-{digest.hexdigest()}.npz"
        if not path.exists():
            write_weights(str(path), Params(*arrays))
        try:
            read_weights(str(path))
        except DataError as error:
            path.unlink(missing_ok=True)
            raise DataError("request.init", str(error)) from None
        return str(path)
