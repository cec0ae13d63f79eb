"""Domain values -> gRPC messages: jobs, metrics, events and parameters."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from service.job_store import JobRecord
from service.parameter_server import StepStats
from service.proto import trainer_pb2 as pb
from service.tensors import to_tensor
from workers.network import Params

JOB_STATES = {
    "PENDING": pb.JOB_STATE_PENDING,
    "RUNNING": pb.JOB_STATE_RUNNING,
    "SUCCEEDED": pb.JOB_STATE_SUCCEEDED,
    "FAILED": pb.JOB_STATE_FAILED,
    "CANCELLED": pb.JOB_STATE_CANCELLED,
}
STATE_NAMES = {code: name for name, code in JOB_STATES.items()}


def timestamp(seconds: float) -> Timestamp:
    """A protobuf Timestamp from seconds since the epoch."""
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def job_metrics(values: dict | None) -> pb.JobMetrics | None:
    """Stored epoch figures as a JobMetrics message."""
    if not values:
        return None
    optional = {
        name: values[name]
        for name in ("train_accuracy", "val_loss", "val_accuracy")
        if values.get(name) is not None
    }
    return pb.JobMetrics(
        epoch=values["epoch"],
        train_loss=values["train_loss"],
        samples_per_second=values.get("samples_per_second", 0.0),
        **optional,
    )


def job_message(record: JobRecord) -> pb.Job:
    """A job record as the Job message."""
    job = pb.Job(
        job_id=record.job_id,
        request_id=record.request_id or "",
        state=JOB_STATES[record.state],
        step=record.step,
        total_steps=record.total_steps,
        error=record.error,
        checkpoint_step=record.checkpoint_step,
        created_at=timestamp(record.created_at),
        updated_at=timestamp(record.updated_at),
    )
    job.request.ParseFromString(record.request)
    metrics = job_metrics(record.metrics)
    if metrics is not None:
        job.metrics.CopyFrom(metrics)
    return job


def step_event(job_id: str, stats: StepStats) -> pb.JobEvent:
    """One applied step as a JobEvent."""
    step = pb.StepEvent(step=stats.step, epoch=stats.epoch + 1, loss=stats.loss)
    return pb.JobEvent(job_id=job_id, step=step)


def epoch_event(job_id: str, values: dict) -> pb.JobEvent:
    """One finished epoch (its stored figures and its last step) as a JobEvent."""
    epoch = pb.EpochEvent(metrics=job_metrics(values), step=values["step"])
    return pb.JobEvent(job_id=job_id, epoch=epoch)


def parameters_message(params: Params) -> pb.Parameters:
    """W1, b1, W2, b2 as tensors."""
    W1, b1, W2, b2 = params  # noqa: N806
    return pb.Parameters(
        w1=to_tensor(W1), b1=to_tensor(b1), w2=to_tensor(W2), b2=to_tensor(b2)
    )
