"""The worker actor: forward and backward passes on its slice of each batch.

A worker holds zero-copy, read-only views of the training and validation
sets from Ray's object store (put there once by the driver) and receives
only the current parameters, as an object reference, at each step.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import ray

from workers.backprop import BatchResult, batch_gradient, batch_loss
from workers.network import Array, NetworkSpec
from workers.sampler import BatchSampler, worker_slice

# Rows evaluated at once, so validation of a large set stays within memory.
EVALUATION_CHUNK = 4096


class Worker:
    """Computes summed gradients and losses for one rank of a job."""

    def __init__(
        self,
        spec: NetworkSpec,
        rank: int,
        num_workers: int,
        sampler: BatchSampler,
        data: list[ray.ObjectRef | None],
    ) -> None:
        """``data`` holds object references to x, y, x_val and y_val.

        They arrive nested in a list rather than as arguments of their own:
        Ray then passes the references, not the arrays, so a restarted
        worker fetches the same objects again instead of needing its
        original arguments (which Ray warns about for restartable actors).
        The fetched arrays are read-only views of the object store.
        """
        x, y, x_val, y_val = (ray.get(ref) if ref is not None else None for ref in data)
        self.spec = spec
        self.rank = rank
        self.num_workers = num_workers
        self.sampler = sampler
        self.x, self.y = x, y
        self.x_val, self.y_val = x_val, y_val
        self._epoch = -1
        self._order = np.empty(0, dtype=np.int64)
        self._last_finished = 0.0
        # Ray restarts a worker whose process died and retries its call; the
        # state above is rebuilt from the same object-store data, so the run
        # continues unchanged. The restart is reported once, for metrics.
        with warnings.catch_warnings():
            # Ray's own implementation of this property calls a deprecated
            # API of Ray's and warns about it.
            warnings.simplefilter("ignore", DeprecationWarning)
            restarted = ray.get_runtime_context().was_current_actor_reconstructed
        self._unreported_restart = int(restarted)

    def compute(self, theta: Array, epoch: int, batch: int) -> BatchResult:
        """Summed gradient, loss and correct count of this rank's slice.

        The result also carries how long the pass took and how long the
        worker sat idle since its previous call, waiting for parameters.
        """
        started = time.perf_counter()
        if epoch != self._epoch:
            # One permutation per epoch, not per step.
            self._epoch, self._order = epoch, self.sampler.order(epoch)
        indices = self.sampler.batch(self._order, batch)
        mine = worker_slice(indices, self.rank, self.num_workers)
        # A diverging run overflows here first; the parameter server refuses
        # the non-finite result and reports it once, so numpy's warnings
        # would only repeat it in every worker's log.
        with np.errstate(over="ignore", invalid="ignore"):
            result = batch_gradient(self.spec, theta, self.x[mine], self.y[mine])
        finished = time.perf_counter()
        waited = started - self._last_finished if self._last_finished else 0.0
        self._last_finished = finished
        restarts, self._unreported_restart = self._unreported_restart, 0
        return result._replace(
            compute_seconds=finished - started, wait_seconds=waited, restarts=restarts
        )

    def evaluate(self, theta: Array) -> BatchResult:
        """Summed validation loss and correct count of this rank's slice."""
        if self.x_val is None:
            return BatchResult(np.zeros(0), 0.0, 0, 0)
        n = len(self.x_val)
        start = self.rank * n // self.num_workers
        stop = (self.rank + 1) * n // self.num_workers
        loss_sum, correct = 0.0, 0
        for begin in range(start, stop, EVALUATION_CHUNK):
            end = min(begin + EVALUATION_CHUNK, stop)
            part = batch_loss(
                self.spec, theta, self.x_val[begin:end], self.y_val[begin:end]
            )
            loss_sum += part.loss_sum
            correct += part.correct
        return BatchResult(np.zeros(0), loss_sum, correct, stop - start)

    def ping(self) -> int:
        """Return the rank; used to wait until the actor is up."""
        return self.rank
