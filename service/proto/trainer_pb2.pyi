import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DTYPE_UNSPECIFIED: _ClassVar[DType]
    DTYPE_FLOAT32: _ClassVar[DType]
    DTYPE_FLOAT64: _ClassVar[DType]
    DTYPE_INT32: _ClassVar[DType]
    DTYPE_INT64: _ClassVar[DType]

class HiddenActivation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HIDDEN_ACTIVATION_UNSPECIFIED: _ClassVar[HiddenActivation]
    HIDDEN_ACTIVATION_RELU: _ClassVar[HiddenActivation]
    HIDDEN_ACTIVATION_SIGMOID: _ClassVar[HiddenActivation]
    HIDDEN_ACTIVATION_TANH: _ClassVar[HiddenActivation]

class OutputActivation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTPUT_ACTIVATION_UNSPECIFIED: _ClassVar[OutputActivation]
    OUTPUT_ACTIVATION_SOFTMAX: _ClassVar[OutputActivation]
    OUTPUT_ACTIVATION_SIGMOID: _ClassVar[OutputActivation]
    OUTPUT_ACTIVATION_IDENTITY: _ClassVar[OutputActivation]

class Loss(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOSS_UNSPECIFIED: _ClassVar[Loss]
    LOSS_MSE: _ClassVar[Loss]
    LOSS_CROSS_ENTROPY: _ClassVar[Loss]
    LOSS_BINARY_CROSS_ENTROPY: _ClassVar[Loss]

class OptimizerKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPTIMIZER_KIND_UNSPECIFIED: _ClassVar[OptimizerKind]
    OPTIMIZER_KIND_SGD: _ClassVar[OptimizerKind]
    OPTIMIZER_KIND_ADAM: _ClassVar[OptimizerKind]
    OPTIMIZER_KIND_ADAMW: _ClassVar[OptimizerKind]
    OPTIMIZER_KIND_RMSPROP: _ClassVar[OptimizerKind]

class Mode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODE_UNSPECIFIED: _ClassVar[Mode]
    MODE_SYNC: _ClassVar[Mode]
    MODE_ASYNC: _ClassVar[Mode]
    MODE_SSP: _ClassVar[Mode]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_PENDING: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]
DTYPE_UNSPECIFIED: DType
DTYPE_FLOAT32: DType
DTYPE_FLOAT64: DType
DTYPE_INT32: DType
DTYPE_INT64: DType
HIDDEN_ACTIVATION_UNSPECIFIED: HiddenActivation
HIDDEN_ACTIVATION_RELU: HiddenActivation
HIDDEN_ACTIVATION_SIGMOID: HiddenActivation
HIDDEN_ACTIVATION_TANH: HiddenActivation
OUTPUT_ACTIVATION_UNSPECIFIED: OutputActivation
OUTPUT_ACTIVATION_SOFTMAX: OutputActivation
OUTPUT_ACTIVATION_SIGMOID: OutputActivation
OUTPUT_ACTIVATION_IDENTITY: OutputActivation
LOSS_UNSPECIFIED: Loss
LOSS_MSE: Loss
LOSS_CROSS_ENTROPY: Loss
LOSS_BINARY_CROSS_ENTROPY: Loss
OPTIMIZER_KIND_UNSPECIFIED: OptimizerKind
OPTIMIZER_KIND_SGD: OptimizerKind
OPTIMIZER_KIND_ADAM: OptimizerKind
OPTIMIZER_KIND_ADAMW: OptimizerKind
OPTIMIZER_KIND_RMSPROP: OptimizerKind
MODE_UNSPECIFIED: Mode
MODE_SYNC: Mode
MODE_ASYNC: Mode
MODE_SSP: Mode
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_PENDING: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState

class Tensor(_message.Message):
    __slots__ = ("shape", "dtype", "data")
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    shape: _containers.RepeatedScalarFieldContainer[int]
    dtype: DType
    data: bytes
    def __init__(self, shape: _Optional[_Iterable[int]] = ..., dtype: _Optional[_Union[DType, str]] = ..., data: _Optional[bytes] = ...) -> None: ...

class DataSource(_message.Message):
    __slots__ = ("builtin", "path", "dataset_id", "inline", "target_column")
    BUILTIN_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    INLINE_FIELD_NUMBER: _ClassVar[int]
    TARGET_COLUMN_FIELD_NUMBER: _ClassVar[int]
    builtin: str
    path: str
    dataset_id: str
    inline: InlineData
    target_column: str
    def __init__(self, builtin: _Optional[str] = ..., path: _Optional[str] = ..., dataset_id: _Optional[str] = ..., inline: _Optional[_Union[InlineData, _Mapping]] = ..., target_column: _Optional[str] = ...) -> None: ...

class InlineData(_message.Message):
    __slots__ = ("x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    x: Tensor
    y: Tensor
    def __init__(self, x: _Optional[_Union[Tensor, _Mapping]] = ..., y: _Optional[_Union[Tensor, _Mapping]] = ...) -> None: ...

class Parameters(_message.Message):
    __slots__ = ("w1", "b1", "w2", "b2")
    W1_FIELD_NUMBER: _ClassVar[int]
    B1_FIELD_NUMBER: _ClassVar[int]
    W2_FIELD_NUMBER: _ClassVar[int]
    B2_FIELD_NUMBER: _ClassVar[int]
    w1: Tensor
    b1: Tensor
    w2: Tensor
    b2: Tensor
    def __init__(self, w1: _Optional[_Union[Tensor, _Mapping]] = ..., b1: _Optional[_Union[Tensor, _Mapping]] = ..., w2: _Optional[_Union[Tensor, _Mapping]] = ..., b2: _Optional[_Union[Tensor, _Mapping]] = ...) -> None: ...

class OptimizerSettings(_message.Message):
    __slots__ = ("kind", "lr", "momentum", "dampening", "nesterov", "weight_decay", "betas", "eps", "amsgrad", "alpha", "centered")
    KIND_FIELD_NUMBER: _ClassVar[int]
    LR_FIELD_NUMBER: _ClassVar[int]
    MOMENTUM_FIELD_NUMBER: _ClassVar[int]
    DAMPENING_FIELD_NUMBER: _ClassVar[int]
    NESTEROV_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_DECAY_FIELD_NUMBER: _ClassVar[int]
    BETAS_FIELD_NUMBER: _ClassVar[int]
    EPS_FIELD_NUMBER: _ClassVar[int]
    AMSGRAD_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    CENTERED_FIELD_NUMBER: _ClassVar[int]
    kind: OptimizerKind
    lr: float
    momentum: float
    dampening: float
    nesterov: bool
    weight_decay: float
    betas: _containers.RepeatedScalarFieldContainer[float]
    eps: float
    amsgrad: bool
    alpha: float
    centered: bool
    def __init__(self, kind: _Optional[_Union[OptimizerKind, str]] = ..., lr: _Optional[float] = ..., momentum: _Optional[float] = ..., dampening: _Optional[float] = ..., nesterov: _Optional[bool] = ..., weight_decay: _Optional[float] = ..., betas: _Optional[_Iterable[float]] = ..., eps: _Optional[float] = ..., amsgrad: _Optional[bool] = ..., alpha: _Optional[float] = ..., centered: _Optional[bool] = ...) -> None: ...

class TrainingRequest(_message.Message):
    __slots__ = ("data", "val_fraction", "standardize", "shuffle", "hidden", "hidden_activation", "output_activation", "loss", "dtype", "init", "optimizer", "epochs", "batch_size", "workers", "seed", "mode", "checkpoint_interval")
    DATA_FIELD_NUMBER: _ClassVar[int]
    VAL_FRACTION_FIELD_NUMBER: _ClassVar[int]
    STANDARDIZE_FIELD_NUMBER: _ClassVar[int]
    SHUFFLE_FIELD_NUMBER: _ClassVar[int]
    HIDDEN_FIELD_NUMBER: _ClassVar[int]
    HIDDEN_ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    INIT_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    data: DataSource
    val_fraction: float
    standardize: bool
    shuffle: bool
    hidden: int
    hidden_activation: HiddenActivation
    output_activation: OutputActivation
    loss: Loss
    dtype: DType
    init: Parameters
    optimizer: OptimizerSettings
    epochs: int
    batch_size: int
    workers: int
    seed: int
    mode: Mode
    checkpoint_interval: int
    def __init__(self, data: _Optional[_Union[DataSource, _Mapping]] = ..., val_fraction: _Optional[float] = ..., standardize: _Optional[bool] = ..., shuffle: _Optional[bool] = ..., hidden: _Optional[int] = ..., hidden_activation: _Optional[_Union[HiddenActivation, str]] = ..., output_activation: _Optional[_Union[OutputActivation, str]] = ..., loss: _Optional[_Union[Loss, str]] = ..., dtype: _Optional[_Union[DType, str]] = ..., init: _Optional[_Union[Parameters, _Mapping]] = ..., optimizer: _Optional[_Union[OptimizerSettings, _Mapping]] = ..., epochs: _Optional[int] = ..., batch_size: _Optional[int] = ..., workers: _Optional[int] = ..., seed: _Optional[int] = ..., mode: _Optional[_Union[Mode, str]] = ..., checkpoint_interval: _Optional[int] = ...) -> None: ...

class JobMetrics(_message.Message):
    __slots__ = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "samples_per_second")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    TRAIN_LOSS_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    VAL_LOSS_FIELD_NUMBER: _ClassVar[int]
    VAL_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    samples_per_second: float
    def __init__(self, epoch: _Optional[int] = ..., train_loss: _Optional[float] = ..., train_accuracy: _Optional[float] = ..., val_loss: _Optional[float] = ..., val_accuracy: _Optional[float] = ..., samples_per_second: _Optional[float] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "request_id", "state", "request", "step", "total_steps", "metrics", "error", "checkpoint_step", "created_at", "updated_at")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_STEP_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    request_id: str
    state: JobState
    request: TrainingRequest
    step: int
    total_steps: int
    metrics: JobMetrics
    error: str
    checkpoint_step: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, job_id: _Optional[str] = ..., request_id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., request: _Optional[_Union[TrainingRequest, _Mapping]] = ..., step: _Optional[int] = ..., total_steps: _Optional[int] = ..., metrics: _Optional[_Union[JobMetrics, _Mapping]] = ..., error: _Optional[str] = ..., checkpoint_step: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("request", "request_id")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request: TrainingRequest
    request_id: str
    def __init__(self, request: _Optional[_Union[TrainingRequest, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class SubmitJobResponse(_message.Message):
    __slots__ = ("job", "created")
    JOB_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    job: Job
    created: bool
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("states", "page_size", "page_token")
    STATES_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[JobState]
    page_size: int
    page_token: str
    def __init__(self, states: _Optional[_Iterable[_Union[JobState, str]]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id", "step_interval")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    step_interval: int
    def __init__(self, job_id: _Optional[str] = ..., step_interval: _Optional[int] = ...) -> None: ...

class StepEvent(_message.Message):
    __slots__ = ("step", "epoch", "loss")
    STEP_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    step: int
    epoch: int
    loss: float
    def __init__(self, step: _Optional[int] = ..., epoch: _Optional[int] = ..., loss: _Optional[float] = ...) -> None: ...

class EpochEvent(_message.Message):
    __slots__ = ("metrics", "step")
    METRICS_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    metrics: JobMetrics
    step: int
    def __init__(self, metrics: _Optional[_Union[JobMetrics, _Mapping]] = ..., step: _Optional[int] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("job_id", "job", "step", "epoch")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    job: Job
    step: StepEvent
    epoch: EpochEvent
    def __init__(self, job_id: _Optional[str] = ..., job: _Optional[_Union[Job, _Mapping]] = ..., step: _Optional[_Union[StepEvent, _Mapping]] = ..., epoch: _Optional[_Union[EpochEvent, _Mapping]] = ...) -> None: ...

class GetParametersRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetParametersResponse(_message.Message):
    __slots__ = ("parameters", "step")
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    parameters: Parameters
    step: int
    def __init__(self, parameters: _Optional[_Union[Parameters, _Mapping]] = ..., step: _Optional[int] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("job_id", "x")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    x: Tensor
    def __init__(self, job_id: _Optional[str] = ..., x: _Optional[_Union[Tensor, _Mapping]] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("y_hat", "step")
    Y_HAT_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    y_hat: Tensor
    step: int
    def __init__(self, y_hat: _Optional[_Union[Tensor, _Mapping]] = ..., step: _Optional[int] = ...) -> None: ...

class UploadHeader(_message.Message):
    __slots__ = ("name", "format", "size", "sha256")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    name: str
    format: str
    size: int
    sha256: str
    def __init__(self, name: _Optional[str] = ..., format: _Optional[str] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class UploadDatasetRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: UploadHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[UploadHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class UploadDatasetResponse(_message.Message):
    __slots__ = ("dataset_id", "num_samples", "num_features")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    NUM_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    NUM_FEATURES_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    num_samples: int
    num_features: int
    def __init__(self, dataset_id: _Optional[str] = ..., num_samples: _Optional[int] = ..., num_features: _Optional[int] = ...) -> None: ...
