"""``gradpool train``: one training run in the foreground."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

from service.atomic import atomic_write
from service.checkpoints import load_checkpoint, save_checkpoint
from service.cli_options import (
    DEFAULT_METRICS_PORT,
    add_metrics_options,
    add_training_options,
    config_from_args,
)
from service.config import ConfigError
from service.local_ray import connect_ray
from service.metrics import Metrics
from service.parameter_server import NonFiniteError
from service.prepare import RunPlan, prepare
from service.weights import fold_standardizer, write_weights

logger = logging.getLogger(__name__)

EXIT_FAILED = 1
EXIT_STOPPED = 128 + signal.SIGTERM
DEFAULT_CHECKPOINT_INTERVAL = 100
# Process settings that are not part of a run's configuration.
PROCESS_OPTIONS = {"metrics_host", "metrics_port"}


def add_train_command(commands) -> None:
    """Register ``gradpool train``."""
    train = commands.add_parser(
        "train",
        help="run one training job in the foreground",
        description="Train the network on a local Ray instance or a cluster.",
    )
    add_training_options(train)
    output = train.add_argument_group("output")
    output.add_argument(
        "--save",
        default=argparse.SUPPRESS,
        metavar="FILE.npz",
        help="write the final W1, b1, W2, b2 (acting on raw inputs)",
    )
    output.add_argument(
        "--summary",
        default=argparse.SUPPRESS,
        metavar="FILE.json",
        help="write final figures as JSON",
    )
    train.add_argument(
        "--ray-address",
        default=argparse.SUPPRESS,
        metavar="ADDR",
        help="Ray cluster to join, e.g. auto (default: RAY_ADDRESS, else a "
        "local instance)",
    )
    output.add_argument(
        "--checkpoint",
        default=argparse.SUPPRESS,
        metavar="FILE.npz",
        help="keep a checkpoint here, written every --checkpoint-interval steps, "
        "at the end and when stopped by SIGTERM",
    )
    output.add_argument(
        "--checkpoint-interval",
        type=int,
        default=argparse.SUPPRESS,
        metavar="N",
        help=f"steps between checkpoints (default: {DEFAULT_CHECKPOINT_INTERVAL})",
    )
    output.add_argument(
        "--resume",
        action="store_true",
        default=argparse.SUPPRESS,
        help="continue from --checkpoint when that file exists",
    )
    add_metrics_options(train)
    train.set_defaults(handler=run_train)


def check_output_path(field: str, path: str | None) -> None:
    """Refuse an output path that could not be written after training."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise ConfigError(field, f"{path!r} is a directory; give a file name")
    parent = target.parent
    if not parent.is_dir():
        raise ConfigError(
            field, f"folder {str(parent)!r} does not exist; create it first"
        )
    if not os.access(parent, os.W_OK):
        raise ConfigError(field, f"cannot write {path!r}: {parent} is not writable")


def finite_or_null(value: Any) -> Any:
    """JSON has no NaN or infinity: such numbers become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_null(item) for item in value]
    return value


def write_outputs(plan: RunPlan, result, save: str | None, summary: str | None) -> None:
    """Write the final weights and the summary, each atomically."""
    if save:
        params = plan.spec.unflatten(result.theta)
        if plan.standardizer is not None:
            params = fold_standardizer(params, plan.standardizer)
        write_weights(save, type(params)(*(p.astype(plan.spec.dtype) for p in params)))
    if summary:
        final = result.final
        report = {
            "final_train_loss": final.train_loss,
            "final_train_accuracy": final.train_accuracy,
            "val_loss": final.val_loss,
            "val_accuracy": final.val_accuracy,
            "steps": result.steps,
            "epochs": len(result.epochs),
            "wall_seconds": result.wall_seconds,
            "samples_per_second": result.samples_per_second,
            "history": [vars(m) for m in result.epochs],
            "config": plan.config.to_dict(),
            "resolved": {
                "network": dataclasses.asdict(plan.spec),
                "optimizer": dataclasses.asdict(plan.optimizer),
                "train_samples": len(plan.train.x),
                "val_samples": len(plan.val.x) if plan.val else 0,
            },
        }
        text = json.dumps(finite_or_null(report), indent=2, allow_nan=False)
        text = text.encode()
        atomic_write(summary, lambda handle: handle.write(text))


def run_train(args: argparse.Namespace) -> int:
    """``gradpool train``: check everything, train, write the outputs."""
    config = config_from_args(args, ignored=PROCESS_OPTIONS)
    check_output_path("save", config.save)
    check_output_path("summary", config.summary)
    check_output_path("checkpoint", config.checkpoint)
    if config.resume and not config.checkpoint:
        raise ConfigError("resume", "needs --checkpoint FILE to resume from")
    plan = prepare(config)
    resume = read_resume_point(config, plan)
    metrics = serve_metrics(args.metrics_host, args.metrics_port)

    # Ray is imported only after the checks: it takes a second to import,
    # and a local instance must be configured before the import.
    logger.info("starting ray address=%s", config.ray_address or "local")
    connect_ray(config.ray_address, config.workers)
    import ray

    from service.progress import Progress, format_epoch
    from service.trainer import sampler_for, total_steps, train

    job = f"train-{uuid.uuid4().hex[:8]}"
    logger.info("job=%s dataset=%s workers=%d", job, config.dataset, config.workers)
    metrics.start_job(job, total_steps(plan), config.workers)
    progress = Progress(config.epochs, sampler_for(plan).batches_per_epoch)
    stop = StopSignal()

    def on_step(stats) -> None:
        progress.on_step(stats)
        metrics.record_step(job, stats)

    def on_epoch(epoch_metrics) -> None:
        progress.on_epoch(epoch_metrics)
        metrics.record_epoch(job, epoch_metrics)

    def on_checkpoint(checkpoint) -> None:
        if config.checkpoint:
            seconds = save_checkpoint(
                config.checkpoint, checkpoint, plan.spec, plan.standardizer
            )
            metrics.record_checkpoint(job, seconds)

    try:
        result = train(
            plan,
            on_step=on_step,
            on_epoch=on_epoch,
            resume=resume,
            should_stop=stop.is_set,
            checkpoint_interval=(
                config.checkpoint_interval or DEFAULT_CHECKPOINT_INTERVAL
                if config.checkpoint
                else 0
            ),
            on_checkpoint=on_checkpoint,
            name=f"gradpool-{job}",
        )
    except NonFiniteError as error:
        # Ray re-raises the actor's error with its remote traceback in the
        # message; the original exception is its cause.
        cause = getattr(error, "cause", None) or error
        metrics.non_finite.labels(job).inc()
        print(
            f"gradpool train: error: training diverged: {cause}; nothing was "
            f"saved; lower --lr (now {plan.optimizer.lr:g}), add --standardize "
            "or raise --eps",
            file=sys.stderr,
        )
        return EXIT_FAILED
    finally:
        metrics.end_job(job)
        stop.restore()
        progress.close()
        ray.shutdown()

    if result.stopped:
        kept = f"; checkpoint {config.checkpoint}" if config.checkpoint else ""
        print(f"gradpool train: stopped at step {result.steps}{kept}", file=sys.stderr)
        return EXIT_STOPPED
    write_outputs(plan, result, config.save, config.summary)
    final = format_epoch(result.final, config.epochs)
    print(
        f"done {final} wall_seconds={result.wall_seconds:.1f} "
        f"samples_per_second={result.samples_per_second:.0f}"
    )
    return 0


def serve_metrics(host: str, port: int | None) -> Metrics:
    """Metrics of this run, served at host:port unless port is 0.

    Without an explicit port, a default port already taken (by a
    gradpool serve on the same machine, say) only costs the endpoint.
    """
    metrics = Metrics()
    if port == 0:
        return metrics
    try:
        metrics.serve(host, port or DEFAULT_METRICS_PORT)
    except ConfigError:
        if port is not None:
            raise
        logger.warning(
            "metrics port %d is taken; serving no metrics (choose one with "
            "--metrics-port)",
            DEFAULT_METRICS_PORT,
        )
    return metrics


def read_resume_point(config, plan: RunPlan):
    """The checkpoint to continue from with --resume, if there is one."""
    if not (config.resume and Path(config.checkpoint).exists()):
        return None
    try:
        checkpoint, spec, _ = load_checkpoint(config.checkpoint)
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError(
            "checkpoint", f"cannot read {config.checkpoint}: {error}"
        ) from None
    if spec != plan.spec or checkpoint.theta.shape != plan.theta0.shape:
        raise ConfigError(
            "checkpoint",
            f"{config.checkpoint} holds a different network; remove --resume "
            "or point --checkpoint at a new file",
        )
    logger.info("resuming from=%s step=%d", config.checkpoint, checkpoint.step)
    return checkpoint


class StopSignal:
    """SIGTERM (``ray job stop``, an orchestrator) asks the run to stop.

    The run then finishes its queued steps, writes its checkpoint and
    releases its actors instead of dying mid-step.
    """

    def __init__(self) -> None:
        self._set = False
        self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def restore(self) -> None:
        signal.signal(signal.SIGTERM, self._previous)
