"""Progress of a foreground run: a bar per epoch on a terminal, log lines elsewhere."""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm

from service.parameter_server import StepStats
from service.trainer import EpochMetrics

logger = logging.getLogger(__name__)


def format_epoch(metrics: EpochMetrics, epochs: int) -> str:
    """One key=value line with an epoch's figures."""
    parts = [
        f"epoch={metrics.epoch}/{epochs}",
        f"step={metrics.step}",
        f"loss={metrics.train_loss:.4f}",
    ]
    if metrics.train_accuracy is not None:
        parts.append(f"acc={metrics.train_accuracy:.4f}")
    if metrics.val_loss is not None:
        parts.append(f"val_loss={metrics.val_loss:.4f}")
    if metrics.val_accuracy is not None:
        parts.append(f"val_acc={metrics.val_accuracy:.4f}")
    return " ".join(parts)


class Progress:
    """Shows each epoch as a bar that fills step by step, then one summary line.

    Without a terminal on standard error (a log file, ``ray job logs``) the
    bars are left out and only the per-epoch lines are logged.
    """

    def __init__(self, epochs: int, steps_per_epoch: int, enabled: bool | None = None):
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._bar: tqdm | None = None

    def on_step(self, stats: StepStats) -> None:
        """Advance the current epoch's bar."""
        if not self.enabled:
            return
        if self._bar is None:
            self._bar = tqdm(
                total=self.steps_per_epoch,
                desc=f"epoch {stats.epoch + 1}/{self.epochs}",
                unit="step",
                leave=False,
                dynamic_ncols=True,
            )
        self._bar.update(1)
        self._bar.set_postfix(loss=f"{stats.loss:.4f}", refresh=False)

    def on_epoch(self, metrics: EpochMetrics) -> None:
        """Close the epoch's bar and report its figures."""
        self.close()
        logger.info("%s", format_epoch(metrics, self.epochs))

    def close(self) -> None:
        """Remove a bar that is still open."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
