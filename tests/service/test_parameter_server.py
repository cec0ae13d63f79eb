"""The parameter server's averaging and its guard against non-finite steps."""

from __future__ import annotations

import numpy as np
import pytest

from service.optimizers import OptimizerConfig
from service.parameter_server import NonFiniteError, ParameterServer
from workers.backprop import BatchResult
from workers.network import NetworkSpec, init_parameters

SPEC = NetworkSpec(inputs=3, hidden=4, outputs=2, dtype="float64")


def result(grad_sum, loss_sum=1.0, count=2):
    return BatchResult(np.asarray(grad_sum, dtype=np.float64), loss_sum, 1, count)


def test_apply_divides_summed_gradients_by_total_count():
    theta = init_parameters(SPEC, seed=0)
    server = ParameterServer(SPEC, theta, OptimizerConfig(name="sgd", lr=0.5))
    g1 = np.full(SPEC.num_parameters, 3.0)
    g2 = np.full(SPEC.num_parameters, 1.0)

    new_theta, stats = server.apply(0, result(g1, 2.0, 3), result(g2, 6.0, 1))

    np.testing.assert_allclose(new_theta, theta - 0.5 * (g1 + g2) / 4)
    assert stats.loss == pytest.approx(8.0 / 4)
    assert stats.count == 4
    assert stats.step == 1


def test_apply_refuses_non_finite_loss_without_touching_theta():
    theta = init_parameters(SPEC, seed=0)
    server = ParameterServer(SPEC, theta, OptimizerConfig(name="sgd", lr=0.5))
    with pytest.raises(NonFiniteError, match="loss became non-finite at step 1"):
        server.apply(0, result(np.ones(SPEC.num_parameters), np.nan))
    np.testing.assert_array_equal(server.snapshot()[1], theta)
    assert server.snapshot()[0] == 0


def test_apply_rolls_back_an_update_that_turns_non_finite():
    # Adam with eps = 0 divides 0 by 0 where the gradient is always zero.
    theta = init_parameters(SPEC, seed=0)
    server = ParameterServer(SPEC, theta, OptimizerConfig(name="adam", eps=0.0))
    grad = np.ones(SPEC.num_parameters)
    grad[0] = 0.0
    with pytest.raises(NonFiniteError, match="update became non-finite"):
        server.apply(0, result(grad))
    np.testing.assert_array_equal(server.snapshot()[1], theta)
