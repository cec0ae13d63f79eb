"""The driver loop of a synchronous data-parallel run on Ray.

The driver never waits for a step before submitting the next: the object
reference of the parameters returned by the server's update goes straight
into every worker's next call, so Ray chains the steps by itself. The driver
only keeps at most ``MAX_STEPS_IN_FLIGHT`` steps queued and reads their
statistics as they complete.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import ray

from service.config import ConfigError
from service.parameter_server import ParameterServer, StepStats
from service.prepare import RunPlan
from workers.network import Array
from workers.sampler import BatchSampler
from workers.worker import Worker

logger = logging.getLogger(__name__)

# Steps queued ahead of the slowest unread one: enough to keep every actor
# busy across the driver's bookkeeping, few enough to stop promptly.
MAX_STEPS_IN_FLIGHT = 4


@dataclass(frozen=True)
class EpochMetrics:
    """Training and validation figures of one finished epoch."""

    epoch: int  # counted from 1
    step: int
    train_loss: float  # sample-weighted mean of the epoch's batch losses
    train_accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None


@dataclass
class TrainResult:
    """Final parameters and figures of a finished run."""

    theta: Array
    steps: int
    epochs: list[EpochMetrics]
    wall_seconds: float
    samples_per_second: float
    optimizer_state: dict = field(default_factory=dict)

    @property
    def final(self) -> EpochMetrics:
        """Metrics of the last epoch."""
        return self.epochs[-1]


@dataclass
class _EpochTally:
    loss_sum: float = 0.0
    correct: int = 0
    count: int = 0


StepCallback = Callable[[StepStats], None]
EpochCallback = Callable[[EpochMetrics], None]


def check_cluster_fits(num_workers: int) -> None:
    """Refuse a run whose workers cannot all be placed on the cluster."""
    cpus = ray.cluster_resources().get("CPU", 0)
    if num_workers > cpus:
        raise ConfigError(
            "workers",
            f"{num_workers} workers need {num_workers} CPUs, but the Ray "
            f"cluster has {cpus:g}; lower --workers or add nodes",
        )


def train(
    plan: RunPlan,
    on_step: StepCallback | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Run plan to the end on the connected Ray cluster and return the result."""
    config = plan.config
    num_workers = config.workers
    check_cluster_fits(num_workers)
    sampler = BatchSampler(
        len(plan.train.x), config.batch_size, config.seed, config.shuffle
    )
    has_labels = plan.train.has_labels

    # Start-up: data into the object store once, then the actors.
    started = time.perf_counter()
    x_ref, y_ref = ray.put(plan.train.x), ray.put(plan.train.y)
    val = plan.val
    x_val_ref = ray.put(val.x) if val else None
    y_val_ref = ray.put(val.y) if val else None
    server = (
        ray.remote(ParameterServer)
        .options(num_cpus=0)
        .remote(plan.spec, plan.theta0, plan.optimizer)
    )
    worker_class = ray.remote(Worker).options(num_cpus=1)
    workers = [
        worker_class.remote(
            plan.spec, rank, num_workers, sampler, x_ref, y_ref, x_val_ref, y_val_ref
        )
        for rank in range(num_workers)
    ]
    apply = server.apply.options(num_returns=2)

    try:
        ray.get([w.ping.remote() for w in workers])
        logger.info(
            "started workers=%d params=%d train_samples=%d steps_per_epoch=%d",
            num_workers,
            plan.spec.num_parameters,
            len(plan.train.x),
            sampler.batches_per_epoch,
        )

        theta_ref = ray.put(plan.theta0)
        pending: deque = deque()
        epochs: list[EpochMetrics] = []
        tally = _EpochTally()
        first_step_done = None
        samples_after_first = 0

        def settle(item) -> None:
            nonlocal tally, first_step_done, samples_after_first
            if item[0] == "step":
                stats: StepStats = ray.get(item[1])
                if first_step_done is None:
                    first_step_done = time.perf_counter()
                else:
                    samples_after_first += stats.count
                tally.loss_sum += stats.loss * stats.count
                tally.correct += stats.correct
                tally.count += stats.count
                if on_step:
                    on_step(stats)
                return
            _, epoch, step, eval_refs = item
            metrics = _epoch_metrics(epoch, step, tally, ray.get(eval_refs), has_labels)
            epochs.append(metrics)
            tally = _EpochTally()
            if on_epoch:
                on_epoch(metrics)

        step = 0
        for epoch in range(config.epochs):
            for batch in range(sampler.batches_per_epoch):
                results = [w.compute.remote(theta_ref, epoch, batch) for w in workers]
                theta_ref, stats_ref = apply.remote(epoch, *results)
                step += 1
                pending.append(("step", stats_ref))
                while len(pending) > MAX_STEPS_IN_FLIGHT:
                    settle(pending.popleft())
            eval_refs = [w.evaluate.remote(theta_ref) for w in workers]
            pending.append(("epoch", epoch + 1, step, eval_refs))
        while pending:
            settle(pending.popleft())

        theta = ray.get(theta_ref)
        finished = time.perf_counter()
        steady = finished - (first_step_done or finished)
        return TrainResult(
            theta=np.array(theta),
            steps=step,
            epochs=epochs,
            wall_seconds=finished - started,
            samples_per_second=samples_after_first / steady if steady > 0 else 0.0,
            optimizer_state=ray.get(server.optimizer_state.remote()),
        )
    finally:
        for actor in [server, *workers]:
            ray.kill(actor)


def _epoch_metrics(
    epoch: int, step: int, tally: _EpochTally, evaluations: list, has_labels: bool
) -> EpochMetrics:
    count = sum(e.count for e in evaluations)
    val_loss = val_accuracy = None
    if count:
        val_loss = math.fsum(e.loss_sum for e in evaluations) / count
        if has_labels:
            val_accuracy = sum(e.correct for e in evaluations) / count
    return EpochMetrics(
        epoch=epoch,
        step=step,
        train_loss=tally.loss_sum / max(tally.count, 1),
        train_accuracy=tally.correct / max(tally.count, 1) if has_labels else None,
        val_loss=val_loss,
        val_accuracy=val_accuracy,
    )
