"""Every Prometheus metric of gradpool, built against one replaceable registry.

Names start with ``gradpool_``, use base units, counters end in ``_total``,
and labels stay low-cardinality: ``job_id``, ``rank`` (a worker),
``method`` and ``code`` (gRPC), ``state`` (a job state). A finished job's
series stay for ``retention_seconds`` (default one hour) so dashboards show
how it ended, then are removed so they do not pile up.
"""

from __future__ import annotations

import contextlib
import logging
import math
import platform
import threading
import time
from collections.abc import Callable
from importlib import metadata

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily

from service.config import ConfigError

logger = logging.getLogger(__name__)

# Seconds: a step of a small model takes milliseconds, a large one seconds.
STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30)
CHECKPOINT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30)
# Updates applied between a worker's read of the parameters and its push.
STALENESS_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64)
DEFAULT_RETENTION_SECONDS = 3600.0


class Metrics:
    """The metrics of one process (a training run or the service)."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
    ) -> None:
        self.registry = registry or CollectorRegistry()
        self.retention_seconds = retention_seconds
        self._ended: dict[str, float] = {}
        self._lock = threading.Lock()
        r = self.registry
        # Not "job": Prometheus sets that label to the scrape job's name.
        job = ["job_id"]
        worker = ["job_id", "rank"]

        self.train_loss = Gauge(
            "gradpool_train_loss",
            "Mean loss of the latest step's global batch.",
            job,
            registry=r,
        )
        self.train_accuracy = Gauge(
            "gradpool_train_accuracy",
            "Training accuracy of the latest epoch.",
            job,
            registry=r,
        )
        self.validation_loss = Gauge(
            "gradpool_validation_loss",
            "Validation loss after the latest epoch.",
            job,
            registry=r,
        )
        self.validation_accuracy = Gauge(
            "gradpool_validation_accuracy",
            "Validation accuracy after the latest epoch.",
            job,
            registry=r,
        )
        self.steps = Counter(
            "gradpool_steps", "Optimizer steps applied.", job, registry=r
        )
        self.samples = Counter(
            "gradpool_samples", "Training samples processed.", job, registry=r
        )
        self.epoch = Gauge("gradpool_epoch", "Epochs finished.", job, registry=r)
        self.step = Gauge(
            "gradpool_job_step",
            "Steps the job has applied in all, counting those before a resume.",
            job,
            registry=r,
        )
        self.running = Gauge(
            "gradpool_job_running",
            "1 while the job trains, else 0.",
            job,
            registry=r,
        )
        self.total_steps = Gauge(
            "gradpool_job_total_steps", "Steps of the whole run.", job, registry=r
        )
        self.last_step_time = Gauge(
            "gradpool_last_step_timestamp_seconds",
            "Unix time of the latest applied step.",
            job,
            registry=r,
        )
        self.step_duration = Histogram(
            "gradpool_step_duration_seconds",
            "Time between consecutive applied steps at the parameter server.",
            job,
            buckets=STEP_BUCKETS,
            registry=r,
        )
        self.worker_compute = Histogram(
            "gradpool_worker_compute_seconds",
            "Time a worker spends on forward and backward passes per step.",
            worker,
            buckets=STEP_BUCKETS,
            registry=r,
        )
        self.worker_wait = Histogram(
            "gradpool_worker_wait_seconds",
            "Time a worker waits for parameters between steps.",
            worker,
            buckets=STEP_BUCKETS,
            registry=r,
        )
        self.gradient_norm = Gauge(
            "gradpool_gradient_norm",
            "L2 norm of the latest mean gradient.",
            job,
            registry=r,
        )
        self.update_norm = Gauge(
            "gradpool_update_norm",
            "L2 norm of the latest parameter update.",
            job,
            registry=r,
        )
        self.learning_rate = Gauge(
            "gradpool_learning_rate",
            "Learning rate of the latest step.",
            job,
            registry=r,
        )
        self.staleness = Histogram(
            "gradpool_staleness_updates",
            "Updates applied between a worker's read and its push "
            "(asynchronous modes; always 0 in sync mode).",
            job,
            buckets=STALENESS_BUCKETS,
            registry=r,
        )
        self.non_finite = Counter(
            "gradpool_non_finite",
            "Steps refused because loss, gradient or update was not finite.",
            job,
            registry=r,
        )
        self.worker_restarts = Counter(
            "gradpool_worker_restarts", "Worker actors restarted.", job, registry=r
        )
        self.checkpoints = Counter(
            "gradpool_checkpoints", "Checkpoints written.", job, registry=r
        )
        self.checkpoint_duration = Histogram(
            "gradpool_checkpoint_duration_seconds",
            "Time to write one checkpoint.",
            job,
            buckets=CHECKPOINT_BUCKETS,
            registry=r,
        )
        self.job_failures = Counter(
            "gradpool_job_failures", "Jobs that ended FAILED.", registry=r
        )
        self.grpc_requests = Counter(
            "gradpool_grpc_requests",
            "gRPC calls by method and status code.",
            ["method", "code"],
            registry=r,
        )
        self.grpc_latency = Histogram(
            "gradpool_grpc_request_duration_seconds",
            "gRPC call duration by method (streams: until the stream ends).",
            ["method"],
            buckets=RPC_BUCKETS,
            registry=r,
        )
        self.build = Info("gradpool_build", "Versions this process runs.", registry=r)
        self.build.info(_versions())
        self._per_job = [
            self.train_loss,
            self.train_accuracy,
            self.validation_loss,
            self.validation_accuracy,
            self.steps,
            self.samples,
            self.epoch,
            self.total_steps,
            self.running,
            self.step,
            self.last_step_time,
            self.step_duration,
            self.gradient_norm,
            self.update_norm,
            self.learning_rate,
            self.staleness,
            self.non_finite,
            self.worker_restarts,
            self.checkpoints,
            self.checkpoint_duration,
        ]
        self._per_worker = [self.worker_compute, self.worker_wait]
        self._ranks: dict[str, int] = {}

    def start_job(self, job: str, total_steps: int, workers: int) -> None:
        """Create a job's series so they exist (at zero) from its start."""
        with self._lock:
            self._ended.pop(job, None)
            self._ranks[job] = workers
        self.total_steps.labels(job).set(total_steps)
        self.running.labels(job).set(1)
        for metric in (
            self.steps,
            self.samples,
            self.non_finite,
            self.worker_restarts,
            self.checkpoints,
        ):
            metric.labels(job)
        for metric in (self.step_duration, self.staleness, self.checkpoint_duration):
            metric.labels(job)
        for rank in range(workers):
            for metric in self._per_worker:
                metric.labels(job, str(rank))

    def end_job(self, job: str, failed: bool = False) -> None:
        """Start the retention clock of a finished job's series."""
        self.running.labels(job).set(0)
        if failed:
            self.job_failures.inc()
        with self._lock:
            self._ended[job] = time.monotonic()

    def sweep(self) -> list[str]:
        """Remove series of jobs that ended longer ago than the retention."""
        now = time.monotonic()
        with self._lock:
            expired = [
                job
                for job, ended in self._ended.items()
                if now - ended >= self.retention_seconds
            ]
            for job in expired:
                del self._ended[job]
        for job in expired:
            self.remove_job(job)
        return expired

    def remove_job(self, job: str) -> None:
        """Drop every series of one job."""
        for metric in self._per_job:
            with contextlib.suppress(KeyError):
                metric.remove(job)
        with self._lock:
            workers = self._ranks.pop(job, 0)
        for rank in range(workers):
            for metric in self._per_worker:
                with contextlib.suppress(KeyError):
                    metric.remove(job, str(rank))

    def record_step(self, job: str, stats) -> None:
        """Account for one applied step (a StepStats)."""
        self.train_loss.labels(job).set(stats.loss)
        self.steps.labels(job).inc()
        self.step.labels(job).set(stats.step)
        self.samples.labels(job).inc(stats.count)
        self.last_step_time.labels(job).set(time.time())
        self.step_duration.labels(job).observe(stats.step_seconds)
        self.gradient_norm.labels(job).set(stats.grad_norm)
        self.update_norm.labels(job).set(stats.update_norm)
        self.learning_rate.labels(job).set(stats.lr)
        self.worker_restarts.labels(job).inc(stats.worker_restarts)
        # Synchronous steps read the parameters of the step just before.
        self.staleness.labels(job).observe(0)
        with self._lock:
            self._ranks[job] = max(self._ranks.get(job, 0), len(stats.compute_seconds))
        for rank, seconds in enumerate(stats.compute_seconds):
            self.worker_compute.labels(job, str(rank)).observe(seconds)
        for rank, seconds in enumerate(stats.wait_seconds):
            self.worker_wait.labels(job, str(rank)).observe(seconds)

    def record_epoch(self, job: str, metrics) -> None:
        """Account for one finished epoch (an EpochMetrics)."""
        self.epoch.labels(job).set(metrics.epoch)
        self.train_accuracy.labels(job).set(finite(metrics.train_accuracy))
        self.validation_loss.labels(job).set(finite(metrics.val_loss))
        self.validation_accuracy.labels(job).set(finite(metrics.val_accuracy))

    def record_checkpoint(self, job: str, seconds: float) -> None:
        """Account for one written checkpoint."""
        self.checkpoints.labels(job).inc()
        self.checkpoint_duration.labels(job).observe(seconds)

    def add_collector(
        self,
        name: str,
        help_text: str,
        label: str,
        values: Callable[[], dict[str, float]],
    ) -> None:
        """A gauge computed at scrape time, one series per key of values()."""
        self.registry.register(_CallbackCollector(name, help_text, label, values))

    def serve(self, host: str, port: int):
        """Serve /metrics over HTTP; returns the server (its port is bound)."""
        try:
            server, _ = start_http_server(port, addr=host, registry=self.registry)
        except OSError as error:
            raise ConfigError(
                "metrics_port",
                f"cannot serve metrics on {host}:{port} ({error.strerror}); "
                "pick another port, or 0 for no metrics endpoint",
            ) from None
        logger.info("metrics endpoint=http://%s:%d/metrics", host, server.server_port)
        return server


class _CallbackCollector:
    def __init__(self, name, help_text, label, values):
        self.name, self.help_text, self.label, self.values = (
            name,
            help_text,
            label,
            values,
        )

    def collect(self):
        family = GaugeMetricFamily(
            self.name, self.help_text, labels=[self.label] if self.label else None
        )
        for key, value in self.values().items():
            family.add_metric([key] if self.label else [], value)
        yield family

    def describe(self):
        return [GaugeMetricFamily(self.name, self.help_text)]


def finite(value: float | None) -> float:
    """Gauges take NaN for "not known"; None becomes NaN."""
    return math.nan if value is None else value


def _versions() -> dict[str, str]:
    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "unknown"

    return {
        "version": version("gradpool"),
        "python": platform.python_version(),
        "ray": version("ray"),
        "numpy": version("numpy"),
    }
