"""The state of a run between steps: epoch figures, running tallies, checkpoints.

Kept free of Ray so that checkpoint files can be read and written by
processes that never join a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workers.network import Array


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
class EpochTally:
    """Running sums over the steps of the current epoch."""

    loss_sum: float = 0.0
    correct: int = 0
    count: int = 0


@dataclass
class Checkpoint:
    """Everything a run needs to continue exactly where it stopped.

    The sampler's position is the step count: step s is batch s mod the
    batches per epoch of epoch s div the batches per epoch.
    """

    step: int
    theta: Array  # (P,)
    optimizer_state: dict
    tally: EpochTally = field(default_factory=EpochTally)
    history: list[EpochMetrics] = field(default_factory=list)
