"""Tests for the flat-vector optimizers, with ``torch.optim`` as the oracle."""

import math
import re

import numpy as np
import pytest
import torch

from service.optimizers import OptimizerConfig, make_optimizer

SIZE = 32  # P, parameters in the flat vector
NUM_STEPS = 60
SEED = 0

# Both sides do the same float64 arithmetic, up to the order of a few
# operations (torch's lerp against scale-and-add, for one), so they agree
# to a few units in the last place per step.
RTOL = 1e-12
ATOL = 1e-14

TORCH_CONFIGS = [
    pytest.param(OptimizerConfig(name="sgd", lr=0.05), id="sgd"),
    pytest.param(OptimizerConfig(name="sgd", lr=0.05, momentum=0.9), id="sgd-momentum"),
    pytest.param(
        OptimizerConfig(name="sgd", lr=0.05, momentum=0.9, dampening=0.3),
        id="sgd-momentum-dampening",
    ),
    pytest.param(
        OptimizerConfig(name="sgd", lr=0.05, momentum=0.9, nesterov=True),
        id="sgd-nesterov",
    ),
    pytest.param(
        OptimizerConfig(name="sgd", lr=0.05, weight_decay=0.1),
        id="sgd-weight-decay",
    ),
    pytest.param(
        OptimizerConfig(
            name="sgd", lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.05
        ),
        id="sgd-nesterov-weight-decay",
    ),
    pytest.param(OptimizerConfig(name="adam", lr=0.01), id="adam"),
    pytest.param(
        OptimizerConfig(name="adam", lr=0.01, weight_decay=0.1),
        id="adam-weight-decay",
    ),
    pytest.param(
        OptimizerConfig(name="adam", lr=0.01, amsgrad=True), id="adam-amsgrad"
    ),
    pytest.param(
        OptimizerConfig(name="adam", lr=0.01, amsgrad=True, weight_decay=0.1),
        id="adam-amsgrad-weight-decay",
    ),
    pytest.param(
        OptimizerConfig(name="adam", lr=0.02, betas=(0.5, 0.9), eps=1e-3),
        id="adam-custom-betas-eps",
    ),
    pytest.param(OptimizerConfig(name="adamw", lr=0.01, weight_decay=0.01), id="adamw"),
    pytest.param(
        OptimizerConfig(name="adamw", lr=0.01, weight_decay=0.01, amsgrad=True),
        id="adamw-amsgrad",
    ),
    pytest.param(
        OptimizerConfig(name="adamw", lr=0.01, weight_decay=5.0),
        id="adamw-large-weight-decay",
    ),
    pytest.param(OptimizerConfig(name="rmsprop", lr=0.01), id="rmsprop"),
    pytest.param(
        OptimizerConfig(name="rmsprop", lr=0.01, centered=True),
        id="rmsprop-centered",
    ),
    pytest.param(
        OptimizerConfig(name="rmsprop", lr=0.01, momentum=0.9),
        id="rmsprop-momentum",
    ),
    pytest.param(
        OptimizerConfig(
            name="rmsprop", lr=0.01, centered=True, momentum=0.9, weight_decay=0.1
        ),
        id="rmsprop-centered-momentum-weight-decay",
    ),
    pytest.param(
        OptimizerConfig(name="rmsprop", lr=0.01, alpha=0.9, eps=1e-4),
        id="rmsprop-custom-alpha-eps",
    ),
]

# One configuration per optimizer, each with all of its state and its weight
# decay in use.
STATEFUL_CONFIGS = [
    pytest.param(
        OptimizerConfig(name="sgd", lr=0.05, momentum=0.9, weight_decay=0.01),
        id="sgd-momentum-weight-decay",
    ),
    pytest.param(
        OptimizerConfig(name="adam", lr=0.01, amsgrad=True, weight_decay=0.01),
        id="adam-amsgrad-weight-decay",
    ),
    pytest.param(
        OptimizerConfig(name="adamw", lr=0.01, weight_decay=0.01, amsgrad=True),
        id="adamw-amsgrad-weight-decay",
    ),
    pytest.param(
        OptimizerConfig(
            name="rmsprop", lr=0.01, centered=True, momentum=0.9, weight_decay=0.01
        ),
        id="rmsprop-centered-momentum-weight-decay",
    ),
]

STATE_ARRAYS = [
    pytest.param("sgd", "momentum_buffer", id="sgd-momentum_buffer"),
    pytest.param("adam", "exp_avg", id="adam-exp_avg"),
    pytest.param("adam", "exp_avg_sq", id="adam-exp_avg_sq"),
    pytest.param("adam", "max_exp_avg_sq", id="adam-max_exp_avg_sq"),
    pytest.param("adamw", "exp_avg_sq", id="adamw-exp_avg_sq"),
    pytest.param("rmsprop", "square_avg", id="rmsprop-square_avg"),
    pytest.param("rmsprop", "grad_avg", id="rmsprop-grad_avg"),
    pytest.param("rmsprop", "momentum_buffer", id="rmsprop-momentum_buffer"),
]


def initial_theta() -> np.ndarray:
    """Seeded float64 starting parameters, (P,)."""
    return np.random.default_rng(SEED).normal(size=SIZE)


def gradient(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Noisy gradient of sum(log cosh(theta - 1) + theta^4 / 40), (P,).

    Not quadratic, so the gradient changes with theta in a way that each
    optimizer's state has to track; the noise flips signs now and then.
    """
    noise = 0.1 * rng.standard_normal(theta.shape)  # (P,)
    return np.tanh(theta - 1.0) + 0.1 * theta**3 + noise


def torch_optimizer(
    config: OptimizerConfig, param: torch.Tensor
) -> torch.optim.Optimizer:
    """The ``torch.optim`` optimizer that ``config`` describes."""
    if config.name == "sgd":
        return torch.optim.SGD(
            [param],
            lr=config.lr,
            momentum=config.momentum,
            dampening=config.dampening,
            weight_decay=config.weight_decay,
            nesterov=config.nesterov,
        )
    if config.name in ("adam", "adamw"):
        adam_class = torch.optim.Adam if config.name == "adam" else torch.optim.AdamW
        return adam_class(
            [param],
            lr=config.lr,
            betas=config.betas,
            eps=config.eps,
            weight_decay=config.weight_decay,
            amsgrad=config.amsgrad,
        )
    return torch.optim.RMSprop(
        [param],
        lr=config.lr,
        alpha=config.alpha,
        eps=config.eps,
        weight_decay=config.weight_decay,
        momentum=config.momentum,
        centered=config.centered,
    )


def train(
    optimizer, theta: np.ndarray, rng: np.random.Generator, num_steps: int
) -> None:
    """Take num_steps steps on theta in place with gradients from rng."""
    for _ in range(num_steps):
        optimizer.step(theta, gradient(theta, rng))


@pytest.mark.parametrize("config", TORCH_CONFIGS)
def test_step_matches_torch_optim_at_every_step(config):
    rng = np.random.default_rng(SEED + 1)
    theta = initial_theta()
    param = torch.tensor(theta.copy(), dtype=torch.float64, requires_grad=True)
    reference = torch_optimizer(config, param)
    optimizer = make_optimizer(config, SIZE, "float64")

    for t in range(1, NUM_STEPS + 1):
        g = gradient(theta, rng)
        param.grad = torch.tensor(g, dtype=torch.float64)
        reference.step()
        optimizer.step(theta, g)
        np.testing.assert_allclose(
            theta,
            param.detach().numpy(),
            rtol=RTOL,
            atol=ATOL,
            err_msg=f"step {t}",
        )


@pytest.mark.parametrize("config", STATEFUL_CONFIGS)
def test_loaded_state_continues_exactly_like_uninterrupted_run(config):
    uninterrupted_rng = np.random.default_rng(SEED + 1)
    uninterrupted_theta = initial_theta()
    train(
        make_optimizer(config, SIZE, "float64"),
        uninterrupted_theta,
        uninterrupted_rng,
        40,
    )

    rng = np.random.default_rng(SEED + 1)
    theta = initial_theta()
    first = make_optimizer(config, SIZE, "float64")
    train(first, theta, rng, 20)
    saved = first.state_dict()
    resumed = make_optimizer(config, SIZE, "float64")
    resumed.load_state_dict(saved)
    train(resumed, theta, rng, 20)

    np.testing.assert_array_equal(theta, uninterrupted_theta)


@pytest.mark.parametrize("config", STATEFUL_CONFIGS)
def test_state_dict_is_a_copy_unaffected_by_later_steps(config):
    rng = np.random.default_rng(SEED + 1)
    theta = initial_theta()
    optimizer = make_optimizer(config, SIZE, "float64")
    train(optimizer, theta, rng, 5)
    saved = optimizer.state_dict()
    snapshot = {name: np.copy(value) for name, value in saved.items()}

    train(optimizer, theta, rng, 5)

    assert saved.keys() == snapshot.keys()
    for name, value in saved.items():
        np.testing.assert_array_equal(value, snapshot[name], err_msg=name)


@pytest.mark.parametrize(("name", "array_name"), STATE_ARRAYS)
def test_load_state_dict_rejects_wrong_shape_naming_the_array(name, array_name):
    config = OptimizerConfig(name=name, lr=0.01)
    optimizer = make_optimizer(config, SIZE, "float64")
    state = optimizer.state_dict()
    state[array_name] = np.zeros(SIZE + 1)

    expected = f"{array_name} has shape ({SIZE + 1},); expected ({SIZE},)"
    with pytest.raises(ValueError, match=re.escape(expected)):
        optimizer.load_state_dict(state)


@pytest.mark.parametrize("config", STATEFUL_CONFIGS)
def test_step_updates_the_given_array_in_place(config):
    rng = np.random.default_rng(SEED + 1)
    theta = initial_theta()
    before = theta.copy()
    optimizer = make_optimizer(config, SIZE, "float64")

    returned = optimizer.step(theta, gradient(theta, rng))

    assert returned is None
    assert np.all(theta != before)


@pytest.mark.parametrize("config", STATEFUL_CONFIGS)
def test_step_leaves_the_gradient_unchanged(config):
    rng = np.random.default_rng(SEED + 1)
    theta = initial_theta()
    optimizer = make_optimizer(config, SIZE, "float64")
    train(optimizer, theta, rng, 3)
    g = gradient(theta, rng)
    g_before = g.copy()

    optimizer.step(theta, g)

    np.testing.assert_array_equal(g, g_before)


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        pytest.param("lr", 0.0, "0.0", id="lr-zero"),
        pytest.param("lr", -0.1, "-0.1", id="lr-negative"),
        pytest.param("lr", math.nan, "nan", id="lr-nan"),
        pytest.param("lr", math.inf, "inf", id="lr-inf"),
        pytest.param("weight_decay", -0.01, "-0.01", id="weight-decay-negative"),
        pytest.param("betas", (1.0, 0.999), "1.0", id="beta1-one"),
        pytest.param("betas", (0.9, 1.5), "1.5", id="beta2-above-one"),
        pytest.param("betas", (-0.1, 0.999), "-0.1", id="beta1-negative"),
    ],
)
def test_config_rejects_bad_value_naming_field_and_value(field, value, shown):
    pattern = rf"^{field} .*got {re.escape(shown)}$"

    with pytest.raises(ValueError, match=pattern):
        OptimizerConfig(name="adam", **{field: value})


def test_config_rejects_nesterov_without_momentum():
    with pytest.raises(ValueError, match=r"^nesterov .*momentum 0\.0"):
        OptimizerConfig(name="sgd", lr=0.1, nesterov=True)


def test_config_rejects_unknown_optimizer_name():
    with pytest.raises(ValueError, match=r"^optimizer must be one of .*'lion'$"):
        OptimizerConfig(name="lion")
