"""One run of a job in its driver thread: train it and record its progress.

A run ends in the state its job should take next (SUCCEEDED, CANCELLED,
FAILED, or PENDING when it was stopped for a shutdown) and the error shown
to clients. Recording that outcome is left to the job manager, which holds
the lock the outcome must be published under.
"""

from __future__ import annotations

import logging
import threading
import uuid

from service.checkpoints import load_checkpoint, save_checkpoint
from service.data import DataError
from service.job_store import JobStore
from service.live_job import LiveJob, metrics_dict
from service.metrics import Metrics
from service.parameter_server import NonFiniteError, StepStats
from service.prepare import prepare
from service.trainer import Checkpoint, EpochMetrics, total_steps, train

logger = logging.getLogger(__name__)


class JobRun:
    """Trains one job once, keeping its record, metrics and events current."""

    def __init__(
        self,
        job: LiveJob,
        store: JobStore,
        metrics: Metrics,
        lock: threading.RLock,
        checkpoint_interval: int,
    ) -> None:
        self.job = job
        self.store = store
        self.metrics = metrics
        # The job manager's lock: RPC threads read the job's plan under it.
        self._lock = lock
        self.checkpoint_interval = checkpoint_interval

    def execute(self) -> tuple[str, str]:
        """Train until done, stopped or failed; the next state and the error."""
        job = self.job
        job_id = job.job_id
        state, error = "FAILED", ""
        try:
            self._set_state("RUNNING")
            plan = job.plan or prepare(job.config)
            with self._lock:
                job.plan = plan
            self.metrics.start_job(job_id, total_steps(plan), job.config.workers)
            resume = None
            if job.checkpoint_path.exists():
                resume, _, _ = load_checkpoint(job.checkpoint_path)
            result = train(
                plan,
                on_step=self._on_step,
                on_epoch=self._on_epoch,
                resume=resume,
                should_stop=lambda: job.stop_reason is not None,
                checkpoint_interval=(
                    job.config.checkpoint_interval or self.checkpoint_interval
                ),
                on_checkpoint=self._on_checkpoint,
                on_parameters=lambda step, ref: setattr(job, "latest", (step, ref)),
                # Unique per attempt: actors of a stopped attempt may linger
                # for a moment while Ray tears them down.
                name=f"gradpool-{job_id}-{uuid.uuid4().hex[:6]}",
            )
            if not result.stopped:
                state = "SUCCEEDED"
                if result.final is not None:
                    job.metrics = metrics_dict(result.final, result.samples_per_second)
            elif job.stop_reason == "cancel":
                state = "CANCELLED"
            else:
                state = "PENDING"
        except NonFiniteError as failure:
            failure = getattr(failure, "cause", None) or failure
            self.metrics.non_finite.labels(job_id).inc()
            kept = (
                f"the checkpoint of step {job.checkpoint_step} is kept"
                if job.checkpoint_step
                else "no checkpoint had been written yet"
            )
            error = f"{failure}; {kept}; lower the lr or standardise the inputs"
        except DataError as failure:
            error = f"{failure.field}: {failure}"
        except Exception as failure:  # a failed job must not take the server down
            logger.exception("job=%s failed", job_id)
            error = f"{type(failure).__name__}: {failure}"
        return state, error

    def _set_state(self, state: str) -> None:
        self.store.update(self.job.job_id, state=state)
        self.job.events.publish("job", self.store.get(self.job.job_id))

    def _on_step(self, stats: StepStats) -> None:
        job = self.job
        job.step = stats.step
        job.throughput.add(stats.count)
        self.metrics.record_step(job.job_id, stats)
        job.events.publish("step", stats)

    def _on_epoch(self, metrics: EpochMetrics) -> None:
        job = self.job
        job.metrics = metrics_dict(metrics, job.throughput.per_second())
        self.metrics.record_epoch(job.job_id, metrics)
        self.store.update(job.job_id, step=metrics.step, metrics=job.metrics)
        job.events.publish("epoch", {**job.metrics, "step": metrics.step})

    def _on_checkpoint(self, checkpoint: Checkpoint) -> None:
        job = self.job
        seconds = save_checkpoint(
            job.checkpoint_path, checkpoint, job.plan.spec, job.plan.standardizer
        )
        self.metrics.record_checkpoint(job.job_id, seconds)
        job.checkpoint_step = checkpoint.step
        self.store.update(
            job.job_id,
            checkpoint_step=checkpoint.step,
            checkpoint_path=str(job.checkpoint_path),
            step=checkpoint.step,
        )
