"""Forward and backward passes of the two-layer network for one batch.

    z1 = x W1^T + b1        a1 = act(z1)
    z2 = a1 W2^T + b2       y_hat = out(z2)
    L  = loss(y_hat, y)

Shape letters: B batch, D inputs, H hidden, K outputs, P parameters.

Workers return sums over their samples, not means: the parameter server adds
the sums of all workers and divides once by the global sample count, which
gives the exact global mean however unevenly the batch was split. Each
per-sample loss is scaled so that its mean over the batch equals PyTorch's
``reduction="mean"`` (``MSELoss`` and ``BCEWithLogitsLoss`` average over every
element, so their per-sample terms are divided by K).

Everything is computed so that logits of magnitude up to 1e4 neither
overflow nor warn: sigmoid goes through exp(-|z|), softmax and
cross-entropy through log-sum-exp, and binary cross-entropy is computed
from the logits.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from workers.network import Array, NetworkSpec


class BatchResult(NamedTuple):
    """Sums over one worker's slice of a batch."""

    grad_sum: Array  # (P,) sum of per-sample gradients
    loss_sum: float
    correct: int  # correct predictions; 0 when targets are not labels
    count: int
    compute_seconds: float = 0.0  # filled in by the worker actor
    wait_seconds: float = 0.0
    restarts: int = 0  # 1 on a restarted worker's first result


class Cache(NamedTuple):
    """Intermediate values of a forward pass kept for the backward pass."""

    z1: Array
    a1: Array
    z2: Array


# Activations: forward value, then the local derivative expressed through
# the value a = act(z) where that is cheaper and exact.


def sigmoid(z: Array) -> Array:
    """Logistic function, via exp(-|z|) so that no exp overflows."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1, e) / (1 + e)


def softmax(z: Array) -> Array:
    """Row-wise softmax, shifted by the row maximum."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def log_sum_exp(z: Array) -> Array:
    """Row-wise log(sum(exp(z))), shifted by the row maximum."""
    m = z.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]


def hidden_forward(name: str, z1: Array) -> Array:
    """Apply the hidden activation."""
    if name == "sigmoid":
        return sigmoid(z1)
    if name == "tanh":
        return np.tanh(z1)
    return np.maximum(z1, 0)


def hidden_backward(name: str, z1: Array, a1: Array, da1: Array) -> Array:
    """Chain da1 through the hidden activation to dz1."""
    if name == "sigmoid":
        return da1 * a1 * (1 - a1)
    if name == "tanh":
        return da1 * (1 - a1 * a1)
    return da1 * (z1 > 0)


def output_forward(name: str, z2: Array) -> Array:
    """Apply the output activation."""
    if name == "sigmoid":
        return sigmoid(z2)
    if name == "softmax":
        return softmax(z2)
    return z2


def output_backward(name: str, y_hat: Array, dy_hat: Array) -> Array:
    """Chain dy_hat through the output activation to dz2."""
    if name == "sigmoid":
        return dy_hat * y_hat * (1 - y_hat)
    if name == "softmax":
        # Softmax Jacobian-vector product: y_hat * (dy_hat - <dy_hat, y_hat>).
        inner = (dy_hat * y_hat).sum(axis=1, keepdims=True)
        return y_hat * (dy_hat - inner)
    return dy_hat


def target_matrix(y: Array, outputs: int, dtype: np.dtype) -> Array:
    """Targets as a (B, K) float matrix: labels become one-hot rows.

    A single output with integer labels is the binary case: the target is
    the label itself.
    """
    if y.ndim == 2:
        return y.astype(dtype, copy=False)
    if outputs == 1:
        return y.astype(dtype)[:, None]
    T = np.zeros((y.shape[0], outputs), dtype=dtype)  # (B, K)
    T[np.arange(y.shape[0]), y] = 1
    return T


def loss_and_dz2(spec: NetworkSpec, z2: Array, y: Array) -> tuple[float, Array]:
    """Summed loss over the batch and its gradient dz2 with respect to z2."""
    K = spec.outputs
    if spec.loss == "cross_entropy":
        # L_i = logsumexp(z2_i) - z2_i[y_i]; fused gradient softmax - onehot.
        rows = np.arange(z2.shape[0])
        L = float((log_sum_exp(z2) - z2[rows, y]).sum())
        dz2 = softmax(z2)
        dz2[rows, y] -= 1
        return L, dz2

    T = target_matrix(y, K, z2.dtype)  # (B, K)
    if spec.loss == "binary_cross_entropy":
        # max(z, 0) - z t + log(1 + exp(-|z|)): the logits form of
        # -t log s(z) - (1 - t) log(1 - s(z)), finite for any z.
        terms = np.maximum(z2, 0) - z2 * T + np.log1p(np.exp(-np.abs(z2)))
        return float(terms.sum() / K), (sigmoid(z2) - T) / K

    y_hat = output_forward(spec.output_activation, z2)
    residual = y_hat - T  # (B, K)
    L = float((residual * residual).sum() / K)
    dy_hat = 2 * residual / K
    return L, output_backward(spec.output_activation, y_hat, dy_hat)


def forward(spec: NetworkSpec, theta: Array, x: Array) -> Cache:
    """Run the forward pass up to the logits z2."""
    W1, b1, W2, b2 = spec.unflatten(theta)
    z1 = x @ W1.T + b1  # (B, H)
    a1 = hidden_forward(spec.hidden_activation, z1)  # (B, H)
    z2 = a1 @ W2.T + b2  # (B, K)
    return Cache(z1, a1, z2)


def count_correct(z2: Array, y: Array) -> int:
    """Correct predictions for integer labels; 0 for a target matrix."""
    if y.ndim == 2:
        return 0
    predicted = (z2[:, 0] > 0) if z2.shape[1] == 1 else z2.argmax(axis=1)
    return int((predicted == y).sum())


def batch_gradient(spec: NetworkSpec, theta: Array, x: Array, y: Array) -> BatchResult:
    """Summed loss and summed per-sample gradient of one batch.

    x is (B, D) in the spec's dtype; y is (B,) integer labels or a (B, K)
    target matrix. An empty batch gives a zero gradient and count 0.
    """
    grad = np.zeros_like(theta)  # (P,)
    if x.shape[0] == 0:
        return BatchResult(grad, 0.0, 0, 0)

    # Forward.
    z1, a1, z2 = forward(spec, theta, x)
    L, dz2 = loss_and_dz2(spec, z2, y)

    # Backward, written straight into the views of the flat gradient.
    _, _, W2, _ = spec.unflatten(theta)
    dW1, db1, dW2, db2 = spec.unflatten(grad)
    dW2[...] = dz2.T @ a1  # (K, H)
    db2[...] = dz2.sum(axis=0)  # (K,)
    da1 = dz2 @ W2  # (B, H)
    dz1 = hidden_backward(spec.hidden_activation, z1, a1, da1)  # (B, H)
    dW1[...] = dz1.T @ x  # (H, D)
    db1[...] = dz1.sum(axis=0)  # (H,)

    return BatchResult(grad, L, count_correct(z2, y), x.shape[0])


def batch_loss(spec: NetworkSpec, theta: Array, x: Array, y: Array) -> BatchResult:
    """Summed loss and correct count of one batch, without gradients."""
    if x.shape[0] == 0:
        return BatchResult(np.zeros(0, theta.dtype), 0.0, 0, 0)
    z2 = forward(spec, theta, x).z2
    L, _ = loss_and_dz2(spec, z2, y)
    return BatchResult(np.zeros(0, theta.dtype), L, count_correct(z2, y), x.shape[0])


def predict(spec: NetworkSpec, theta: Array, x: Array) -> Array:
    """Network outputs y_hat for a batch of inputs."""
    return output_forward(spec.output_activation, forward(spec, theta, x).z2)
