"""Checkpoint files: one .npz per job, replaced atomically at each save.

A file holds theta, the optimizer's state arrays, the step (which is the
sampler's position), the running epoch tally, the epoch history, the
network's spec and the standardiser of the run, so a resumed run continues
exactly where it stopped and the weights can be served on raw inputs at any
time.
"""

from __future__ import annotations

import dataclasses
import io
import json
import time
from pathlib import Path

import numpy as np

from service.atomic import atomic_write
from service.data import Standardizer
from service.run_state import Checkpoint, EpochMetrics, EpochTally
from workers.network import NetworkSpec

OPTIMIZER_PREFIX = "optimizer/"


def save_checkpoint(
    path: str | Path,
    checkpoint: Checkpoint,
    spec: NetworkSpec,
    standardizer: Standardizer | None,
) -> float:
    """Write checkpoint to path atomically; return the seconds it took."""
    started = time.perf_counter()
    arrays = {"theta": checkpoint.theta}
    scalars = {}
    for name, value in (checkpoint.optimizer_state or {}).items():
        if np.ndim(value) == 0:
            scalars[name] = int(value)
        else:
            arrays[OPTIMIZER_PREFIX + name] = value
    if standardizer is not None:
        arrays["standardizer/mean"] = standardizer.mean
        arrays["standardizer/scale"] = standardizer.scale
    meta = {
        "step": checkpoint.step,
        "spec": dataclasses.asdict(spec),
        "optimizer_scalars": scalars,
        "tally": dataclasses.asdict(checkpoint.tally),
        "history": [dataclasses.asdict(m) for m in checkpoint.history],
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()))
    return time.perf_counter() - started


def load_checkpoint(
    path: str | Path,
) -> tuple[Checkpoint, NetworkSpec, Standardizer | None]:
    """Read a checkpoint written by save_checkpoint."""
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(archive["meta"].tobytes().decode())
        optimizer_state = {
            name[len(OPTIMIZER_PREFIX) :]: archive[name]
            for name in archive.files
            if name.startswith(OPTIMIZER_PREFIX)
        }
        optimizer_state.update(meta["optimizer_scalars"])
        standardizer = None
        if "standardizer/mean" in archive.files:
            standardizer = Standardizer(
                archive["standardizer/mean"], archive["standardizer/scale"]
            )
        checkpoint = Checkpoint(
            step=meta["step"],
            theta=archive["theta"],
            optimizer_state=optimizer_state or None,
            tally=EpochTally(**meta["tally"]),
            history=[EpochMetrics(**m) for m in meta["history"]],
        )
    return checkpoint, NetworkSpec(**meta["spec"]), standardizer
