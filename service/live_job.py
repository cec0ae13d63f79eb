"""A job held in memory while it is pending or running, beside its record."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import ray

from service.config import TrainConfig
from service.events import EventChannel
from service.prepare import RunPlan
from service.run_state import EpochMetrics


class Throughput:
    """Samples per second since the first step this process saw.

    The first step is left out, as it includes the workers' start-up.
    """

    def __init__(self) -> None:
        self._first: float | None = None
        self._samples = 0

    def add(self, samples: int) -> None:
        """Count one applied step of ``samples`` samples."""
        if self._first is None:
            self._first = time.perf_counter()
        else:
            self._samples += samples

    def per_second(self) -> float:
        """The rate so far; 0 before a second step."""
        if self._first is None:
            return 0.0
        elapsed = time.perf_counter() - self._first
        return self._samples / elapsed if elapsed > 0 else 0.0


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
    throughput: Throughput = field(default_factory=Throughput)


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
