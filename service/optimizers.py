"""Optimizers that update one flat parameter vector in place.

Each class follows the update rule that the PyTorch documentation gives for
the ``torch.optim`` class of the same name, so a run matches ``torch.optim``
step for step. Symbols: theta parameters, g gradient, t step count (from 1),
eta learning rate, lambda weight decay.

State (moments, step count) is a dictionary of arrays that a checkpoint
stores and ``load_state_dict`` restores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from workers.network import Array

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")


class SettingError(ValueError):
    """A hyperparameter is invalid; ``field`` names it, ``reason`` says why.

    The message is the field followed by the reason, so it reads on its own
    while callers that report fields separately need not parse it.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class OptimizerConfig:
    """Hyperparameters of every optimizer; each reads the ones it uses."""

    name: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    amsgrad: bool = False
    alpha: float = 0.99
    centered: bool = False

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise SettingError(
                "optimizer",
                f"must be one of {', '.join(OPTIMIZERS)}; got {self.name!r}",
            )
        _check_range("lr", self.lr, low=0.0, low_open=True)
        _check_range("weight_decay", self.weight_decay, low=0.0)
        _check_range("momentum", self.momentum, low=0.0)
        _check_range("dampening", self.dampening, low=0.0, high=1.0)
        _check_range("eps", self.eps, low=0.0)
        _check_range("alpha", self.alpha, low=0.0, high=1.0, high_open=True)
        if len(self.betas) != 2:
            raise SettingError("betas", f"must be two numbers; got {self.betas!r}")
        for beta in self.betas:
            _check_range("betas", beta, low=0.0, high=1.0, high_open=True)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise SettingError(
                "nesterov",
                "needs momentum > 0 and dampening 0; got "
                f"momentum {self.momentum} and dampening {self.dampening}",
            )


class Optimizer:
    """Base class: hyperparameters, a step count and named state arrays."""

    state_names: tuple[str, ...] = ()

    def __init__(self, config: OptimizerConfig, size: int, dtype: str) -> None:
        self.config = config
        self.t = 0
        self.state = {name: np.zeros(size, dtype=dtype) for name in self.state_names}

    def step(self, theta: Array, g: Array) -> None:
        """Apply one update to theta in place, given the mean gradient g."""
        self.t += 1
        self._update(theta, g)

    def _update(self, theta: Array, g: Array) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Array | int]:
        """Copies of the state arrays and the step count."""
        state: dict[str, Array | int] = {k: v.copy() for k, v in self.state.items()}
        state["t"] = self.t
        return state

    def load_state_dict(self, state: dict[str, Array | int]) -> None:
        """Restore state saved by ``state_dict``."""
        missing = set(self.state_names) - set(state)
        if missing or "t" not in state:
            raise ValueError(
                f"optimizer state lacks {sorted(missing) or ['t']} for "
                f"{self.config.name}"
            )
        # Check every array before copying any, so a bad state changes nothing.
        for name in self.state_names:
            shape = np.shape(state[name])
            if shape != self.state[name].shape:
                raise ValueError(
                    f"optimizer state {name} has shape {shape}; "
                    f"expected {self.state[name].shape}"
                )
        for name in self.state_names:
            self.state[name][...] = state[name]
        self.t = int(state["t"])


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD``.

    g <- g + lambda theta;  with momentum mu:
    b <- g at t = 1, else mu b + (1 - dampening) g;
    g <- g + mu b (nesterov) or b;  theta <- theta - eta g.
    """

    state_names = ("momentum_buffer",)

    def _update(self, theta: Array, g: Array) -> None:
        c = self.config
        if c.weight_decay:
            g = g + c.weight_decay * theta
        if c.momentum:
            b = self.state["momentum_buffer"]
            if self.t == 1:
                b[...] = g
            else:
                b *= c.momentum
                b += (1 - c.dampening) * g
            g = g + c.momentum * b if c.nesterov else b
        theta -= c.lr * g


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015), as ``torch.optim.Adam``.

    g <- g + lambda theta;  m <- beta1 m + (1 - beta1) g;
    v <- beta2 v + (1 - beta2) g^2;  v_max <- max(v_max, v) with amsgrad;
    theta <- theta - eta m / (1 - beta1^t) / (sqrt(v / (1 - beta2^t)) + eps).
    """

    state_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def _decay(self, theta: Array, g: Array) -> Array:
        # Adam's L2 penalty goes into the gradient; AdamW overrides this.
        wd = self.config.weight_decay
        return g + wd * theta if wd else g

    def _update(self, theta: Array, g: Array) -> None:
        c = self.config
        beta1, beta2 = c.betas
        g = self._decay(theta, g)
        m = self.state["exp_avg"]
        v = self.state["exp_avg_sq"]
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        if c.amsgrad:
            np.maximum(
                self.state["max_exp_avg_sq"], v, out=self.state["max_exp_avg_sq"]
            )
            v = self.state["max_exp_avg_sq"]
        step_size = c.lr / (1 - beta1**self.t)
        denominator = np.sqrt(v) / math.sqrt(1 - beta2**self.t) + c.eps
        theta -= step_size * m / denominator


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter, 2019).

    As ``torch.optim.AdamW``: theta <- theta (1 - eta lambda) before the
    Adam update, which then sees the raw gradient.
    """

    def _decay(self, theta: Array, g: Array) -> Array:
        theta *= 1 - self.config.lr * self.config.weight_decay
        return g


class RMSprop(Optimizer):
    """RMSprop (Hinton, 2012), as ``torch.optim.RMSprop``.

    g <- g + lambda theta;  v <- alpha v + (1 - alpha) g^2;
    centered: g_avg <- alpha g_avg + (1 - alpha) g, v~ = v - g_avg^2;
    with momentum mu: b <- mu b + g / (sqrt(v~) + eps), theta <- theta - eta b;
    else theta <- theta - eta g / (sqrt(v~) + eps).
    """

    state_names = ("square_avg", "grad_avg", "momentum_buffer")

    def _update(self, theta: Array, g: Array) -> None:
        c = self.config
        if c.weight_decay:
            g = g + c.weight_decay * theta
        v = self.state["square_avg"]
        v *= c.alpha
        v += (1 - c.alpha) * g * g
        if c.centered:
            g_avg = self.state["grad_avg"]
            g_avg *= c.alpha
            g_avg += (1 - c.alpha) * g
            denominator = np.sqrt(v - g_avg * g_avg) + c.eps
        else:
            denominator = np.sqrt(v) + c.eps
        if c.momentum:
            b = self.state["momentum_buffer"]
            b *= c.momentum
            b += g / denominator
            theta -= c.lr * b
        else:
            theta -= c.lr * g / denominator


_CLASSES: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
}


def make_optimizer(config: OptimizerConfig, size: int, dtype: str) -> Optimizer:
    """Build the optimizer that ``config.name`` names for P = size parameters."""
    return _CLASSES[config.name](config, size, dtype)


def _check_range(
    name: str,
    value: float,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise SettingError unless value is a finite number in the given range."""
    ok = isinstance(value, (int, float)) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        if high is None:
            bounds = f"{'>' if low_open else '>='} {low:g}"
        else:
            left = "(" if low_open else "["
            right = ")" if high_open else "]"
            bounds = f"in {left}{low:g}, {high:g}{right}"
        raise SettingError(name, f"must be a finite number {bounds}; got {value!r}")
