"""The parameter server: owns the flat parameters and the optimizer.

Each synchronous step it receives every worker's sums, divides by the total
sample count (the exact global mean even for uneven slices), applies the
optimizer in place and returns the new parameters, which Ray stores once in
the object store for every worker's next call.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from service.optimizers import OptimizerConfig, make_optimizer
from workers.backprop import BatchResult
from workers.network import Array, NetworkSpec


class NonFiniteError(ArithmeticError):
    """A step produced a loss, gradient or update that is nan or infinite."""

    def __init__(self, step: int, what: str) -> None:
        super().__init__(f"{what} became non-finite at step {step}")
        self.step = step
        self.what = what

    def __reduce__(self):
        # Keep the constructor arguments when Ray pickles the error.
        return (type(self), (self.step, self.what))


@dataclass(frozen=True)
class StepStats:
    """What the driver learns about one applied step."""

    step: int
    epoch: int
    loss: float  # mean over the global batch
    correct: int
    count: int
    grad_norm: float
    update_norm: float
    lr: float
    step_seconds: float  # since the previous applied step (or start)
    compute_seconds: tuple[float, ...] = ()  # by worker rank
    wait_seconds: tuple[float, ...] = ()
    worker_restarts: int = 0


class ParameterServer:
    """Holds theta (P,) and the optimizer; applies averaged gradients."""

    def __init__(
        self,
        spec: NetworkSpec,
        theta: Array,
        optimizer: OptimizerConfig,
        optimizer_state: dict | None = None,
        step: int = 0,
    ) -> None:
        self.spec = spec
        self.theta = np.array(theta, dtype=spec.dtype)  # owned, writable copy
        self.optimizer = make_optimizer(optimizer, len(self.theta), spec.dtype)
        if optimizer_state is not None:
            self.optimizer.load_state_dict(optimizer_state)
        self.step = step
        self._last_applied = time.perf_counter()

    def apply(self, epoch: int, *results: BatchResult) -> tuple[Array, StepStats]:
        """Average the workers' sums, update theta, return it and the stats.

        Raises NonFiniteError without touching theta if the loss or the
        gradient is not finite, so the last good parameters survive.
        """
        step = self.step + 1
        count = sum(r.count for r in results)
        loss_sum = math.fsum(r.loss_sum for r in results)
        g = results[0].grad_sum.copy()  # (P,)
        for result in results[1:]:
            g += result.grad_sum
        g /= max(count, 1)

        loss = loss_sum / max(count, 1)
        if not math.isfinite(loss):
            raise NonFiniteError(step, "loss")
        grad_norm = float(np.linalg.norm(g))
        if not math.isfinite(grad_norm):
            raise NonFiniteError(step, "gradient")

        before = self.theta.copy()
        # Non-finite results are detected just below and rolled back, so
        # numpy's warnings about them would only be noise in the logs.
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            self.optimizer.step(self.theta, g)
        update = before - self.theta
        update_norm = float(np.linalg.norm(update))
        if not math.isfinite(update_norm):
            # A finite gradient can still give a non-finite update (eps = 0
            # on a feature that is always zero): roll back to keep theta good.
            self.theta[...] = before
            raise NonFiniteError(step, "update")
        self.step = step
        now = time.perf_counter()
        step_seconds, self._last_applied = now - self._last_applied, now
        stats = StepStats(
            step=step,
            epoch=epoch,
            loss=loss,
            correct=sum(r.correct for r in results),
            count=count,
            grad_norm=grad_norm,
            update_norm=update_norm,
            lr=self.optimizer.config.lr,
            step_seconds=step_seconds,
            compute_seconds=tuple(r.compute_seconds for r in results),
            wait_seconds=tuple(r.wait_seconds for r in results),
            worker_restarts=sum(r.restarts for r in results),
        )
        # Ray serialises return values before this actor runs its next call
        # (the actor runs one call at a time), so the in-place updates of
        # later steps cannot reach readers of this one.
        return self.theta, stats

    def snapshot(self) -> tuple[int, Array, dict[str, Array | int]]:
        """Step count, parameters and optimizer state, for a checkpoint."""
        return self.step, self.theta, self.optimizer.state_dict()
