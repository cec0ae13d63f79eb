"""Training configuration: the settings of one job, their defaults and checks.

The same names are used by the command line (with dashes), by configuration
files (YAML or JSON, dashes or underscores) and by the gRPC request.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from service.data import DataError
from service.optimizers import OPTIMIZERS, OptimizerConfig, SettingError
from workers.network import DTYPES, HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS

DEFAULT_HIDDEN = 64

# Learning rates that train the bundled data sets well with default settings.
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3}

# torch.optim.AdamW decays by default; the others do not.
DEFAULT_WEIGHT_DECAY = {"sgd": 0.0, "adam": 0.0, "adamw": 0.01, "rmsprop": 0.0}

# Options that only some optimizers read; setting one for another optimizer
# is a mistake worth reporting rather than ignoring.
OPTIMIZER_OPTIONS = {
    "momentum": ("sgd", "rmsprop"),
    "dampening": ("sgd",),
    "nesterov": ("sgd",),
    "betas": ("adam", "adamw"),
    "amsgrad": ("adam", "adamw"),
    "alpha": ("rmsprop",),
    "centered": ("rmsprop",),
}


class ConfigError(DataError):
    """A setting is invalid; ``field`` names it and the message says why."""


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of one training run; None means "infer a default"."""

    dataset: str = "digits"
    target_column: str | None = None
    hidden: int | None = None
    hidden_activation: str = "relu"
    output_activation: str | None = None
    loss: str | None = None
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    weight_decay: float | None = None
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    amsgrad: bool = False
    alpha: float = 0.99
    centered: bool = False
    epochs: int = 20
    batch_size: int = 64
    workers: int = 2
    seed: int = 0
    checkpoint_interval: int | None = None
    dtype: str = "float32"
    shuffle: bool = True
    val_fraction: float = 0.2
    standardize: bool = False
    init: str | None = None
    save: str | None = None
    summary: str | None = None
    checkpoint: str | None = None
    resume: bool = False
    ray_address: str | None = None
    explicit: frozenset[str] = field(default=frozenset(), compare=False)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "workers"):
            _check_int(name, getattr(self, name), minimum=1)
        for name in ("hidden", "checkpoint_interval"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), minimum=1)
        _check_int("seed", self.seed, minimum=0)
        _check_choice("hidden_activation", self.hidden_activation, HIDDEN_ACTIVATIONS)
        if self.output_activation is not None:
            _check_choice(
                "output_activation", self.output_activation, OUTPUT_ACTIVATIONS
            )
        if self.loss is not None:
            _check_choice("loss", self.loss, LOSSES)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("dtype", self.dtype, DTYPES)
        for name, allowed in OPTIMIZER_OPTIONS.items():
            if name in self.explicit and self.optimizer not in allowed:
                raise ConfigError(
                    name,
                    f"applies to optimizer {' and '.join(allowed)}, not "
                    f"{self.optimizer}; remove it or change --optimizer",
                )
        try:
            self.optimizer_config()
        except SettingError as error:
            raise ConfigError(error.field, error.reason) from None

    def optimizer_config(self) -> OptimizerConfig:
        """Optimizer hyperparameters with the per-optimizer defaults filled in."""
        return OptimizerConfig(
            name=self.optimizer,
            lr=DEFAULT_LR[self.optimizer] if self.lr is None else self.lr,
            momentum=self.momentum,
            dampening=self.dampening,
            nesterov=self.nesterov,
            weight_decay=(
                DEFAULT_WEIGHT_DECAY[self.optimizer]
                if self.weight_decay is None
                else self.weight_decay
            ),
            betas=tuple(self.betas),
            eps=self.eps,
            amsgrad=self.amsgrad,
            alpha=self.alpha,
            centered=self.centered,
        )

    def to_dict(self) -> dict[str, Any]:
        """Settings as plain JSON-ready values."""
        values = dataclasses.asdict(self)
        values.pop("explicit")
        values["betas"] = list(self.betas)
        return values


FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
FIELD_TYPES.pop("explicit")


def build_config(**settings: Any) -> TrainConfig:
    """Make a TrainConfig from named settings, checking each value's type.

    The names given are remembered as explicit, so that options that do not
    apply to the chosen optimizer are reported.
    """
    values = {}
    for name, value in settings.items():
        values[name] = _coerce(name, value)
    return TrainConfig(**values, explicit=frozenset(values))


def load_config_file(path: str) -> dict[str, Any]:
    """Read a YAML or JSON mapping of settings; keys may use - or _.

    Each value is checked against its setting's type here, so an error
    names the key as the file spells it and the file.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError("config", f"file {path!r} does not exist")
    try:
        text = file.read_text(encoding="utf-8")
        data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        reason = str(error).splitlines()[0]
        raise ConfigError("config", f"cannot parse {path}: {reason}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            "config",
            f"{path} holds a {type(data).__name__} ({_preview(data)}); it must "
            "hold a mapping of option: value, such as 'epochs: 5'",
        )
    settings = {}
    for key, value in data.items():
        written = str(key).replace("-", "_")
        name = "shuffle" if written == "no_shuffle" else written
        if name not in FIELD_TYPES:
            raise ConfigError(
                "config",
                f"{path} has unknown option {key!r}; see gradpool train --help",
            )
        try:
            value = _coerce(name, value)
        except ConfigError as error:
            # Reported under the key the file uses: no_shuffle, not shuffle.
            raise ConfigError(written, f"{error} (in {path})") from None
        settings[name] = not value if written == "no_shuffle" else value
    return settings


def _coerce(name: str, value: Any) -> Any:
    """Check a setting's value against its declared type."""
    if name not in FIELD_TYPES:
        raise ConfigError(name, "is not a training option")
    kind = FIELD_TYPES[name]
    if value is None and "None" in kind:
        return None
    if kind.startswith("bool"):
        if not isinstance(value, bool):
            raise ConfigError(name, f"must be true or false; got {value!r}")
        return value
    if kind.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(name, f"must be an integer; got {value!r}")
        return value
    if kind.startswith("float"):
        return _coerce_float(name, value)
    if kind.startswith("tuple"):
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ConfigError(name, f"must be two numbers; got {value!r}")
        return tuple(_coerce_float(name, v) for v in value)
    if (
        name == "target_column"
        and isinstance(value, int)
        and not isinstance(value, bool)
    ):
        # A column index written unquoted in YAML or JSON is an integer.
        return str(value)
    if not isinstance(value, str):
        raise ConfigError(name, f"must be a string; got {value!r}")
    return value


def _coerce_float(name: str, value: Any) -> float:
    """A number, or a string that reads as one, as a float.

    YAML 1.1 reads 1e-3 (no decimal point) as a string, so strings are
    parsed; nan and inf pass here and the range checks name them.
    """
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ConfigError(name, f"must be a number; got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(name, f"must be a number; got {value!r}")
    return float(value)


def _preview(value: Any) -> str:
    """A short repr of a value for a message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_int(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(
            name, f"must be an integer of at least {minimum}; got {value!r}"
        )


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(name, f"must be one of {', '.join(allowed)}; got {value!r}")
