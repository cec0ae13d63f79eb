"""The job manager: turns accepted requests into runs and keeps their records.

A job is PENDING until a slot and enough free CPUs are there, then RUNNING
in a driver thread of this process, then SUCCEEDED, FAILED or CANCELLED.
Records live in SQLite and checkpoints on disk, so after a restart, even
one after ``kill -9``, every unfinished job is pending again and resumes
from its last checkpoint. A graceful shutdown checkpoints running jobs and
leaves them pending for the next start.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import ray

from service.config import ConfigError, TrainConfig, build_config
from service.data import DataError
from service.data_dir import lock_data_dir
from service.errors import (
    CapacityError,
    ConflictError,
    NotFoundError,
    PreconditionError,
    UnavailableError,
)
from service.events import Event, EventChannel
from service.job_parameters import job_parameters
from service.job_run import JobRun
from service.job_store import ACTIVE_STATES, TERMINAL_STATES, JobRecord, JobStore
from service.limits import Limits
from service.live_job import LiveJob
from service.metrics import Metrics
from service.prepare import prepare
from service.trainer import check_cluster_fits, total_steps
from workers.network import NetworkSpec, Params

logger = logging.getLogger(__name__)

ALL_STATES = (*ACTIVE_STATES, *TERMINAL_STATES)

# How long CancelJob waits for a running job to reach its next step.
CANCEL_WAIT_SECONDS = 20.0

# How often the scheduler looks again for free CPUs without being woken.
SCHEDULER_POLL_SECONDS = 1.0


class JobManager:
    """Accepts, schedules, runs, cancels and reports jobs."""

    def __init__(
        self,
        data_dir: Path,
        limits: Limits,
        checkpoint_interval: int,
        metrics: Metrics | None = None,
    ) -> None:
        self.limits = limits
        self.metrics = metrics or Metrics()
        self.checkpoint_interval = checkpoint_interval
        self._lock_file = lock_data_dir(data_dir)
        self.store = JobStore(data_dir / "jobs.sqlite3")
        self.jobs_dir = data_dir / "jobs"
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._live: dict[str, LiveJob] = {}
        self._running: set[str] = set()
        self._stopping = False
        self._scheduler = threading.Thread(
            target=self._schedule, name="scheduler", daemon=True
        )
        self.metrics.add_collector(
            "gradpool_jobs", "Jobs by state.", "state", self._jobs_by_state
        )
        self.metrics.add_collector(
            "gradpool_watch_streams",
            "Open WatchJob streams.",
            "",
            lambda: {"": self.active_watchers()},
        )

    # Lifecycle.

    def start(self) -> None:
        """Mark every unfinished job pending again and start scheduling."""
        for record in self.store.in_states(ACTIVE_STATES):
            # Progress restarts from the checkpoint, not from the last
            # epoch recorded before the crash.
            self.store.update(
                record.job_id, state="PENDING", step=record.checkpoint_step
            )
            config = build_config(**record.config)
            self._live[record.job_id] = self._new_live(record.job_id, config, None)
            self._live[record.job_id].step = record.checkpoint_step
            self._live[record.job_id].checkpoint_step = record.checkpoint_step
            logger.info(
                "recovered job=%s from_step=%d", record.job_id, record.checkpoint_step
            )
        self._scheduler.start()

    def shutdown(self, timeout: float = 60.0) -> None:
        """Checkpoint and stop running jobs; they stay pending for next time."""
        with self._lock:
            self._stopping = True
            running = [self._live[job_id] for job_id in self._running]
            for job in running:
                job.stop_reason = job.stop_reason or "shutdown"
            self._wake.notify_all()
        for job in running:
            job.done.wait(timeout)
        self._scheduler.join(timeout)

    def close(self) -> None:
        """Close the job database and free the data directory."""
        self.store.close()
        self._lock_file.close()

    # Requests.

    def submit(
        self, config: TrainConfig, request: bytes, request_id: str | None
    ) -> tuple[JobRecord, bool]:
        """Accept a job, or return the one submitted with the same request_id."""
        if request_id:
            existing = self._existing(request_id, request)
            if existing:
                return existing, False
        plan = prepare(config, self.limits.max_tensor_elements)
        try:
            check_cluster_fits(config.workers)
        except ConfigError as error:
            raise CapacityError("request.workers", str(error)) from None
        with self._lock:
            if self._stopping:
                raise UnavailableError(
                    "request", "the server is shutting down; submit again shortly"
                )
            if len(self._live) >= self.limits.max_active_jobs:
                raise CapacityError(
                    "request",
                    f"the server's limit of {self.limits.max_active_jobs} pending "
                    "or running jobs is reached; wait for one to finish",
                )
            job_id = uuid.uuid4().hex[:16]
            settings = {name: getattr(config, name) for name in config.explicit}
            record = self.store.insert(
                JobRecord(
                    job_id=job_id,
                    request=request,
                    config=settings,
                    state="PENDING",
                    request_id=request_id or None,
                    total_steps=total_steps(plan),
                )
            )
            if record is None:  # the same request_id won a race
                return self._existing(request_id, request), False
            # The plan's data is dropped until the job starts: many pending
            # jobs must not each hold a copy of their data set.
            self._live[job_id] = self._new_live(job_id, config, None)
            self._wake.notify_all()
        logger.info("submitted job=%s workers=%d", job_id, config.workers)
        return record, True

    def get(self, job_id: str) -> JobRecord:
        """A job's record with the live step and metrics of a running job."""
        if not job_id:
            raise DataError("job_id", "is required: give the id SubmitJob returned")
        record = self.store.get(job_id)
        if record is None:
            raise NotFoundError("job_id", f"no job has id {job_id!r}")
        with self._lock:
            live = self._live.get(job_id)
            if live is not None and not record.finished:
                changes = {"step": max(record.step, live.step)}
                if live.metrics:
                    changes["metrics"] = live.metrics
                record = replace(record, **changes)
        return record

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a pending job at once, or stop a running one at a step."""
        record = self.get(job_id)
        if record.finished:
            raise PreconditionError(
                "job_id", f"job {job_id} already ended as {record.state}"
            )
        with self._lock:
            job = self._live.get(job_id)
            if job is None:
                raise PreconditionError("job_id", f"job {job_id} already ended")
            job.stop_reason = "cancel"
            if job_id not in self._running:
                self._finish(job, "CANCELLED")
        # A running job stops at its next step; if that takes long (actors
        # still starting), the reply shows it RUNNING and it ends CANCELLED.
        job.done.wait(CANCEL_WAIT_SECONDS)
        return self.get(job_id)

    def watch(self, job_id: str) -> tuple[JobRecord, Iterator[Event] | None]:
        """The job's record now, and its later events (None if it ended)."""
        with self._lock:
            if self.active_watchers() >= self.limits.max_watchers:
                raise CapacityError(
                    "job_id",
                    f"{self.limits.max_watchers} watch streams are open, the most "
                    "this server keeps; poll GetJob or watch later",
                )
            job = self._live.get(job_id)
            subscription = job.events.subscribe() if job else None
        record = self.get(job_id)
        if subscription is None or record.finished:
            if subscription:
                subscription.close()
            return record, None
        return record, subscription

    def parameters(self, job_id: str) -> tuple[Params, int, NetworkSpec]:
        """Latest weights acting on raw inputs, their step and the spec."""
        record = self.get(job_id)
        with self._lock:
            job = self._live.get(job_id)
            latest = job.latest if job else None
            plan = job.plan if job else None
        return job_parameters(record, latest, plan)

    def active_watchers(self) -> int:
        """Watch streams open across all jobs."""
        with self._lock:
            return sum(job.events.watchers for job in self._live.values())

    def _jobs_by_state(self) -> dict[str, float]:
        counts = dict.fromkeys(ALL_STATES, 0)
        counts.update(self.store.count_by_state())
        return {state.lower(): count for state, count in counts.items()}

    # Scheduling and running.

    def _new_live(self, job_id: str, config: TrainConfig, plan) -> LiveJob:
        return LiveJob(
            job_id=job_id,
            config=config,
            plan=plan,
            checkpoint_path=self.jobs_dir / job_id / "checkpoint.npz",
            events=EventChannel(),
        )

    def _existing(self, request_id: str, request: bytes) -> JobRecord | None:
        existing = self.store.by_request_id(request_id)
        if existing is not None and existing.request != request:
            raise ConflictError(
                "request_id",
                f"{request_id!r} was used for a different request (job "
                f"{existing.job_id}); use a new request_id",
            )
        return existing

    def _schedule(self) -> None:
        while True:
            # Asked outside the lock: a slow cluster must not hold up calls.
            total = ray.cluster_resources().get("CPU", 0)
            with self._lock:
                if self._stopping:
                    return
                self._start_what_fits(total)
                self._wake.wait(SCHEDULER_POLL_SECONDS)
            self.metrics.sweep()

    def _start_what_fits(self, total: float) -> None:
        pending = [
            job for job_id, job in self._live.items() if job_id not in self._running
        ]
        if not pending:
            return
        used = sum(self._live[j].config.workers for j in self._running)
        for job in pending:
            if len(self._running) >= self.limits.max_running_jobs:
                return
            if job.config.workers > total - used or job.stop_reason:
                continue
            used += job.config.workers
            self._running.add(job.job_id)
            job.thread = threading.Thread(
                target=self._run, args=(job,), name=f"job-{job.job_id}", daemon=True
            )
            job.thread.start()

    def _run(self, job: LiveJob) -> None:
        run = JobRun(
            job, self.store, self.metrics, self._lock, self.checkpoint_interval
        )
        state, error = run.execute()
        with self._lock:
            self._running.discard(job.job_id)
            self._finish(job, state, error)
            self._wake.notify_all()

    def _finish(self, job: LiveJob, state: str, error: str = "") -> None:
        """Record the outcome; a job left pending stays known to this process."""
        changes = {"state": state, "error": error, "step": job.step}
        if job.metrics:
            changes["metrics"] = job.metrics
        self.store.update(job.job_id, **changes)
        logger.info("job=%s state=%s step=%d %s", job.job_id, state, job.step, error)
        job.events.publish("job", self.store.get(job.job_id))
        if state != "PENDING" or self._stopping:
            self._live.pop(job.job_id, None)
            job.events.close()
            self.metrics.end_job(job.job_id, failed=state == "FAILED")
        job.done.set()
