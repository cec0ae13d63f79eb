"""Turn a TrainConfig into a checked run plan before any actor starts.

Everything a user can get wrong (data, shapes, option combinations) is found
here, so a bad request fails in milliseconds with one clear message and
never leaves a half-started cluster behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from service.config import DEFAULT_HIDDEN, ConfigError, TrainConfig
from service.data import (
    DataError,
    Dataset,
    Standardizer,
    load_dataset,
    split_indices,
)
from service.errors import CapacityError
from service.optimizers import OptimizerConfig
from service.weights import read_weights, unfold_standardizer
from workers.network import (
    REQUIRED_OUTPUT,
    Array,
    NetworkSpec,
    Params,
    init_parameters,
)

GIB = 1 << 30

# Flat P-sized arrays a run holds at once: theta, the mean gradient, up to
# three optimizer state vectors, the copy published to the object store and
# the gradients in flight from the workers.
MEMORY_COPIES = 8

# Share of the machine's physical memory the parameters of one run may
# take; the rest is left for the data, Ray and everything else.
MEMORY_SHARE = 0.5


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


def prepare(config: TrainConfig, max_tensor_elements: int | None = None) -> RunPlan:
    """Load the data and resolve every inferred setting of config.

    A server passes its ``max_tensor_elements``: a network whose W1 or W2
    would be larger is refused before its parameters are allocated.
    """
    dataset = load_dataset(config.dataset, config.target_column, max_tensor_elements)
    train_rows, val_rows = split_indices(
        len(dataset.x), config.val_fraction, config.seed
    )
    standardizer = (
        Standardizer.fit(dataset.x[train_rows]) if config.standardize else None
    )
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
    hidden_field = "init" if initial and not config.hidden else "hidden"

    # Every size and setting NetworkSpec checks has been checked above, or
    # by TrainConfig and read_weights, under the field it came from.
    spec = NetworkSpec(
        inputs=inputs,
        hidden=hidden,
        outputs=outputs,
        hidden_activation=config.hidden_activation,
        output_activation=output_activation,
        loss=loss,
        dtype=config.dtype,
    )
    if max_tensor_elements is not None:
        _check_network_size(spec, dataset, max_tensor_elements)
    _check_memory(spec, hidden_field)

    if initial is None:
        theta0 = init_parameters(spec, config.seed)
    else:
        _check_initial_shapes(initial, spec, dataset)
        if standardizer is not None:
            initial = unfold_standardizer(initial, standardizer)
        theta0 = spec.flatten(initial)

    # Cast before splitting, so an overflow is reported at its row in the
    # data set rather than in a shuffled split.
    data = _in_dtype(dataset, standardizer, config.dtype)
    train = data if val_rows is None else data.subset(train_rows)
    val = None if val_rows is None else data.subset(val_rows)

    return RunPlan(
        config=config,
        spec=spec,
        optimizer=config.optimizer_config(),
        train=train,
        val=val,
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

    required = REQUIRED_OUTPUT.get(loss)
    if required and output != required:
        raise ConfigError(
            "output_activation",
            f"loss {loss} is computed from the logits and needs output "
            f"activation {required}; got {output}",
        )
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


def _check_network_size(spec: NetworkSpec, dataset: Dataset, max_elements: int) -> None:
    # A few bytes of labels such as [0, 2**40] would otherwise ask for a
    # W2 of 2**40 rows.
    for name, (rows, columns) in (("W1", spec.shapes.W1), ("W2", spec.shapes.W2)):
        if rows * columns <= max_elements:
            continue
        if name == "W2" and dataset.has_labels:
            field = "dataset"
            cause = f"labels up to {rows - 1} need {rows} outputs, so "
        else:
            field = "hidden"
            cause = ""
        raise CapacityError(
            field,
            f"{cause}{name} would have shape ({rows}, {columns}), "
            f"{rows * columns} elements; this server accepts at most {max_elements}",
        )


def _check_memory(spec: NetworkSpec, field: str) -> None:
    """Refuse a network whose parameters would not fit in memory."""
    physical = _physical_memory_bytes()
    if physical is None:
        return
    budget = int(physical * MEMORY_SHARE)
    itemsize = np.dtype(spec.dtype).itemsize
    bytes_per_parameter = itemsize * MEMORY_COPIES
    needed = spec.num_parameters * bytes_per_parameter
    if needed <= budget:
        return

    # P = H (D + 1 + K) + K, solved for the largest H within the budget.
    inputs, outputs = spec.inputs, spec.outputs
    max_hidden = (budget // bytes_per_parameter - outputs) // (inputs + 1 + outputs)
    fits = (
        f"hidden up to {max_hidden:,} fits"
        if max_hidden >= 1
        else f"not even hidden 1 fits with {outputs:,} outputs"
    )
    raise ConfigError(
        field,
        f"hidden {spec.hidden:,} with {inputs:,} inputs and {outputs:,} outputs makes "
        f"{spec.num_parameters:,} parameters, about {needed / GIB:,.1f} GiB "
        f"for the run ({MEMORY_COPIES} copies of each {itemsize}-byte "
        f"{spec.dtype}); this machine allows {budget / GIB:,.1f} GiB "
        f"({MEMORY_SHARE:.0%} of its memory), so {fits}",
    )


def _physical_memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        # Windows has no sysconf, and some systems do not report the
        # figure; the check is then left to the allocator.
        return None


def _in_dtype(
    dataset: Dataset, standardizer: Standardizer | None, dtype: str
) -> Dataset:
    """The data set's inputs (standardised) and float targets in the dtype."""
    x = dataset.x if standardizer is None else standardizer.apply(dataset.x)
    x_run = _cast_finite("x", x, dtype)
    y = dataset.y if dataset.has_labels else _cast_finite("y", dataset.y, dtype)
    return Dataset(dataset.name, x_run, y)


def _cast_finite(name: str, values: Array, dtype: str) -> Array:
    """Cast finite float64 values to dtype, refusing any that overflow it."""
    # The overflow is reported below with its position, not as a warning.
    with np.errstate(over="ignore"):
        cast = np.ascontiguousarray(values, dtype=dtype)
    bad = np.argwhere(~np.isfinite(cast))
    if len(bad):
        row, column = (int(i) for i in bad[0])
        raise DataError(
            "dataset",
            f"{name} at row {row}, column {column}: {values[row, column]:g} "
            f"overflows {dtype}, which holds at most {np.finfo(dtype).max:.4g} "
            f"({len(bad)} of {values.size} values overflow); use --dtype "
            "float64 or rescale",
        )
    return cast


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
