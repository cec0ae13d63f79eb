"""Single-process reference: the same math as a distributed run, in one loop.

It is the oracle that distributed runs are checked against and the baseline
that benchmarks measure them by.
"""

from __future__ import annotations

from service.optimizers import make_optimizer
from service.prepare import RunPlan
from workers.backprop import batch_gradient
from workers.network import Array
from workers.sampler import BatchSampler


def reference_train(plan: RunPlan) -> Array:
    """Train plan in this process and return the final flat parameters."""
    config = plan.config
    spec = plan.spec
    x, y = plan.train.x, plan.train.y
    sampler = BatchSampler(len(x), config.batch_size, config.seed, config.shuffle)
    theta = plan.theta0.copy()
    optimizer = make_optimizer(plan.optimizer, len(theta), spec.dtype)
    for epoch in range(config.epochs):
        order = sampler.order(epoch)
        for batch in range(sampler.batches_per_epoch):
            indices = sampler.batch(order, batch)
            result = batch_gradient(spec, theta, x[indices], y[indices])
            optimizer.step(theta, result.grad_sum / result.count)
    return theta
