"""The two-layer network's shape, its flat parameter layout and its initialisation.

Shape letters used across the arithmetic modules: B batch, D inputs,
H hidden, K outputs, P parameters (H*D + H + K*H + K).

The parameters W1 (H, D), b1 (H,), W2 (K, H) and b2 (K,) live as views into
one contiguous vector theta (P,), in that order. The weight layout is the one
of ``torch.nn.Linear.weight``, so weights move to and from PyTorch without
transposes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.floating]

HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu")
OUTPUT_ACTIVATIONS = ("sigmoid", "softmax", "identity")
LOSSES = ("mse", "cross_entropy", "binary_cross_entropy")
DTYPES = ("float32", "float64")

# Losses computed from the logits z2 need one particular output activation.
REQUIRED_OUTPUT = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}


class Params(NamedTuple):
    """Views of W1, b1, W2, b2 into one flat vector."""

    W1: Array
    b1: Array
    W2: Array
    b2: Array


@dataclass(frozen=True)
class NetworkSpec:
    """Sizes, activations, loss and dtype of one two-layer network."""

    inputs: int
    hidden: int
    outputs: int
    hidden_activation: str = "relu"
    output_activation: str = "softmax"
    loss: str = "cross_entropy"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("inputs", "hidden", "outputs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        _check_choice("hidden_activation", self.hidden_activation, HIDDEN_ACTIVATIONS)
        _check_choice("output_activation", self.output_activation, OUTPUT_ACTIVATIONS)
        _check_choice("loss", self.loss, LOSSES)
        _check_choice("dtype", self.dtype, DTYPES)
        required = REQUIRED_OUTPUT.get(self.loss)
        if required and self.output_activation != required:
            raise ValueError(
                f"loss {self.loss} is computed from the logits and needs output "
                f"activation {required}; got {self.output_activation}"
            )

    @property
    def shapes(self) -> Params:
        """Shapes of W1, b1, W2, b2."""
        D, H, K = self.inputs, self.hidden, self.outputs
        return Params((H, D), (H,), (K, H), (K,))

    @property
    def num_parameters(self) -> int:
        """Length P of the flat parameter vector."""
        return sum(math.prod(shape) for shape in self.shapes)

    def unflatten(self, theta: Array) -> Params:
        """Return W1, b1, W2, b2 as views into theta (no copies)."""
        if theta.shape != (self.num_parameters,):
            raise ValueError(
                f"flat parameters have shape {theta.shape}; this network needs "
                f"({self.num_parameters},)"
            )
        views = []
        offset = 0
        for shape in self.shapes:
            size = math.prod(shape)
            views.append(theta[offset : offset + size].reshape(shape))
            offset += size
        return Params(*views)

    def flatten(self, params: Params) -> Array:
        """Pack W1, b1, W2, b2 into a new flat vector of this spec's dtype."""
        for name, value, shape in zip(Params._fields, params, self.shapes, strict=True):
            if np.shape(value) != shape:
                raise ValueError(
                    f"{name} has shape {np.shape(value)}; this network needs {shape}"
                )
        parts = [np.asarray(value, dtype=self.dtype).ravel() for value in params]
        return np.concatenate(parts)


def init_parameters(spec: NetworkSpec, seed: int) -> Array:
    """Draw flat parameters the way ``torch.nn.Linear`` initialises by default.

    Weights and biases of a layer with fan-in n are uniform on
    [-1/sqrt(n), 1/sqrt(n)] (Kaiming-uniform with a = sqrt(5)), drawn from a
    numpy generator seeded with ``seed``.
    """
    rng = np.random.default_rng(seed)
    theta = np.empty(spec.num_parameters, dtype=spec.dtype)
    W1, b1, W2, b2 = spec.unflatten(theta)
    for weight, bias in ((W1, b1), (W2, b2)):
        bound = 1.0 / math.sqrt(weight.shape[1])
        weight[...] = rng.uniform(-bound, bound, size=weight.shape)
        bias[...] = rng.uniform(-bound, bound, size=bias.shape)
    return theta


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
