"""A job's weights as served to clients, acting on raw input features.

A live job's latest parameters in the object store are newer than its
checkpoint, so they come first; otherwise the checkpoint file is read. Either
way the run's standardisation is folded into W1 and b1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import ray

from service.checkpoints import load_checkpoint
from service.errors import PreconditionError
from service.job_store import JobRecord
from service.prepare import RunPlan
from service.weights import fold_standardizer
from workers.network import NetworkSpec, Params


def job_parameters(
    record: JobRecord,
    latest: tuple[int, ray.ObjectRef] | None,
    plan: RunPlan | None,
) -> tuple[Params, int, NetworkSpec]:
    """Weights of the job, their step and the network's spec.

    ``latest`` and ``plan`` come from the job while it is live; both are
    needed to serve from memory. Raises PreconditionError when the job has
    neither those nor a checkpoint file.
    """
    if latest is not None and plan is not None:
        step, theta_ref = latest
        theta, spec, standardizer = ray.get(theta_ref), plan.spec, plan.standardizer
    elif record.checkpoint_path and Path(record.checkpoint_path).exists():
        checkpoint, spec, standardizer = load_checkpoint(record.checkpoint_path)
        step, theta = checkpoint.step, checkpoint.theta
    else:
        raise PreconditionError(
            "job_id",
            f"job {record.job_id} is {record.state} and has no parameters yet",
        )
    params = spec.unflatten(np.asarray(theta))
    if standardizer is not None:
        params = fold_standardizer(params, standardizer)
    return Params(*(p.astype(spec.dtype) for p in params)), step, spec
