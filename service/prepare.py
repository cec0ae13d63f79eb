"""Turn a TrainConfig into a checked run plan before any actor starts.

Everything a user can get wrong (data, shapes, option combinations) is found
here, so a bad request fails in milliseconds with one clear message and
never leaves a half-started cluster behind.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.config import DEFAULT_HIDDEN, ConfigError, TrainConfig
from service.data import Dataset, Standardizer, load_dataset, train_val_split
from service.optimizers import OptimizerConfig
from service.weights import read_weights, unfold_standardizer
from workers.network import (
    REQUIRED_OUTPUT,
    Array,
    NetworkSpec,
    Params,
    init_parameters,
)


@dataclass(frozen=True)
class RunPlan:
    """A checked run: network, data in the run's dtype, initial parameters."""

    config: TrainConfig
    spec: NetworkSpec
    optimizer: OptimizerConfig
    train: Dataset
    val: Dataset | None
    standardizer: Standardizer | None
    theta0: Array  # (P,)


def prepare(config: TrainConfig) -> RunPlan:
    """Load the data and resolve every inferred setting of config."""
    dataset = load_dataset(config.dataset, config.target_column)
    train, val = train_val_split(dataset, config.val_fraction, config.seed)
    standardizer = Standardizer.fit(train.x) if config.standardize else None
    initial = read_weights(config.init) if config.init else None
    output_activation, loss = _resolve_output_and_loss(config, dataset)

    if dataset.has_labels:
        if len(np.unique(dataset.y)) < 2:
            raise ConfigError(
                "dataset", f"all labels are {dataset.y[0]}; training needs two classes"
            )
        binary = loss == "binary_cross_entropy" and dataset.num_classes <= 2
        outputs = 1 if binary else dataset.num_classes
    else:
        outputs = dataset.y.shape[1]
    inputs = dataset.x.shape[1]
    hidden = config.hidden or (initial.W1.shape[0] if initial else DEFAULT_HIDDEN)

    try:
        spec = NetworkSpec(
            inputs=inputs,
            hidden=hidden,
            outputs=outputs,
            hidden_activation=config.hidden_activation,
            output_activation=output_activation,
            loss=loss,
            dtype=config.dtype,
        )
    except ValueError as error:
        raise ConfigError("loss", str(error)) from None

    if initial is None:
        theta0 = init_parameters(spec, config.seed)
    else:
        _check_initial_shapes(initial, spec, dataset)
        if standardizer is not None:
            initial = unfold_standardizer(initial, standardizer)
        theta0 = spec.flatten(initial)

    def in_dtype(part: Dataset) -> Dataset:
        x = part.x if standardizer is None else standardizer.apply(part.x)
        y = part.y if part.has_labels else part.y.astype(config.dtype)
        return Dataset(part.name, np.ascontiguousarray(x, dtype=config.dtype), y)

    return RunPlan(
        config=config,
        spec=spec,
        optimizer=config.optimizer_config(),
        train=in_dtype(train),
        val=in_dtype(val) if val is not None else None,
        standardizer=standardizer,
        theta0=theta0,
    )


def _resolve_output_and_loss(config: TrainConfig, dataset: Dataset) -> tuple[str, str]:
    """Infer the output activation and loss from each other and from y."""
    labels = dataset.has_labels
    output, loss = config.output_activation, config.loss
    if loss is None:
        if output == "sigmoid" and labels:
            loss = "binary_cross_entropy"
        elif output in (None, "softmax") and labels:
            loss = "cross_entropy"
        else:
            loss = "mse"
    if output is None:
        output = REQUIRED_OUTPUT.get(loss) or ("softmax" if labels else "identity")

    if loss == "cross_entropy" and not labels:
        raise ConfigError(
            "loss",
            "cross_entropy needs integer class labels, but the data set has a "
            "float target matrix; use mse or binary_cross_entropy",
        )
    out_of_range = not labels and (dataset.y.min() < 0 or dataset.y.max() > 1)
    if loss == "binary_cross_entropy" and out_of_range:
        raise ConfigError(
            "loss",
            "binary_cross_entropy needs targets in [0, 1]; the data set's "
            f"range from {dataset.y.min():g} to {dataset.y.max():g}",
        )
    return output, loss


def _check_initial_shapes(initial: Params, spec: NetworkSpec, dataset: Dataset) -> None:
    for name, value, shape in zip(Params._fields, initial, spec.shapes, strict=True):
        if value.shape == shape:
            continue
        if name == "W2" and value.shape[0] != shape[0] and dataset.has_labels:
            reason = (
                f"{value.shape[0]} outputs, but the data set has labels up to "
                f"{dataset.num_classes - 1}, so the network needs {shape[0]}"
            )
        else:
            reason = (
                f"shape {value.shape}, but {spec.inputs} input features and "
                f"hidden {spec.hidden} need {shape}"
            )
        raise ConfigError("init", f"{name} in the file has {reason}")
