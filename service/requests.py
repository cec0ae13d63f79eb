"""Translation between the gRPC TrainingRequest and the TrainConfig of a run.

Enum values map to the names the command line uses; unset optional fields
take the command line's defaults; every error names the request field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from service.config import ConfigError, TrainConfig, build_config
from service.data import BUILTIN_DATASETS, DataError
from service.errors import CapacityError
from service.limits import Limits
from service.proto import trainer_pb2 as pb

HIDDEN_ACTIVATIONS = {
    pb.HIDDEN_ACTIVATION_RELU: "relu",
    pb.HIDDEN_ACTIVATION_SIGMOID: "sigmoid",
    pb.HIDDEN_ACTIVATION_TANH: "tanh",
}
OUTPUT_ACTIVATIONS = {
    pb.OUTPUT_ACTIVATION_SOFTMAX: "softmax",
    pb.OUTPUT_ACTIVATION_SIGMOID: "sigmoid",
    pb.OUTPUT_ACTIVATION_IDENTITY: "identity",
}
LOSSES = {
    pb.LOSS_MSE: "mse",
    pb.LOSS_CROSS_ENTROPY: "cross_entropy",
    pb.LOSS_BINARY_CROSS_ENTROPY: "binary_cross_entropy",
}
OPTIMIZERS = {
    pb.OPTIMIZER_KIND_SGD: "sgd",
    pb.OPTIMIZER_KIND_ADAM: "adam",
    pb.OPTIMIZER_KIND_ADAMW: "adamw",
    pb.OPTIMIZER_KIND_RMSPROP: "rmsprop",
}
COMPUTE_DTYPES = {pb.DTYPE_FLOAT32: "float32", pb.DTYPE_FLOAT64: "float64"}

# Where each TrainConfig setting lives in a SubmitJobRequest.
OPTIMIZER_FIELDS = (
    "lr",
    "momentum",
    "dampening",
    "nesterov",
    "weight_decay",
    "betas",
    "eps",
    "amsgrad",
    "alpha",
    "centered",
)
FIELD_PATHS = {name: f"request.optimizer.{name}" for name in OPTIMIZER_FIELDS}
FIELD_PATHS.update(
    dataset="request.data",
    target_column="request.data.target_column",
    optimizer="request.optimizer.kind",
)

# Resolves a DataSource (or initial Parameters) to a file the run reads.
DataResolver = Callable[[pb.TrainingRequest], dict[str, str]]


def field_path(name: str) -> str:
    """The request field that carries a TrainConfig setting."""
    if name.startswith("request"):
        return name
    return FIELD_PATHS.get(name, f"request.{name}")


def config_from_request(
    request: pb.TrainingRequest, limits: Limits, resolve_files: DataResolver
) -> TrainConfig:
    """Check a request against the limits and build its TrainConfig.

    ``resolve_files`` turns the data source and initial parameters into
    file paths (``dataset`` and, if given, ``init``).
    """
    if request.mode not in (pb.MODE_UNSPECIFIED, pb.MODE_SYNC):
        raise DataError(
            "request.mode",
            f"{_enum_name(pb.Mode, request.mode)} is not available yet; use MODE_SYNC",
        )
    settings: dict[str, Any] = {}
    _take_enum(settings, "hidden_activation", request, HIDDEN_ACTIVATIONS)
    _take_enum(settings, "output_activation", request, OUTPUT_ACTIVATIONS)
    _take_enum(settings, "loss", request, LOSSES)
    _take_enum(settings, "dtype", request, COMPUTE_DTYPES)
    for name in ("val_fraction", "shuffle", "hidden", "epochs", "batch_size"):
        if request.HasField(name):
            settings[name] = getattr(request, name)
    for name in ("workers", "seed", "checkpoint_interval"):
        if request.HasField(name):
            settings[name] = getattr(request, name)
    if request.standardize:
        settings["standardize"] = True
    _check_limit("hidden", settings.get("hidden"), limits.max_hidden)
    _check_limit("workers", settings.get("workers"), limits.max_workers)
    _check_limit("epochs", settings.get("epochs"), limits.max_epochs)

    optimizer = request.optimizer
    _take_enum(settings, "optimizer", optimizer, OPTIMIZERS, field="kind")
    for name in ("lr", "momentum", "dampening", "weight_decay", "eps", "alpha"):
        if optimizer.HasField(name):
            settings[name] = getattr(optimizer, name)
    for name in ("nesterov", "amsgrad", "centered"):
        if getattr(optimizer, name):
            settings[name] = True
    if optimizer.betas:
        settings["betas"] = tuple(optimizer.betas)
    if request.data.target_column:
        settings["target_column"] = request.data.target_column

    source = request.data.WhichOneof("source")
    if source is None:
        raise DataError(
            "request.data",
            "is required: set builtin, path, dataset_id or inline",
        )
    if source == "builtin" and request.data.builtin not in BUILTIN_DATASETS:
        raise DataError(
            "request.data.builtin",
            f"must be one of {', '.join(BUILTIN_DATASETS)}; "
            f"got {request.data.builtin!r}",
        )
    settings.update(resolve_files(request))
    try:
        return build_config(**settings)
    except ConfigError as error:
        raise DataError(field_path(error.field), str(error)) from None


def _take_enum(
    settings: dict[str, Any],
    name: str,
    message: Any,
    names: dict[int, str],
    field: str | None = None,
) -> None:
    field = field or name
    value = getattr(message, field)
    if value == 0:
        return
    if value not in names:
        enum = message.DESCRIPTOR.fields_by_name[field].enum_type
        allowed = ", ".join(enum.values_by_number[v].name for v in names)
        raise DataError(
            field_path(name), f"unknown value {value}; use one of {allowed}"
        )
    settings[name] = names[value]


def _check_limit(name: str, value: int | None, limit: int) -> None:
    if value is not None and value > limit:
        raise CapacityError(
            field_path(name), f"is {value}; this server allows at most {limit}"
        )


def _enum_name(enum: Any, value: int) -> str:
    try:
        return enum.Name(value)
    except ValueError:
        return f"value {value}"


def request_from_settings(
    settings: dict[str, Any], upload: Callable[[str], str]
) -> pb.TrainingRequest:
    """Build a TrainingRequest from command-line settings.

    A bundled data set travels by name; a local file is sent with
    ``upload`` (which returns its data set id); initial weights from an
    ``init`` file travel as tensors.
    """
    from service.tensors import to_tensor
    from service.weights import read_weights

    request = pb.TrainingRequest()
    dataset = settings.get("dataset", "digits")
    if dataset in BUILTIN_DATASETS:
        request.data.builtin = dataset
    else:
        request.data.dataset_id = upload(dataset)
    if settings.get("target_column"):
        request.data.target_column = settings["target_column"]
    for name, names in (
        ("hidden_activation", HIDDEN_ACTIVATIONS),
        ("output_activation", OUTPUT_ACTIVATIONS),
        ("loss", LOSSES),
        ("dtype", COMPUTE_DTYPES),
    ):
        if settings.get(name) is not None:
            setattr(request, name, _code(names, settings[name]))
    for name in (
        "val_fraction",
        "shuffle",
        "hidden",
        "epochs",
        "batch_size",
        "workers",
        "seed",
        "checkpoint_interval",
    ):
        if settings.get(name) is not None:
            setattr(request, name, settings[name])
    request.standardize = bool(settings.get("standardize"))

    optimizer = request.optimizer
    if settings.get("optimizer"):
        optimizer.kind = _code(OPTIMIZERS, settings["optimizer"])
    for name in OPTIMIZER_FIELDS:
        value = settings.get(name)
        if value is None or value is False:
            continue
        if name == "betas":
            optimizer.betas.extend(value)
        else:
            setattr(optimizer, name, value)
    if settings.get("init"):
        W1, b1, W2, b2 = read_weights(settings["init"])  # noqa: N806
        request.init.w1.CopyFrom(to_tensor(W1))
        request.init.b1.CopyFrom(to_tensor(b1))
        request.init.w2.CopyFrom(to_tensor(W2))
        request.init.b2.CopyFrom(to_tensor(b2))
    return request


def _code(names: dict[int, str], value: str) -> int:
    for code, name in names.items():
        if name == value:
            return code
    raise ConfigError("request", f"unknown value {value!r}")
