"""Tests of the forward and backward passes and of the network's layout.

Oracles: central finite differences for gradients, PyTorch (float64,
``reduction="mean"``) for loss values and gradients, ``torch.nn.Linear`` for
the default initialisation.
"""

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from torch.nn import functional

from workers.backprop import (
    batch_gradient,
    batch_loss,
    count_correct,
    forward,
    predict,
)
from workers.network import NetworkSpec, init_parameters

# Central differences in float64: truncation error ~ FD_STEP**2, rounding
# error ~ 1e-16 / FD_STEP, both far below FD_TOLERANCE.
FD_STEP = 1e-6
FD_TOLERANCE = 1e-6  # relative error, in the 2-norm over all parameters
TORCH_RTOL = 1e-10
TORCH_ATOL = 1e-12

EXTREME = 1e4  # largest |z| the design promises to handle
INPUTS, HIDDEN, BATCH = 4, 5, 6

HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu")
SATURATING_ACTIVATIONS = ("sigmoid", "tanh")
DTYPES = ("float32", "float64")

# (output activation, loss, outputs, kind of target). "labels" are integer
# class labels (0/1 when there is one output); "matrix" is a (B, K) float
# target matrix with entries in [0, 1].
PROBLEMS = [
    pytest.param("sigmoid", "mse", 3, "labels", id="sigmoid-mse-labels"),
    pytest.param("sigmoid", "mse", 3, "matrix", id="sigmoid-mse-matrix"),
    pytest.param("softmax", "mse", 3, "labels", id="softmax-mse-labels"),
    pytest.param("softmax", "mse", 3, "matrix", id="softmax-mse-matrix"),
    pytest.param("identity", "mse", 3, "labels", id="identity-mse-labels"),
    pytest.param("identity", "mse", 3, "matrix", id="identity-mse-matrix"),
    pytest.param("identity", "mse", 1, "labels", id="identity-mse-one-output"),
    pytest.param("softmax", "cross_entropy", 3, "labels", id="softmax-ce-labels"),
    pytest.param(
        "sigmoid", "binary_cross_entropy", 3, "matrix", id="sigmoid-bce-matrix"
    ),
    pytest.param(
        "sigmoid", "binary_cross_entropy", 3, "labels", id="sigmoid-bce-labels"
    ),
    pytest.param(
        "sigmoid", "binary_cross_entropy", 1, "labels", id="sigmoid-bce-one-output"
    ),
]
LABEL_PROBLEMS = [p for p in PROBLEMS if p.values[3] == "labels"]

INVALID_COMBINATIONS = [
    ("cross_entropy", "sigmoid"),
    ("cross_entropy", "identity"),
    ("binary_cross_entropy", "softmax"),
    ("binary_cross_entropy", "identity"),
]


# Helpers.


def make_spec(
    output_activation: str,
    loss: str,
    outputs: int,
    hidden_activation: str = "tanh",
    dtype: str = "float64",
) -> NetworkSpec:
    return NetworkSpec(
        inputs=INPUTS,
        hidden=HIDDEN,
        outputs=outputs,
        hidden_activation=hidden_activation,
        output_activation=output_activation,
        loss=loss,
        dtype=dtype,
    )


def make_targets(
    rng: np.random.Generator, kind: str, outputs: int, batch: int, dtype: str
) -> np.ndarray:
    """Labels cycling through every class, or a uniform target matrix."""
    if kind == "matrix":
        return rng.uniform(0, 1, size=(batch, outputs)).astype(dtype)
    num_classes = 2 if outputs == 1 else outputs
    return rng.permutation(np.arange(batch) % num_classes)


def make_batch(
    spec: NetworkSpec, kind: str, seed: int, batch: int = BATCH
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded theta, inputs x and targets y of one batch.

    theta is drawn wider than the default initialisation so that every term
    of the gradient is large enough to matter.
    """
    rng = np.random.default_rng(seed)
    theta = rng.normal(0, 1, size=spec.num_parameters).astype(spec.dtype)
    x = rng.normal(0, 1, size=(batch, spec.inputs)).astype(spec.dtype)
    y = make_targets(rng, kind, spec.outputs, batch, spec.dtype)
    return theta, x, y


def finite_difference_gradient(
    spec: NetworkSpec, theta: np.ndarray, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """Central differences of the summed loss, one parameter at a time."""
    grad = np.zeros_like(theta)
    for i in range(theta.size):
        step = np.zeros_like(theta)
        step[i] = FD_STEP
        L_plus = batch_loss(spec, theta + step, x, y).loss_sum
        L_minus = batch_loss(spec, theta - step, x, y).loss_sum
        grad[i] = (L_plus - L_minus) / (2 * FD_STEP)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return float(np.linalg.norm(a - b) / scale)


def assert_away_from_relu_kink(
    spec: NetworkSpec, theta: np.ndarray, x: np.ndarray
) -> None:
    """Check that no finite-difference step can move z1 across 0.

    A step of FD_STEP in one parameter moves z1 by at most
    FD_STEP * max(1, |x|); every z1 must stay ten times further from 0.
    """
    z1 = forward(spec, theta, x).z1
    reach = FD_STEP * max(1.0, float(np.abs(x).max()))
    assert np.abs(z1).min() > 10 * reach, "test data sits on the relu kink"


def torch_mean_loss_and_gradient(
    spec: NetworkSpec, theta: np.ndarray, x: np.ndarray, y: np.ndarray
) -> tuple[float, np.ndarray]:
    """PyTorch's mean loss and its gradient, in the flat W1, b1, W2, b2 order."""
    W1, b1, W2, b2 = spec.unflatten(theta.astype(np.float64))
    first = torch.nn.Linear(spec.inputs, spec.hidden, dtype=torch.float64)
    second = torch.nn.Linear(spec.hidden, spec.outputs, dtype=torch.float64)
    with torch.no_grad():
        first.weight.copy_(torch.tensor(W1))
        first.bias.copy_(torch.tensor(b1))
        second.weight.copy_(torch.tensor(W2))
        second.bias.copy_(torch.tensor(b2))

    act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}
    x_t = torch.tensor(x, dtype=torch.float64)
    z2 = second(act[spec.hidden_activation](first(x_t)))

    if spec.loss == "cross_entropy":
        L = functional.cross_entropy(z2, torch.tensor(y))
    else:
        if y.ndim == 2:
            target = torch.tensor(y, dtype=torch.float64)
        elif spec.outputs == 1:
            target = torch.tensor(y, dtype=torch.float64)[:, None]
        else:
            target = functional.one_hot(torch.tensor(y), spec.outputs).to(torch.float64)
        if spec.loss == "binary_cross_entropy":
            L = functional.binary_cross_entropy_with_logits(z2, target)
        else:
            out = {
                "sigmoid": torch.sigmoid,
                "softmax": lambda z: torch.softmax(z, dim=1),
                "identity": lambda z: z,
            }
            L = functional.mse_loss(out[spec.output_activation](z2), target)

    L.backward()
    parameters = (first.weight, first.bias, second.weight, second.bias)
    grad = np.concatenate([p.grad.numpy().ravel() for p in parameters])
    return L.item(), grad


@contextmanager
def strict_numerics() -> Iterator[None]:
    """Make every warning, and numpy overflow, invalid and divide, an error."""
    with (
        warnings.catch_warnings(),
        np.errstate(over="raise", invalid="raise", divide="raise"),
    ):
        warnings.simplefilter("error")
        yield


def sign_pattern(size: int, sign: float) -> np.ndarray:
    """sign * (+1, -1, +1, ...): extreme values of both signs in one layer."""
    return sign * np.where(np.arange(size) % 2 == 0, 1.0, -1.0)


# Gradients against finite differences.


@pytest.mark.parametrize("hidden_activation", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize(("output_activation", "loss", "outputs", "kind"), PROBLEMS)
def test_backward_matches_finite_differences(
    hidden_activation, output_activation, loss, outputs, kind
):
    spec = make_spec(output_activation, loss, outputs, hidden_activation)
    theta, x, y = make_batch(spec, kind, seed=0)
    if hidden_activation == "relu":
        assert_away_from_relu_kink(spec, theta, x)

    grad = batch_gradient(spec, theta, x, y).grad_sum

    expected = finite_difference_gradient(spec, theta, x, y)
    assert relative_error(grad, expected) < FD_TOLERANCE


@pytest.mark.parametrize(("output_activation", "loss", "outputs", "kind"), PROBLEMS)
def test_single_sample_gradient_matches_finite_differences(
    output_activation, loss, outputs, kind
):
    spec = make_spec(output_activation, loss, outputs)
    theta, x, y = make_batch(spec, kind, seed=1, batch=1)

    result = batch_gradient(spec, theta, x, y)

    assert result.count == 1
    expected = finite_difference_gradient(spec, theta, x, y)
    assert relative_error(result.grad_sum, expected) < FD_TOLERANCE


@pytest.mark.parametrize(("output_activation", "loss", "outputs", "kind"), PROBLEMS)
def test_constant_feature_gradient_matches_finite_differences(
    output_activation, loss, outputs, kind
):
    spec = make_spec(output_activation, loss, outputs, hidden_activation="sigmoid")
    theta, x, y = make_batch(spec, kind, seed=2)
    x[:, 0] = 3.0
    x[:, 1] = 0.0

    with strict_numerics():
        grad = batch_gradient(spec, theta, x, y).grad_sum

    expected = finite_difference_gradient(spec, theta, x, y)
    assert relative_error(grad, expected) < FD_TOLERANCE


# Loss values and gradients against PyTorch.


@pytest.mark.parametrize("hidden_activation", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize(("output_activation", "loss", "outputs", "kind"), PROBLEMS)
def test_mean_loss_matches_torch(
    hidden_activation, output_activation, loss, outputs, kind
):
    spec = make_spec(output_activation, loss, outputs, hidden_activation)
    theta, x, y = make_batch(spec, kind, seed=3)

    result = batch_gradient(spec, theta, x, y)

    expected, _ = torch_mean_loss_and_gradient(spec, theta, x, y)
    assert result.loss_sum / result.count == pytest.approx(expected, rel=TORCH_RTOL)


@pytest.mark.parametrize("hidden_activation", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize(("output_activation", "loss", "outputs", "kind"), PROBLEMS)
def test_mean_gradient_matches_torch_autograd(
    hidden_activation, output_activation, loss, outputs, kind
):
    spec = make_spec(output_activation, loss, outputs, hidden_activation)
    theta, x, y = make_batch(spec, kind, seed=4)

    result = batch_gradient(spec, theta, x, y)

    _, expected = torch_mean_loss_and_gradient(spec, theta, x, y)
    np.testing.assert_allclose(
        result.grad_sum / result.count, expected, rtol=TORCH_RTOL, atol=TORCH_ATOL
    )


@pytest.mark.parametrize(("output_activation", "loss", "outputs", "kind"), PROBLEMS)
def test_batch_loss_equals_loss_of_batch_gradient(
    output_activation, loss, outputs, kind
):
    spec = make_spec(output_activation, loss, outputs)
    theta, x, y = make_batch(spec, kind, seed=5)

    without_gradient = batch_loss(spec, theta, x, y)

    with_gradient = batch_gradient(spec, theta, x, y)
    assert without_gradient.loss_sum == with_gradient.loss_sum
    assert without_gradient.correct == with_gradient.correct
    assert without_gradient.count == with_gradient.count


@pytest.mark.parametrize(
    ("output_activation", "loss", "outputs", "kind"), LABEL_PROBLEMS
)
def test_single_class_batch_matches_torch(output_activation, loss, outputs, kind):
    spec = make_spec(output_activation, loss, outputs)
    theta, x, _ = make_batch(spec, kind, seed=6)
    y = np.ones(BATCH, dtype=np.int64)

    with strict_numerics():
        result = batch_gradient(spec, theta, x, y)

    expected_loss, expected_grad = torch_mean_loss_and_gradient(spec, theta, x, y)
    assert result.loss_sum / BATCH == pytest.approx(expected_loss, rel=TORCH_RTOL)
    np.testing.assert_allclose(
        result.grad_sum / BATCH, expected_grad, rtol=TORCH_RTOL, atol=TORCH_ATOL
    )


def test_relu_gradient_at_zero_matches_torch():
    spec = make_spec("softmax", "cross_entropy", 3, hidden_activation="relu")
    theta, x, y = make_batch(spec, "labels", seed=15)
    W1, b1, _, _ = spec.unflatten(theta)
    W1[0] = 0.0
    b1[0] = 0.0
    assert not forward(spec, theta, x).z1[:, 0].any()

    result = batch_gradient(spec, theta, x, y)

    # PyTorch takes the relu derivative at 0 to be 0.
    _, expected = torch_mean_loss_and_gradient(spec, theta, x, y)
    np.testing.assert_allclose(
        result.grad_sum / BATCH, expected, rtol=TORCH_RTOL, atol=TORCH_ATOL
    )


# Extreme and degenerate inputs.


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize(("output_activation", "loss", "outputs", "kind"), PROBLEMS)
def test_extreme_logits_give_finite_loss_and_gradient(
    output_activation, loss, outputs, kind, sign, dtype
):
    spec = make_spec(output_activation, loss, outputs, dtype=dtype)
    _, x, y = make_batch(spec, kind, seed=7)
    theta = init_parameters(spec, seed=7)
    # tanh keeps |a1 W2^T| <= sqrt(H), so z2 is b2 to within a few units.
    spec.unflatten(theta).b2[...] = EXTREME * sign_pattern(outputs, sign)
    assert np.abs(forward(spec, theta, x).z2).min() > EXTREME - 10

    with strict_numerics():
        result = batch_gradient(spec, theta, x, y)

    assert math.isfinite(result.loss_sum)
    assert np.isfinite(result.grad_sum).all()


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize(("output_activation", "loss", "outputs", "kind"), PROBLEMS)
def test_extreme_logits_loss_matches_torch(
    output_activation, loss, outputs, kind, sign
):
    spec = make_spec(output_activation, loss, outputs)
    _, x, y = make_batch(spec, kind, seed=8)
    theta = init_parameters(spec, seed=8)
    spec.unflatten(theta).b2[...] = EXTREME * sign_pattern(outputs, sign)

    with strict_numerics():
        result = batch_gradient(spec, theta, x, y)

    expected, _ = torch_mean_loss_and_gradient(spec, theta, x, y)
    assert result.loss_sum / BATCH == pytest.approx(expected, rel=TORCH_RTOL)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("hidden_activation", SATURATING_ACTIVATIONS)
@pytest.mark.parametrize(("output_activation", "loss", "outputs", "kind"), PROBLEMS)
def test_saturated_hidden_units_give_finite_loss_and_gradient(
    output_activation, loss, outputs, kind, hidden_activation, sign, dtype
):
    spec = make_spec(output_activation, loss, outputs, hidden_activation, dtype)
    _, x, y = make_batch(spec, kind, seed=9)
    theta = init_parameters(spec, seed=9)
    spec.unflatten(theta).b1[...] = EXTREME * sign_pattern(HIDDEN, sign)
    assert np.abs(forward(spec, theta, x).z1).min() > EXTREME - 10

    with strict_numerics():
        result = batch_gradient(spec, theta, x, y)

    assert math.isfinite(result.loss_sum)
    assert np.isfinite(result.grad_sum).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_float_batch_keeps_spec_dtype_in_gradient(dtype):
    spec = make_spec("softmax", "cross_entropy", 3, dtype=dtype)
    theta, x, y = make_batch(spec, "labels", seed=10)

    grad = batch_gradient(spec, theta, x, y).grad_sum

    assert grad.dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("output_activation", "loss", "outputs", "kind"), PROBLEMS)
def test_empty_batch_returns_zero_gradient_and_count_zero(
    output_activation, loss, outputs, kind, dtype
):
    spec = make_spec(output_activation, loss, outputs, dtype=dtype)
    theta, x, y = make_batch(spec, kind, seed=11, batch=0)

    with strict_numerics():
        result = batch_gradient(spec, theta, x, y)

    assert result.grad_sum.shape == (spec.num_parameters,)
    assert result.grad_sum.dtype == np.dtype(dtype)
    assert not result.grad_sum.any()
    assert result.loss_sum == 0.0
    assert result.correct == 0
    assert result.count == 0


@pytest.mark.parametrize(("output_activation", "loss", "outputs", "kind"), PROBLEMS)
def test_empty_batch_loss_is_zero_with_count_zero(
    output_activation, loss, outputs, kind
):
    spec = make_spec(output_activation, loss, outputs)
    theta, x, y = make_batch(spec, kind, seed=12, batch=0)

    with strict_numerics():
        result = batch_loss(spec, theta, x, y)

    assert (result.loss_sum, result.correct, result.count) == (0.0, 0, 0)


# Initialisation and the flat layout.


@pytest.mark.parametrize("dtype", DTYPES)
def test_init_parameters_lie_within_linear_default_bounds(dtype):
    spec = NetworkSpec(inputs=7, hidden=11, outputs=3, dtype=dtype)

    W1, b1, W2, b2 = spec.unflatten(init_parameters(spec, seed=0))

    # nn.Linear draws weight and bias of a layer with fan-in n from
    # U(-1/sqrt(n), 1/sqrt(n)); the bound is rounded to the spec's dtype.
    first_bound = np.asarray(1 / math.sqrt(spec.inputs), dtype=dtype)
    second_bound = np.asarray(1 / math.sqrt(spec.hidden), dtype=dtype)
    assert np.abs(W1).max() <= first_bound
    assert np.abs(b1).max() <= first_bound
    assert np.abs(W2).max() <= second_bound
    assert np.abs(b2).max() <= second_bound


def test_init_parameters_spread_like_torch_linear():
    spec = NetworkSpec(inputs=40, hidden=500, outputs=200, dtype="float64")
    torch.manual_seed(0)
    first = torch.nn.Linear(spec.inputs, spec.hidden, dtype=torch.float64)
    second = torch.nn.Linear(spec.hidden, spec.outputs, dtype=torch.float64)
    expected = (first.weight, first.bias, second.weight, second.bias)

    params = spec.unflatten(init_parameters(spec, seed=0))

    # Uniform samples of this size reach within 2% of their bound, and their
    # standard deviation (bound / sqrt(3)) is within a few percent.
    for name, ours, theirs in zip(params._fields, params, expected, strict=True):
        theirs = theirs.detach().numpy()
        assert np.abs(ours).max() == pytest.approx(np.abs(theirs).max(), rel=0.02), name
        assert ours.std() == pytest.approx(theirs.std(), rel=0.1), name


def test_init_parameters_same_seed_gives_same_theta():
    spec = NetworkSpec(inputs=7, hidden=11, outputs=3)

    first = init_parameters(spec, seed=42)

    np.testing.assert_array_equal(first, init_parameters(spec, seed=42))


def test_init_parameters_different_seed_gives_different_theta():
    spec = NetworkSpec(inputs=7, hidden=11, outputs=3)

    first = init_parameters(spec, seed=42)

    assert not np.array_equal(first, init_parameters(spec, seed=43))


@pytest.mark.parametrize("dtype", DTYPES)
def test_init_parameters_have_spec_dtype_and_length(dtype):
    spec = NetworkSpec(inputs=7, hidden=11, outputs=3, dtype=dtype)

    theta = init_parameters(spec, seed=0)

    assert theta.dtype == np.dtype(dtype)
    assert theta.shape == (7 * 11 + 11 + 3 * 11 + 3,)


def test_unflatten_returns_views_into_theta():
    spec = NetworkSpec(inputs=2, hidden=3, outputs=2, dtype="float64")
    theta = np.zeros(spec.num_parameters)

    W1, b1, W2, b2 = spec.unflatten(theta)
    W1[1, 0] = 1.0
    b1[2] = 2.0
    W2[0, 2] = 3.0
    b2[1] = 4.0

    # Layout: W1 (3, 2) row-major, then b1 (3,), W2 (2, 3), b2 (2,).
    expected = np.zeros(spec.num_parameters)
    expected[[2, 6 + 2, 9 + 2, 15 + 1]] = [1.0, 2.0, 3.0, 4.0]
    np.testing.assert_array_equal(theta, expected)


def test_flatten_inverts_unflatten():
    spec = NetworkSpec(inputs=3, hidden=4, outputs=2, dtype="float64")
    theta = np.random.default_rng(0).normal(size=spec.num_parameters)

    flat = spec.flatten(spec.unflatten(theta))

    np.testing.assert_array_equal(flat, theta)


def test_unflatten_rejects_wrong_length():
    spec = NetworkSpec(inputs=3, hidden=4, outputs=2)

    with pytest.raises(ValueError, match=r"\(26,\)"):
        spec.unflatten(np.zeros(25, dtype=np.float32))


@pytest.mark.parametrize(("loss", "output_activation"), INVALID_COMBINATIONS)
def test_spec_rejects_loss_with_wrong_output_activation(loss, output_activation):
    with pytest.raises(ValueError) as raised:
        NetworkSpec(
            inputs=3,
            hidden=4,
            outputs=2,
            output_activation=output_activation,
            loss=loss,
        )

    assert loss in str(raised.value)
    assert output_activation in str(raised.value)


# Predictions and correct counts.


def test_count_correct_takes_argmax_of_several_outputs():
    z2 = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.5], [0.0, 0.2, 0.1]])
    y = np.array([1, 2, 1])

    assert count_correct(z2, y) == 2


def test_count_correct_thresholds_single_output_at_zero():
    z2 = np.array([[-0.5], [0.0], [1e-9], [2.0], [-3.0]])
    y = np.array([0, 0, 1, 0, 1])

    # Predicted classes: 0, 0 (0 is not above the threshold), 1, 1, 0.
    assert count_correct(z2, y) == 3


def test_count_correct_is_zero_for_target_matrix():
    z2 = np.array([[0.1, 2.0], [3.0, 0.0]])
    y = np.array([[0.0, 1.0], [1.0, 0.0]])

    assert count_correct(z2, y) == 0


@pytest.mark.parametrize(("output_activation", "loss", "outputs", "kind"), PROBLEMS)
def test_predict_applies_output_activation_to_logits(
    output_activation, loss, outputs, kind
):
    spec = make_spec(output_activation, loss, outputs)
    theta, x, _ = make_batch(spec, kind, seed=13)
    z2 = torch.tensor(forward(spec, theta, x).z2)

    y_hat = predict(spec, theta, x)

    out = {
        "sigmoid": torch.sigmoid,
        "softmax": lambda z: torch.softmax(z, dim=1),
        "identity": lambda z: z,
    }
    expected = out[output_activation](z2).numpy()
    np.testing.assert_allclose(y_hat, expected, rtol=TORCH_RTOL, atol=TORCH_ATOL)


@pytest.mark.parametrize(
    ("output_activation", "loss", "outputs", "kind"), LABEL_PROBLEMS
)
def test_batch_gradient_counts_predictions_that_match_labels(
    output_activation, loss, outputs, kind
):
    spec = make_spec(output_activation, loss, outputs)
    theta, x, y = make_batch(spec, kind, seed=14, batch=50)
    y_hat = predict(spec, theta, x)
    if outputs == 1:
        threshold = 0.0 if output_activation == "identity" else 0.5
        predicted = y_hat[:, 0] > threshold
    else:
        predicted = y_hat.argmax(axis=1)

    correct = batch_gradient(spec, theta, x, y).correct

    assert correct == int((predicted == y).sum())
