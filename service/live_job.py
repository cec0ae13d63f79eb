"""A job held in memory while it is pending or running, beside its record."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import ray

from service.config import TrainConfig
from service.events import EventChannel
from service.prepare import RunPlan
from service.run_state import EpochMetrics


@dataclass
class LiveJob:
    """An unfinished job held in memory beside its record."""

    job_id: str
    config: TrainConfig
    plan: RunPlan | None
    checkpoint_path: Path
    events: EventChannel
    step: int = 0
    checkpoint_step: int = 0
    metrics: dict | None = None
    stop_reason: str | None = None  # "cancel" or "shutdown"
    thread: threading.Thread | None = None
    latest: tuple[int, ray.ObjectRef] | None = None
    done: threading.Event = field(default_factory=threading.Event)


def metrics_dict(metrics: EpochMetrics, samples_per_second: float) -> dict:
    """Epoch figures as stored in the record and reported to clients."""
    return {
        "epoch": metrics.epoch,
        "train_loss": metrics.train_loss,
        "train_accuracy": metrics.train_accuracy,
        "val_loss": metrics.val_loss,
        "val_accuracy": metrics.val_accuracy,
        "samples_per_second": samples_per_second,
    }
