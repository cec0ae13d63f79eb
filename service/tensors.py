"""Tensors on the wire: shape, dtype and raw little-endian bytes <-> numpy."""

from __future__ import annotations

import math

import numpy as np

from service.data import DataError
from service.errors import CapacityError
from service.proto import trainer_pb2 as pb

NUMPY_DTYPES = {
    pb.DTYPE_FLOAT32: np.dtype("<f4"),
    pb.DTYPE_FLOAT64: np.dtype("<f8"),
    pb.DTYPE_INT32: np.dtype("<i4"),
    pb.DTYPE_INT64: np.dtype("<i8"),
}
WIRE_DTYPES = {
    dtype.kind + str(dtype.itemsize): code for code, dtype in NUMPY_DTYPES.items()
}


def from_tensor(field: str, tensor: pb.Tensor, max_elements: int) -> np.ndarray:
    """Decode a Tensor, checking dtype, shape, size and byte count.

    ``field`` names the message field in errors. The array is a read-only
    view of the message's bytes.
    """
    dtype = NUMPY_DTYPES.get(tensor.dtype)
    if dtype is None:
        allowed = ", ".join(pb.DType.Name(code) for code in NUMPY_DTYPES)
        raise DataError(field, f"dtype must be one of {allowed}; got {tensor.dtype}")
    shape = tuple(tensor.shape)
    if any(size < 0 for size in shape):
        raise DataError(field, f"shape must not have negative sizes; got {list(shape)}")
    elements = math.prod(shape)
    if elements > max_elements:
        raise CapacityError(
            field, f"has {elements} elements; the server accepts at most {max_elements}"
        )
    expected = elements * dtype.itemsize
    if len(tensor.data) != expected:
        raise DataError(
            field,
            f"data has {len(tensor.data)} bytes; shape {list(shape)} of "
            f"{pb.DType.Name(tensor.dtype)} needs {expected}",
        )
    return np.frombuffer(tensor.data, dtype=dtype).reshape(shape)


def to_tensor(array: np.ndarray) -> pb.Tensor:
    """Encode an array of a supported dtype as little-endian bytes."""
    array = np.asarray(array)
    code = WIRE_DTYPES.get(array.dtype.kind + str(array.dtype.itemsize))
    if code is None:
        raise ValueError(f"cannot send dtype {array.dtype} as a Tensor")
    data = np.ascontiguousarray(array, dtype=NUMPY_DTYPES[code]).tobytes()
    return pb.Tensor(shape=list(array.shape), dtype=code, data=data)
