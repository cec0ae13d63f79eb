"""Malformed requests against one real server: each gets the status that fits.

The module's server runs with small limits (1,000 tensor elements, 100 kB
uploads) and a data root, so oversize requests cost nothing to send. Every
refusal names the field at the start of its details. After all of them the
server is still healthy and still trains.
"""

from __future__ import annotations

import hashlib
import math
import re
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.grpc_server import MAX_DETAILS_CHARACTERS
from service.limits import Limits
from service.proto import trainer_pb2 as pb
from service.proto import trainer_pb2_grpc as pb_grpc
from service.tensors import to_tensor
from tests.conftest import RAY_CPUS
from tests.service.server_process import ServerProcess

MAX_TENSOR_ELEMENTS = 1000
MAX_UPLOAD_BYTES = 100_000
# Hidden units, workers and epochs keep the defaults.
LIMITS = Limits()
RPC_TIMEOUT_SECONDS = 30
INT32 = {"min_value": -(2**31), "max_value": 2**31 - 1}
INT64 = {"min_value": -(2**63), "max_value": 2**63 - 1}
FLOAT32_MAX = float(np.finfo(np.float32).max)

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED

BAD_REQUESTS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

WIRE_DTYPES = (pb.DTYPE_FLOAT32, pb.DTYPE_FLOAT64, pb.DTYPE_INT32, pb.DTYPE_INT64)
ITEM_BYTES = {
    pb.DTYPE_FLOAT32: 4,
    pb.DTYPE_FLOAT64: 8,
    pb.DTYPE_INT32: 4,
    pb.DTYPE_INT64: 8,
}
# Where a tensor can travel, named as the server names the field.
TENSOR_FIELDS = (
    "request.data.inline.x",
    "request.data.inline.y",
    "request.init.w1",
    "request.init.b1",
    "request.init.w2",
    "request.init.b2",
    "x",
)
# Methods that name a job, with a request that is valid but for the id.
JOB_METHODS = ("GetJob", "CancelJob", "WatchJob", "GetParameters", "Predict")
# Integer settings and the least value each accepts.
MINIMUM = {
    "epochs": 1,
    "batch_size": 1,
    "workers": 1,
    "hidden": 1,
    "seed": 0,
    "checkpoint_interval": 1,
}
# Integer settings and this server's largest accepted value.
SERVER_MAXIMUM = {
    "hidden": LIMITS.max_hidden,
    "workers": LIMITS.max_workers,
    "epochs": LIMITS.max_epochs,
}
# Optimizer settings: the optimizer that reads each and its valid range.
OPTIMIZER_RANGES = {
    "lr": (pb.OPTIMIZER_KIND_SGD, lambda v: v > 0),
    "momentum": (pb.OPTIMIZER_KIND_SGD, lambda v: v >= 0),
    "dampening": (pb.OPTIMIZER_KIND_SGD, lambda v: 0 <= v <= 1),
    "weight_decay": (pb.OPTIMIZER_KIND_ADAMW, lambda v: v >= 0),
    "eps": (pb.OPTIMIZER_KIND_ADAM, lambda v: v >= 0),
    "alpha": (pb.OPTIMIZER_KIND_RMSPROP, lambda v: 0 <= v < 1),
}
# Enum fields of TrainingRequest and the values the server knows.
REQUEST_ENUMS = {
    "hidden_activation": set(pb.HiddenActivation.values()),
    "output_activation": set(pb.OutputActivation.values()),
    "loss": set(pb.Loss.values()),
    "dtype": {pb.DTYPE_UNSPECIFIED, pb.DTYPE_FLOAT32, pb.DTYPE_FLOAT64},
    "mode": {pb.MODE_UNSPECIFIED, pb.MODE_SYNC},
}
IRIS_INPUTS = 4
IRIS_CLASSES = 3
# Ids the server assigns; drawn ids of this form are left out, as they
# could name a job that exists.
JOB_ID = re.compile(r"[0-9a-f]{16}")
# The page tokens ListJobs hands out: a job's sequence number.
PAGE_TOKEN = re.compile(r"[0-9]{1,18}")


# Requests that are valid except for what a test breaks.


def iris(**fields) -> pb.TrainingRequest:
    """A request on the bundled iris data with one worker."""
    fields.setdefault("workers", 1)
    return pb.TrainingRequest(data=pb.DataSource(builtin="iris"), **fields)


def inline(x: pb.Tensor, y: pb.Tensor, **fields) -> pb.TrainingRequest:
    """A request whose data travels with it."""
    fields.setdefault("workers", 1)
    data = pb.DataSource(inline=pb.InlineData(x=x, y=y))
    return pb.TrainingRequest(data=data, **fields)


def good_x() -> pb.Tensor:
    """Inputs (4, 2) that the server accepts."""
    return to_tensor(np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [1.0, 2.0]]))


def good_y() -> pb.Tensor:
    """Labels (4,) of two classes that match good_x."""
    return to_tensor(np.array([0, 1, 0, 1], dtype=np.int64))


def good_init() -> dict[str, pb.Tensor]:
    """Initial weights for iris with three hidden units."""
    hidden = 3
    return {
        "w1": to_tensor(np.zeros((hidden, IRIS_INPUTS))),
        "b1": to_tensor(np.zeros(hidden)),
        "w2": to_tensor(np.zeros((IRIS_CLASSES, hidden))),
        "b2": to_tensor(np.zeros(IRIS_CLASSES)),
    }


def submit(request: pb.TrainingRequest, request_id: str = "") -> tuple[str, object]:
    return "SubmitJob", pb.SubmitJobRequest(request=request, request_id=request_id)


def with_tensor(field: str, tensor: pb.Tensor) -> tuple[str, object]:
    """A call that carries tensor in the named field, every other part valid."""
    if field == "x":
        return "Predict", pb.PredictRequest(job_id="0" * 16, x=tensor)
    if field == "request.data.inline.x":
        return submit(inline(tensor, good_y()))
    if field == "request.data.inline.y":
        return submit(inline(good_x(), tensor))
    init = good_init()
    init[field.rsplit(".", 1)[1]] = tensor
    return submit(iris(init=pb.Parameters(**init)))


def for_job(method: str, job_id: str) -> tuple[str, object]:
    """A call of method about job_id that is valid in every other part."""
    if method == "Predict":
        x = to_tensor(np.zeros((1, IRIS_INPUTS), dtype=np.float32))
        return method, pb.PredictRequest(job_id=job_id, x=x)
    message = {
        "GetJob": pb.GetJobRequest,
        "CancelJob": pb.CancelJobRequest,
        "WatchJob": pb.WatchJobRequest,
        "GetParameters": pb.GetParametersRequest,
    }[method]
    return method, message(job_id=job_id)


def upload(*parts: pb.UploadHeader | bytes) -> tuple[str, object]:
    """An UploadDataset stream of these headers and chunks, in order."""
    messages = [
        pb.UploadDatasetRequest(header=part)
        if isinstance(part, pb.UploadHeader)
        else pb.UploadDatasetRequest(chunk=part)
        for part in parts
    ]
    return "UploadDataset", messages


def header_for(content: bytes, **fields) -> pb.UploadHeader:
    """A header that describes content correctly, but for the given fields."""
    values = {
        "name": "test",
        "format": "csv",
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
    }
    values.update(fields)
    return pb.UploadHeader(**values)


# Calling the server.


def send(stub: pb_grpc.TrainerStub, method: str, message) -> None:
    """Call one method and read its whole reply."""
    if method == "UploadDataset":
        message = iter(message)
    reply = getattr(stub, method)(message, timeout=RPC_TIMEOUT_SECONDS)
    if method == "WatchJob":
        list(reply)


def refusal(stub: pb_grpc.TrainerStub, call: tuple[str, object]) -> grpc.RpcError:
    """The error that a call must end with."""
    with pytest.raises(grpc.RpcError) as caught:
        send(stub, *call)
    return caught.value


def assert_refused(
    stub: pb_grpc.TrainerStub,
    call: tuple[str, object],
    code: grpc.StatusCode,
    field: str,
) -> None:
    """The call fails with code, and its details start with the field."""
    error = refusal(stub, call)
    details = error.details()
    assert error.code() == code, details
    assert details.startswith(f"{field}: "), details
    assert len(details) <= MAX_DETAILS_CHARACTERS, details


# Fixtures: one server for the module, a stub and a finished job.


@pytest.fixture(scope="module")
def server(ray_address, gradpool_command, tmp_path_factory):
    """gradpool serve with small limits and an empty data root."""
    data_root = tmp_path_factory.mktemp("data-root")
    server = ServerProcess(
        gradpool_command,
        tmp_path_factory.mktemp("validation-server"),
        ray_address,
        "--max-tensor-elements",
        str(MAX_TENSOR_ELEMENTS),
        "--max-upload-bytes",
        str(MAX_UPLOAD_BYTES),
        "--data-root",
        str(data_root),
    )
    yield server
    server.terminate()


@pytest.fixture(scope="module")
def stub(server):
    """A stub of the module's server on one channel."""
    with grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.TrainerStub(channel)


def train_small_job(server: ServerProcess) -> pb.Job:
    """Train two classes of four inline samples; return the final Job."""
    request = inline(good_x(), good_y(), epochs=2, hidden=4, val_fraction=0.0)
    with server.client(timeout=RPC_TIMEOUT_SECONDS) as client:
        job_id = client.submit(request).job.job_id
        events = list(client.watch(job_id))
    return events[-1].job


@pytest.fixture(scope="module")
def trained_job(server) -> pb.Job:
    """A job that succeeded, with a float32 model of two inputs."""
    job = train_small_job(server)
    assert job.state == pb.JOB_STATE_SUCCEEDED, job.error
    return job


# Strategies.

job_methods = st.sampled_from(JOB_METHODS)
tensor_fields = st.sampled_from(TENSOR_FIELDS)
non_finite = st.sampled_from([math.nan, math.inf, -math.inf])
few = st.integers(1, 10)


def unknown_enum_values(known: set[int]) -> st.SearchStrategy[int]:
    return st.integers(**INT32).filter(lambda value: value not in known)


@st.composite
def small_shapes(draw) -> list[int]:
    """Shapes of up to three dimensions and at most the element limit."""
    shape = draw(st.lists(st.integers(0, 12), max_size=3))
    if math.prod(shape) > MAX_TENSOR_ELEMENTS:
        shape = shape[:1]
    return shape


@st.composite
def bad_dtype_tensors(draw) -> pb.Tensor:
    dtype = draw(unknown_enum_values(set(WIRE_DTYPES)))
    shape = draw(small_shapes())
    data = draw(st.binary(max_size=64))
    return pb.Tensor(shape=shape, dtype=dtype, data=data)


@st.composite
def negative_shape_tensors(draw) -> pb.Tensor:
    shape = draw(st.lists(st.integers(**INT64), min_size=1, max_size=4))
    negative = draw(st.integers(INT64["min_value"], -1))
    shape.insert(draw(st.integers(0, len(shape))), negative)
    dtype = draw(st.sampled_from(WIRE_DTYPES))
    return pb.Tensor(shape=shape, dtype=dtype)


@st.composite
def wrong_byte_count_tensors(draw) -> pb.Tensor:
    shape = draw(small_shapes())
    dtype = draw(st.sampled_from(WIRE_DTYPES))
    expected = math.prod(shape) * ITEM_BYTES[dtype]
    size = draw(st.integers(0, expected + 16).filter(lambda n: n != expected))
    return pb.Tensor(shape=shape, dtype=dtype, data=bytes(size))


@st.composite
def oversize_tensors(draw) -> pb.Tensor:
    """Tensors of more elements than the server accepts; data left out."""
    shape = draw(st.lists(st.integers(1, 2**20), max_size=3))
    smallest = MAX_TENSOR_ELEMENTS // math.prod(shape) + 1
    shape.insert(draw(st.integers(0, len(shape))), draw(st.integers(smallest, 2**40)))
    dtype = draw(st.sampled_from(WIRE_DTYPES))
    return pb.Tensor(shape=shape, dtype=dtype)


@st.composite
def float_matrices(draw, rows=few, columns=few):
    """Finite float64 matrices of drawn shape."""
    shape = (draw(rows), draw(columns))
    values = draw(
        st.lists(
            st.floats(allow_nan=False, allow_infinity=False),
            min_size=math.prod(shape),
            max_size=math.prod(shape),
        )
    )
    return np.array(values, dtype=np.float64).reshape(shape)


@st.composite
def with_one_non_finite(draw, matrices) -> np.ndarray:
    """A matrix from matrices with one element replaced by NaN or +-inf."""
    matrix = draw(matrices).copy()
    row = draw(st.integers(0, matrix.shape[0] - 1))
    column = draw(st.integers(0, matrix.shape[1] - 1))
    matrix[row, column] = draw(non_finite)
    return matrix


def labels(count: int) -> pb.Tensor:
    """Two classes, alternating, for count samples."""
    return to_tensor(np.arange(count, dtype=np.int64) % 2)


@st.composite
def inline_data_with_bad_content(draw) -> pb.TrainingRequest:
    """Inline data that decodes but is no data set."""
    kind = draw(st.sampled_from(["x_not_2d", "rows", "x", "y", "labels"]))
    if kind == "x_not_2d":
        shape = draw(
            st.lists(st.integers(1, 5), max_size=4).filter(lambda s: len(s) != 2)
        )
        x = np.ones(shape)
        return inline(to_tensor(x), labels(shape[0] if shape else 1))
    if kind == "rows":
        x = draw(float_matrices())
        count = draw(st.integers(0, 20).filter(lambda n: n != len(x)))
        return inline(to_tensor(x), labels(count))
    if kind == "x":
        x = draw(with_one_non_finite(float_matrices(rows=st.integers(2, 10))))
        return inline(to_tensor(x), labels(len(x)))
    x = draw(float_matrices(rows=st.integers(2, 10)))
    if kind == "y":
        y = draw(with_one_non_finite(float_matrices(rows=st.just(len(x)))))
        return inline(to_tensor(x), to_tensor(y))
    y = np.arange(len(x), dtype=np.int64) % 2
    y[draw(st.integers(0, len(x) - 1))] = draw(st.integers(INT64["min_value"], -1))
    return inline(to_tensor(x), to_tensor(y))


def iris_init_shapes(shapes: tuple) -> bool:
    """Whether shapes fit iris: W1 (H, 4), b1 (H,), W2 (3, H), b2 (3,), H > 0."""
    W1, b1, W2, b2 = shapes
    hidden = W1[0] if len(W1) == 2 else 0
    fits = (
        (hidden, IRIS_INPUTS),
        (hidden,),
        (IRIS_CLASSES, hidden),
        (IRIS_CLASSES,),
    )
    return hidden > 0 and tuple(map(tuple, shapes)) == fits


@st.composite
def init_with_bad_content(draw) -> pb.Parameters:
    """Initial weights that decode but cannot start a run on iris."""
    kind = draw(st.sampled_from(["shapes", "non_finite", "integers"]))
    if kind == "shapes":
        shape = st.lists(st.integers(0, 5), max_size=3)
        shapes = draw(st.tuples(shape, shape, shape, shape))
        if iris_init_shapes(shapes):
            shapes = (shapes[0], shapes[1], shapes[2], [IRIS_CLASSES + 1])
        arrays = [np.zeros(shape) for shape in shapes]
        return pb.Parameters(
            **{
                name: to_tensor(array)
                for name, array in zip(("w1", "b1", "w2", "b2"), arrays, strict=True)
            }
        )
    init = good_init()
    name = draw(st.sampled_from(sorted(init)))
    array = np.zeros(list(init[name].shape))
    if kind == "non_finite":
        array.reshape(-1)[draw(st.integers(0, array.size - 1))] = draw(non_finite)
        init[name] = to_tensor(array)
    else:
        dtype = draw(st.sampled_from([np.int32, np.int64]))
        init[name] = to_tensor(array.astype(dtype))
    return pb.Parameters(**init)


@st.composite
def unusable_predict_inputs(draw) -> np.ndarray:
    """Inputs a float32 model of two inputs cannot take."""
    kind = draw(st.sampled_from(["shape", "non_finite", "integers", "range"]))
    if kind == "shape":
        shape = draw(
            st.lists(st.integers(0, 5), max_size=4).filter(
                lambda s: len(s) != 2 or s[1] != 2
            )
        )
        return np.zeros(shape)
    rows = st.integers(1, 20)
    if kind == "non_finite":
        return draw(with_one_non_finite(float_matrices(rows, st.just(2))))
    if kind == "integers":
        return np.zeros(
            (draw(rows), 2), dtype=draw(st.sampled_from([np.int32, np.int64]))
        )
    x = np.zeros((draw(rows), 2))
    beyond = st.floats(min_value=FLOAT32_MAX * 1.01, allow_infinity=False)
    x[draw(st.integers(0, len(x) - 1)), draw(st.integers(0, 1))] = draw(
        st.builds(lambda value, sign: sign * value, beyond, st.sampled_from([1, -1]))
    )
    return x


unknown_job_ids = st.one_of(
    st.text(min_size=1, max_size=80),
    st.builds(lambda char, count: char * count, st.characters(), st.integers(1, 10**5)),
).filter(lambda job_id: not JOB_ID.fullmatch(job_id))

malformed_dataset_ids = st.one_of(
    st.text(max_size=100),
    st.text("0123456789abcdefABCDEF\n", min_size=63, max_size=66),
).filter(lambda dataset_id: not re.fullmatch(r"[0-9a-f]{64}", dataset_id))


# Numbers out of range.


@BAD_REQUESTS
@given(
    case=st.sampled_from(sorted(MINIMUM.items())).flatmap(
        lambda item: st.tuples(
            st.just(item[0]), st.integers(INT64["min_value"], item[1] - 1)
        )
    )
)
def test_integer_settings_below_their_minimum_are_invalid_argument(stub, case):
    name, value = case
    call = submit(iris(**{name: value}))
    assert_refused(stub, call, INVALID, f"request.{name}")


@BAD_REQUESTS
@given(
    case=st.sampled_from(sorted(SERVER_MAXIMUM.items())).flatmap(
        lambda item: st.tuples(
            st.just(item[0]), st.integers(item[1] + 1, INT64["max_value"])
        )
    )
)
def test_integer_settings_above_the_server_limit_are_resource_exhausted(stub, case):
    name, value = case
    call = submit(iris(**{name: value}))
    assert_refused(stub, call, EXHAUSTED, f"request.{name}")


@BAD_REQUESTS
@given(workers=st.integers(RAY_CPUS + 1, LIMITS.max_workers))
def test_more_workers_than_cluster_cpus_is_resource_exhausted(stub, workers):
    call = submit(iris(workers=workers))
    assert_refused(stub, call, EXHAUSTED, "request.workers")


@BAD_REQUESTS
@given(
    case=st.sampled_from(sorted(OPTIMIZER_RANGES)).flatmap(
        lambda name: st.tuples(
            st.just(name),
            st.floats().filter(
                lambda v: not (math.isfinite(v) and OPTIMIZER_RANGES[name][1](v))
            ),
        )
    )
)
def test_optimizer_settings_out_of_range_are_invalid_argument(stub, case):
    name, value = case
    kind = OPTIMIZER_RANGES[name][0]
    optimizer = pb.OptimizerSettings(kind=kind, **{name: value})
    call = submit(iris(optimizer=optimizer))
    assert_refused(stub, call, INVALID, f"request.optimizer.{name}")


@BAD_REQUESTS
@given(
    betas=st.lists(st.floats(), min_size=1, max_size=5).filter(
        lambda betas: len(betas) != 2 or not all(0 <= b < 1 for b in betas)
    )
)
def test_betas_that_are_not_two_numbers_in_0_1_are_invalid_argument(stub, betas):
    optimizer = pb.OptimizerSettings(kind=pb.OPTIMIZER_KIND_ADAM, betas=betas)
    call = submit(iris(optimizer=optimizer))
    assert_refused(stub, call, INVALID, "request.optimizer.betas")


@BAD_REQUESTS
@given(
    val_fraction=st.one_of(
        st.floats().filter(lambda v: not 0 <= v < 1),
        # At least 149.985 of iris's 150 samples: none left to train on.
        st.floats(0.9999, 1, exclude_max=True),
    )
)
def test_val_fraction_outside_0_1_is_invalid_argument(stub, val_fraction):
    call = submit(iris(val_fraction=val_fraction))
    assert_refused(stub, call, INVALID, "request.val_fraction")


@BAD_REQUESTS
@given(
    page_size=st.one_of(
        st.integers(INT32["min_value"], -1), st.integers(1001, INT32["max_value"])
    )
)
def test_page_size_outside_1_to_1000_is_invalid_argument(stub, page_size):
    call = ("ListJobs", pb.ListJobsRequest(page_size=page_size))
    assert_refused(stub, call, INVALID, "page_size")


@BAD_REQUESTS
@given(
    job_id=st.one_of(st.just(""), unknown_job_ids),
    step_interval=st.integers(INT64["min_value"], -1),
)
def test_negative_step_interval_is_invalid_argument(stub, job_id, step_interval):
    call = ("WatchJob", pb.WatchJobRequest(job_id=job_id, step_interval=step_interval))
    assert_refused(stub, call, INVALID, "step_interval")


# Enum values the server does not know.


@BAD_REQUESTS
@given(
    case=st.sampled_from(sorted(REQUEST_ENUMS)).flatmap(
        lambda name: st.tuples(st.just(name), unknown_enum_values(REQUEST_ENUMS[name]))
    )
)
def test_unknown_request_enum_values_are_invalid_argument(stub, case):
    name, value = case
    call = submit(iris(**{name: value}))
    assert_refused(stub, call, INVALID, f"request.{name}")


@BAD_REQUESTS
@given(kind=unknown_enum_values(set(pb.OptimizerKind.values())))
def test_unknown_optimizer_kind_is_invalid_argument(stub, kind):
    call = submit(iris(optimizer=pb.OptimizerSettings(kind=kind)))
    assert_refused(stub, call, INVALID, "request.optimizer.kind")


@BAD_REQUESTS
@given(
    states=st.lists(st.sampled_from(pb.JobState.values()), max_size=3).flatmap(
        lambda known: st.lists(
            unknown_enum_values(set(pb.JobState.values()) - {0}), min_size=1
        ).map(lambda unknown: known + unknown)
    )
)
def test_unknown_job_states_in_a_listing_are_invalid_argument(stub, states):
    call = ("ListJobs", pb.ListJobsRequest(states=states))
    assert_refused(stub, call, INVALID, "states")


# Tensors.


@BAD_REQUESTS
@given(
    field=tensor_fields,
    tensor=st.one_of(
        bad_dtype_tensors(), negative_shape_tensors(), wrong_byte_count_tensors()
    ),
)
def test_tensors_that_do_not_decode_are_invalid_argument(stub, field, tensor):
    assert_refused(stub, with_tensor(field, tensor), INVALID, field)


@BAD_REQUESTS
@given(field=tensor_fields, tensor=oversize_tensors())
def test_tensors_above_the_element_limit_are_resource_exhausted(stub, field, tensor):
    assert_refused(stub, with_tensor(field, tensor), EXHAUSTED, field)


@BAD_REQUESTS
@given(request=inline_data_with_bad_content())
def test_inline_data_of_wrong_shape_or_values_is_invalid_argument(stub, request):
    assert_refused(stub, submit(request), INVALID, "request.data")


@BAD_REQUESTS
@given(init=init_with_bad_content())
def test_initial_weights_of_wrong_shape_or_values_are_invalid_argument(stub, init):
    assert_refused(stub, submit(iris(init=init)), INVALID, "request.init")


@BAD_REQUESTS
@given(x=unusable_predict_inputs())
def test_predict_inputs_of_wrong_shape_or_values_are_invalid_argument(
    stub, trained_job, x
):
    call = ("Predict", pb.PredictRequest(job_id=trained_job.job_id, x=to_tensor(x)))
    assert_refused(stub, call, INVALID, "x")


@BAD_REQUESTS
@given(hidden=st.integers(MAX_TENSOR_ELEMENTS // 2 + 1, LIMITS.max_hidden))
def test_network_larger_than_the_element_limit_is_resource_exhausted(stub, hidden):
    # W1 has shape (hidden, 2) for the two inputs of good_x.
    call = submit(inline(good_x(), good_y(), hidden=hidden))
    assert_refused(stub, call, EXHAUSTED, "request.hidden")


@BAD_REQUESTS
@given(largest=st.integers(MAX_TENSOR_ELEMENTS, INT64["max_value"]))
def test_labels_that_need_too_many_outputs_are_refused(stub, largest):
    # Labels up to largest would need largest + 1 output units.
    y = to_tensor(np.array([0, 1, 0, largest], dtype=np.int64))
    error = refusal(stub, submit(inline(good_x(), y)))
    assert error.code() in (INVALID, EXHAUSTED), error.details()
    assert error.details().startswith("request.data: "), error.details()


# Ids and tokens.


@BAD_REQUESTS
@given(method=job_methods, job_id=unknown_job_ids)
def test_unknown_job_ids_are_not_found(stub, method, job_id):
    assert_refused(stub, for_job(method, job_id), NOT_FOUND, "job_id")


@pytest.mark.parametrize("method", JOB_METHODS)
def test_empty_job_id_is_invalid_argument(stub, method):
    assert_refused(stub, for_job(method, ""), INVALID, "job_id")


@BAD_REQUESTS
@given(dataset_id=malformed_dataset_ids)
def test_malformed_dataset_id_is_invalid_argument(stub, dataset_id):
    call = submit(pb.TrainingRequest(data=pb.DataSource(dataset_id=dataset_id)))
    assert_refused(stub, call, INVALID, "request.data.dataset_id")


@BAD_REQUESTS
@given(dataset_id=st.text("0123456789abcdef", min_size=64, max_size=64))
def test_unknown_dataset_id_is_not_found(stub, dataset_id):
    call = submit(pb.TrainingRequest(data=pb.DataSource(dataset_id=dataset_id)))
    assert_refused(stub, call, NOT_FOUND, "request.data.dataset_id")


@BAD_REQUESTS
@given(
    page_token=st.one_of(
        st.text(min_size=1),
        st.text("0123456789", min_size=19, max_size=5000),
    ).filter(lambda token: not PAGE_TOKEN.fullmatch(token))
)
def test_page_token_not_from_a_listing_is_invalid_argument(stub, page_token):
    call = ("ListJobs", pb.ListJobsRequest(page_token=page_token))
    assert_refused(stub, call, INVALID, "page_token")


@BAD_REQUESTS
@given(length=st.integers(129, 10**5))
def test_request_id_over_128_characters_is_invalid_argument(stub, length):
    call = submit(iris(), request_id="r" * length)
    assert_refused(stub, call, INVALID, "request_id")


@BAD_REQUESTS
@given(
    path=st.one_of(
        st.text(min_size=1).map(lambda name: f"{name}\x00.npz"),
        st.integers(256, 5000).map(lambda length: "a" * length + ".npz"),
        st.text(min_size=1).map(lambda name: f"/{name}"),
        st.text(min_size=1).map(lambda name: f"../{name}.npz"),
    )
)
def test_data_path_that_cannot_name_a_file_in_the_root_is_invalid_argument(stub, path):
    call = submit(pb.TrainingRequest(data=pb.DataSource(path=path)))
    assert_refused(stub, call, INVALID, "request.data.path")


@BAD_REQUESTS
@given(name=st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=60))
def test_data_path_missing_from_the_root_is_not_found(stub, name):
    call = submit(pb.TrainingRequest(data=pb.DataSource(path=f"missing-{name}.npz")))
    assert_refused(stub, call, NOT_FOUND, "request.data.path")


# Uploads.


@BAD_REQUESTS
@given(
    case=st.one_of(
        st.tuples(
            st.just("format"),
            st.text(max_size=10).filter(lambda f: f not in ("npz", "csv")),
        ),
        st.tuples(st.just("size"), st.integers(INT64["min_value"], 0)),
        st.tuples(st.just("sha256"), malformed_dataset_ids),
    )
)
def test_malformed_upload_header_is_invalid_argument(stub, case):
    name, value = case
    content = b"a,b,y\n1,2,0\n3,4,1\n"
    call = upload(header_for(content, **{name: value}), content)
    assert_refused(stub, call, INVALID, f"header.{name}")


@BAD_REQUESTS
@given(size=st.integers(MAX_UPLOAD_BYTES + 1, INT64["max_value"]))
def test_upload_above_the_size_limit_is_resource_exhausted(stub, size):
    call = upload(pb.UploadHeader(format="csv", size=size, sha256="0" * 64))
    assert_refused(stub, call, EXHAUSTED, "header.size")


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (upload(), "header"),
        (upload(b"1,0\n"), "header"),
        (upload(header_for(b"1,0\n", size=9), b"1,0\n"), "header.size"),
        (upload(header_for(b"1,0\n", size=2), b"1,0\n"), "chunk"),
        (upload(header_for(b"1,0\n"), b"1,1\n"), "header.sha256"),
    ],
    ids=["empty", "no-header", "short", "long", "digest"],
)
def test_upload_stream_that_breaks_its_header_is_invalid_argument(stub, call, field):
    assert_refused(stub, call, INVALID, field)


def test_upload_that_is_not_text_is_invalid_argument(stub):
    content = b"\xff\xfe,1\n\x80,0\n"
    error = refusal(stub, upload(header_for(content), content))
    assert error.code() == INVALID, error.details()
    assert error.details().startswith("dataset: "), error.details()


# The server after all of the above.


def representative_calls() -> list[tuple[str, object]]:
    """One bad call of each kind, for sending many at once."""
    nan = math.nan
    return [
        submit(iris(epochs=-1)),
        submit(iris(hidden=2**62)),
        submit(iris(optimizer=pb.OptimizerSettings(lr=nan))),
        submit(iris(hidden_activation=57)),
        submit(iris(loss=99)),
        submit(iris(optimizer=pb.OptimizerSettings(kind=42))),
        submit(iris(mode=9)),
        submit(inline(to_tensor(np.zeros(4)), good_y())),
        submit(inline(good_x(), pb.Tensor(shape=[4], dtype=99))),
        submit(inline(to_tensor(np.full((4, 2), nan)), good_y())),
        submit(inline(good_x(), to_tensor(np.array([0, 2**40, 1, 0])))),
        with_tensor("request.init.w1", pb.Tensor(shape=[10**6], dtype=1)),
        submit(pb.TrainingRequest(data=pb.DataSource(dataset_id="f" * 64))),
        submit(pb.TrainingRequest(data=pb.DataSource(path="a\x00b.npz"))),
        for_job("GetJob", "j" * 10**5),
        for_job("WatchJob", "no-such-job"),
        for_job("Predict", ""),
        ("ListJobs", pb.ListJobsRequest(states=[77], page_token="-1")),
        ("ListJobs", pb.ListJobsRequest(page_token="9" * 40)),
        upload(pb.UploadHeader(format="csv", size=2**62, sha256="0" * 64)),
    ]


@pytest.fixture(scope="module")
def barrage(server, stub) -> list[grpc.StatusCode]:
    """Send the representative bad calls 10 times over, 16 at a time."""

    def code(call) -> grpc.StatusCode:
        try:
            send(stub, *call)
        except grpc.RpcError as error:
            return error.code()
        return grpc.StatusCode.OK

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(code, representative_calls() * 10))


def test_many_bad_calls_at_once_are_each_refused_cleanly(barrage):
    expected = {INVALID, NOT_FOUND, EXHAUSTED}
    assert set(barrage) <= expected


def test_server_stays_healthy_after_bad_calls(server, barrage):
    assert server.healthy()


def test_small_job_succeeds_after_bad_calls(server, barrage):
    job = train_small_job(server)
    assert job.state == pb.JOB_STATE_SUCCEEDED, job.error
    assert job.step == job.total_steps
