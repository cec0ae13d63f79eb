"""The driver loop of a synchronous data-parallel run on Ray.

The driver never waits for a step before submitting the next: the object
reference of the parameters returned by the server's update goes straight
into every worker's next call, so Ray chains the steps by itself. The driver
only keeps at most ``MAX_STEPS_IN_FLIGHT`` steps queued and reads their
statistics, evaluations and snapshots in submission order as they complete.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import ray

from service.config import ConfigError
from service.parameter_server import ParameterServer, StepStats
from service.prepare import RunPlan
from service.run_state import Checkpoint, EpochMetrics, EpochTally
from workers.network import Array
from workers.sampler import BatchSampler
from workers.worker import Worker

logger = logging.getLogger(__name__)

# Steps queued ahead of the oldest unread one: enough to keep every actor
# busy across the driver's bookkeeping, few enough to stop promptly.
MAX_STEPS_IN_FLIGHT = 4

# A worker holds no state of its own beyond the sampler position it is
# given with each call, so Ray may restart it and retry its call.
WORKER_RESTARTS = 3

# How long a failed run waits for the errors of its queued steps.
FAILURE_DRAIN_SECONDS = 10

# How long workers may take to be placed and started before the run gives up.
ACTOR_START_TIMEOUT_SECONDS = 300


@dataclass
class TrainResult:
    """Final parameters and figures of a run that ended or was stopped."""

    checkpoint: Checkpoint
    epochs: list[EpochMetrics]
    wall_seconds: float
    samples_per_second: float
    stopped: bool = False

    @property
    def theta(self) -> Array:
        """The final flat parameters."""
        return self.checkpoint.theta

    @property
    def steps(self) -> int:
        """Steps applied in all, counting those before a resume."""
        return self.checkpoint.step

    @property
    def final(self) -> EpochMetrics | None:
        """Metrics of the last finished epoch."""
        return self.epochs[-1] if self.epochs else None


StepCallback = Callable[[StepStats], None]
EpochCallback = Callable[[EpochMetrics], None]
CheckpointCallback = Callable[[Checkpoint], None]
# Receives the step and the object reference of the parameters after it.
ParametersCallback = Callable[[int, "ray.ObjectRef"], None]


def check_cluster_fits(num_workers: int) -> None:
    """Refuse a run whose workers cannot all be placed on the cluster."""
    cpus = ray.cluster_resources().get("CPU", 0)
    if num_workers > cpus:
        raise ConfigError(
            "workers",
            f"{num_workers} workers need {num_workers} CPUs, but the Ray "
            f"cluster has {cpus:g}; ask for fewer workers or add nodes",
        )


def sampler_for(plan: RunPlan) -> BatchSampler:
    """The batch sampler of a run."""
    config = plan.config
    return BatchSampler(
        len(plan.train.x), config.batch_size, config.seed, config.shuffle
    )


def total_steps(plan: RunPlan) -> int:
    """Steps of the whole run."""
    return plan.config.epochs * sampler_for(plan).batches_per_epoch


def train(
    plan: RunPlan,
    on_step: StepCallback | None = None,
    on_epoch: EpochCallback | None = None,
    resume: Checkpoint | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint_interval: int = 0,
    on_checkpoint: CheckpointCallback | None = None,
    on_parameters: ParametersCallback | None = None,
    name: str = "",
) -> TrainResult:
    """Run plan on the connected Ray cluster until it ends or should_stop().

    With ``resume`` the run continues from that checkpoint. Every
    ``checkpoint_interval`` steps (0: never) and once at the end,
    ``on_checkpoint`` receives a snapshot taken between two steps.
    ``on_parameters`` learns of every applied step's parameters, so that a
    caller can serve the latest weights without stopping the run. A
    ``name`` names the actors (``NAME.ps``, ``NAME.worker-RANK``) so that
    operators can find them in Ray's tools.
    """
    config = plan.config
    num_workers = config.workers
    check_cluster_fits(num_workers)
    sampler = sampler_for(plan)
    batches = sampler.batches_per_epoch
    has_labels = plan.train.has_labels
    start = resume or Checkpoint(0, plan.theta0, None)

    # Start-up: data into the object store once, then the actors.
    started = time.perf_counter()
    x_ref, y_ref = ray.put(plan.train.x), ray.put(plan.train.y)
    val = plan.val
    x_val_ref = ray.put(val.x) if val else None
    y_val_ref = ray.put(val.y) if val else None
    actors = []
    pending: deque = deque()
    try:
        server = (
            ray.remote(ParameterServer)
            .options(num_cpus=0, max_concurrency=1, **_named(name, "ps"))
            .remote(
                plan.spec,
                start.theta,
                plan.optimizer,
                start.optimizer_state,
                start.step,
            )
        )
        actors.append(server)
        workers = []
        for rank in range(num_workers):
            worker = (
                ray.remote(Worker)
                .options(
                    num_cpus=1,
                    max_restarts=WORKER_RESTARTS,
                    max_task_retries=WORKER_RESTARTS,
                    **_named(name, f"worker-{rank}"),
                )
                .remote(
                    plan.spec,
                    rank,
                    num_workers,
                    sampler,
                    [x_ref, y_ref, x_val_ref, y_val_ref],
                )
            )
            workers.append(worker)
            actors.append(worker)
        apply = server.apply.options(num_returns=2)

        ready, _ = ray.wait(
            [w.ping.remote() for w in workers],
            num_returns=num_workers,
            timeout=ACTOR_START_TIMEOUT_SECONDS,
        )
        if len(ready) < num_workers:
            raise ConfigError(
                "workers",
                f"only {len(ready)} of {num_workers} workers started within "
                f"{ACTOR_START_TIMEOUT_SECONDS} s; the cluster's CPUs are taken "
                "by other work",
            )
        logger.info(
            "started workers=%d params=%d train_samples=%d steps_per_epoch=%d "
            "from_step=%d",
            num_workers,
            plan.spec.num_parameters,
            len(plan.train.x),
            batches,
            start.step,
        )
        progress = _Progress(
            start, has_labels, on_step, on_epoch, on_checkpoint, on_parameters
        )
        theta_ref = ray.put(start.theta)
        stopped = False
        for step in range(start.step, total_steps(plan)):
            if should_stop is not None and should_stop():
                stopped = True
                break
            epoch, batch = divmod(step, batches)
            results = [w.compute.remote(theta_ref, epoch, batch) for w in workers]
            theta_ref, stats_ref = apply.remote(epoch, *results)
            pending.append(("step", (stats_ref, theta_ref)))
            if batch == batches - 1:
                evaluations = [w.evaluate.remote(theta_ref) for w in workers]
                pending.append(("epoch", evaluations))
            if checkpoint_interval and (step + 1) % checkpoint_interval == 0:
                pending.append(("checkpoint", server.snapshot.remote()))
            while progress.last_step < step + 1 - MAX_STEPS_IN_FLIGHT:
                progress.settle(*pending.popleft())
        pending.append(("checkpoint", server.snapshot.remote()))
        while pending:
            progress.settle(*pending.popleft())

        finished = time.perf_counter()
        return TrainResult(
            checkpoint=progress.last_checkpoint,
            epochs=progress.history,
            wall_seconds=finished - started,
            samples_per_second=progress.samples_per_second(finished),
            stopped=stopped,
        )
    except Exception:
        _collect_failures(pending)
        raise
    finally:
        for actor in actors:
            ray.kill(actor)


def _collect_failures(pending: deque) -> None:
    """Read the errors of steps queued behind a failed one.

    They fail as soon as their input does; read, they are not logged again
    by Ray as unhandled errors on top of the one the caller reports.
    """
    refs = []
    for _, item in pending:
        refs.extend(item if isinstance(item, (list, tuple)) else [item])
    if not refs:
        return
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=FAILURE_DRAIN_SECONDS)
    for ref in ready:
        with contextlib.suppress(Exception):
            ray.get(ref)


def _named(name: str, role: str) -> dict[str, str]:
    return {"name": f"{name}.{role}"} if name else {}


class _Progress:
    """Reads completed steps, evaluations and snapshots in submission order."""

    def __init__(
        self,
        start: Checkpoint,
        has_labels: bool,
        on_step: StepCallback | None,
        on_epoch: EpochCallback | None,
        on_checkpoint: CheckpointCallback | None,
        on_parameters: ParametersCallback | None,
    ) -> None:
        self.has_labels = has_labels
        self.on_step, self.on_epoch = on_step, on_epoch
        self.on_checkpoint, self.on_parameters = on_checkpoint, on_parameters
        self.tally = EpochTally(**vars(start.tally))
        self.history = list(start.history)
        self.last_step = start.step
        self.last_checkpoint = start
        self.first_step_done: float | None = None
        self.samples_after_first = 0

    def settle(self, kind: str, ref) -> None:
        """Wait for one pending item and account for it."""
        if kind == "step":
            stats_ref, theta_ref = ref
            stats = ray.get(stats_ref)
            self._step(stats)
            if self.on_parameters:
                self.on_parameters(stats.step, theta_ref)
        elif kind == "epoch":
            self._epoch(ray.get(ref))
        else:
            step, theta, optimizer_state = ray.get(ref)
            checkpoint = Checkpoint(
                step=step,
                theta=np.array(theta),
                optimizer_state=optimizer_state,
                tally=EpochTally(**vars(self.tally)),
                history=list(self.history),
            )
            self.last_checkpoint = checkpoint
            if self.on_checkpoint:
                self.on_checkpoint(checkpoint)

    def samples_per_second(self, now: float) -> float:
        """Training throughput after the first step (start-up excluded)."""
        if self.first_step_done is None or now <= self.first_step_done:
            return 0.0
        return self.samples_after_first / (now - self.first_step_done)

    def _step(self, stats: StepStats) -> None:
        if self.first_step_done is None:
            self.first_step_done = time.perf_counter()
        else:
            self.samples_after_first += stats.count
        self.last_step = stats.step
        self.tally.loss_sum += stats.loss * stats.count
        self.tally.correct += stats.correct
        self.tally.count += stats.count
        if self.on_step:
            self.on_step(stats)

    def _epoch(self, evaluations: list) -> None:
        count = sum(e.count for e in evaluations)
        val_loss = val_accuracy = None
        if count:
            val_loss = math.fsum(e.loss_sum for e in evaluations) / count
            if self.has_labels:
                val_accuracy = sum(e.correct for e in evaluations) / count
        tally = self.tally
        metrics = EpochMetrics(
            epoch=len(self.history) + 1,
            step=self.last_step,
            train_loss=tally.loss_sum / max(tally.count, 1),
            train_accuracy=(
                tally.correct / max(tally.count, 1) if self.has_labels else None
            ),
            val_loss=val_loss,
            val_accuracy=val_accuracy,
        )
        self.history.append(metrics)
        self.tally = EpochTally()
        if self.on_epoch:
            self.on_epoch(metrics)
