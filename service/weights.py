"""Weight files: W1, b1, W2, b2 in an ``.npz`` that acts on raw input features.

Training may run on standardised inputs x' = (x - mu) / s. Since
z1 = x' W1^T + b1 = x (W1 / s)^T + (b1 - W1 (mu / s)), a saved model folds the
standardisation into W1 and b1 and needs no separate preprocessing; initial
weights read from a file are unfolded the same way.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from service.atomic import atomic_write
from service.data import DataError, Standardizer, check_readable_file
from service.npz_files import open_npz
from workers.network import Params


def read_weights(path: str) -> Params:
    """Read and check W1, b1, W2, b2 (as float64) from an .npz file."""
    file = Path(path)
    check_readable_file("init", file)
    with open_npz(file, "init", "arrays W1, b1, W2, b2") as archive:
        missing = [name for name in Params._fields if name not in archive.files]
        if missing:
            raise DataError(
                "init",
                f"{path} lacks {', '.join(missing)}; it needs arrays "
                "W1, b1, W2, b2 as written by --save",
            )
        arrays = [np.asarray(archive[name]) for name in Params._fields]

    W1, b1, W2, b2 = arrays
    H = W1.shape[0] if W1.ndim == 2 else -1
    K = W2.shape[0] if W2.ndim == 2 else -1
    consistent = (
        W1.ndim == 2
        and H > 0
        and b1.shape == (H,)
        and W2.ndim == 2
        and W2.shape[1] == H
        and b2.shape == (K,)
    )
    if not consistent:
        shapes = ", ".join(
            f"{n} {a.shape}" for n, a in zip(Params._fields, arrays, strict=True)
        )
        raise DataError(
            "init",
            f"{path} has {shapes}; they must be W1 (H, D), b1 (H,), W2 (K, H), "
            "b2 (K,) with at least one hidden unit (H > 0)",
        )
    if W1.shape[1] == 0 or K == 0:
        raise DataError(
            "init",
            f"{path} has W1 {W1.shape} and W2 {W2.shape}; the network needs at "
            "least one input (D > 0) and one output (K > 0)",
        )
    for name, array in zip(Params._fields, arrays, strict=True):
        if not np.issubdtype(array.dtype, np.floating):
            raise DataError("init", f"{name} in {path} must be floating point")
        if not np.all(np.isfinite(array)):
            raise DataError("init", f"{name} in {path} has non-finite values")
    return Params(*(a.astype(np.float64) for a in arrays))


def write_weights(path: str, params: Params) -> None:
    """Write W1, b1, W2, b2 to an .npz file atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, **params._asdict())
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()))


def fold_standardizer(params: Params, standardizer: Standardizer) -> Params:
    """Weights on standardised inputs -> the same model on raw inputs."""
    W1, b1, W2, b2 = params
    W1_raw = W1 / standardizer.scale
    b1_raw = b1 - W1_raw @ standardizer.mean
    return Params(W1_raw, b1_raw, W2, b2)


def unfold_standardizer(params: Params, standardizer: Standardizer) -> Params:
    """Weights on raw inputs -> the same model on standardised inputs."""
    W1_raw, b1_raw, W2, b2 = params
    W1 = W1_raw * standardizer.scale
    b1 = b1_raw + W1_raw @ standardizer.mean
    return Params(W1, b1, W2, b2)
