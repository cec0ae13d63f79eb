"""Training data sets: loading, checking, the validation split, standardising.

A data set is an input matrix x (N, D) and targets y that are either integer
class labels (N,) or a float target matrix (N, K). Sources are the real data
sets bundled with scikit-learn, ``.npz`` files with arrays ``x`` and ``y``
(read by ``service.npz_files``), and ``.csv`` files whose target is one
column, the last unless told (read by ``service.csv_files``).

Whether y is read as class labels or as regression targets:

- ``.npz``: the dtype of y decides. Integer (or bool) y holds class labels,
  floating y a target matrix (a 1-D float y becomes one column).
- ``.csv``: every cell is text, so the values decide, by the rule that
  ``service.csv_files`` describes; a column that is not read as labels is a
  float regression target (N, 1). The choice is logged.

Labels of any source may name at most ``MAX_CLASSES`` classes, and more than
``MAX_CSV_CLASSES`` only when there are at least as many samples.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.csv_files import MAX_CSV_CLASSES, load_csv
from service.errors import DataError
from service.npz_files import load_npz_dataset
from workers.network import Array

logger = logging.getLogger(__name__)

BUILTIN_DATASETS = ("digits", "iris", "wine", "breast_cancer")

# Each class is one output unit, so W2 has one row per class; labels beyond
# this are ids or quantities stored as integers, not classes to learn.
MAX_CLASSES = 100_000


@dataclass(frozen=True)
class Dataset:
    """Inputs x (N, D) as float64 and targets y: labels (N,) or matrix (N, K)."""

    name: str
    x: Array
    y: np.ndarray

    @property
    def has_labels(self) -> bool:
        """Whether y holds integer class labels rather than a target matrix."""
        return self.y.ndim == 1

    @property
    def num_classes(self) -> int:
        """Number of classes (largest label + 1); 0 for a target matrix."""
        return int(self.y.max()) + 1 if self.has_labels and len(self.y) else 0

    def subset(self, indices: np.ndarray) -> Dataset:
        """The samples at the given indices, in that order."""
        return Dataset(self.name, self.x[indices], self.y[indices])


def load_dataset(
    source: str, target_column: str | None = None, max_elements: int | None = None
) -> Dataset:
    """Load and check a bundled data set by name, or an .npz or .csv file.

    ``max_elements`` bounds each array of an .npz file before it is read, so
    a small compressed file cannot unpack into more memory than allowed.
    """
    suffix = Path(source).suffix.lower()
    if target_column is not None and suffix != ".csv":
        raise DataError(
            "target_column",
            f"applies only to .csv data sets; the data set is {source!r}",
        )
    if source in BUILTIN_DATASETS:
        x, y = _load_builtin(source)
    else:
        if suffix not in (".npz", ".csv"):
            raise DataError(
                "dataset",
                f"{source!r} is neither a bundled data set "
                f"({', '.join(BUILTIN_DATASETS)}) nor a .npz or .csv file",
            )
        path = Path(source)
        check_readable_file("dataset", path)
        if suffix == ".npz":
            x, y = load_npz_dataset(path, max_elements)
        else:
            x, y = _load_csv(path, target_column)
    return check_arrays(source, x, y)


def check_readable_file(field: str, path: Path) -> None:
    """Raise DataError(field) unless path names an existing regular file."""
    name = repr(str(path))
    try:
        is_dir, exists, is_file = path.is_dir(), path.exists(), path.is_file()
    except OSError as error:  # a name too long, a loop of links
        reason = error.strerror or str(error)
        raise DataError(field, f"{name} is not a usable file name: {reason}") from None
    if is_dir:
        raise DataError(field, f"{name} is a directory; give a file")
    if not exists:
        raise DataError(field, f"file {name} does not exist")
    if not is_file:
        raise DataError(field, f"{name} is not a regular file (a device or pipe)")


def check_arrays(name: str, x: np.ndarray, y: np.ndarray) -> Dataset:
    """Check shapes, dtypes and values, and return a Dataset.

    Labels become int64 and must be non-negative; float targets become a
    (N, K) float64 matrix; inputs become float64.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 2:
        raise DataError("dataset", f"x must be 2-D (samples x features); got {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError("dataset", f"x is empty; got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise DataError("dataset", f"x must be numeric; got dtype {x.dtype}")
    if y.ndim not in (1, 2) or y.shape[0] != x.shape[0]:
        raise DataError(
            "dataset",
            f"y has shape {y.shape}; it needs {x.shape[0]} rows to match x "
            "(labels (N,) or a target matrix (N, K))",
        )
    x = x.astype(np.float64)
    _check_finite("x", x)

    if np.issubdtype(y.dtype, np.integer) or y.dtype == bool:
        if y.ndim != 1:
            raise DataError("dataset", f"integer labels must be 1-D; got {y.shape}")
        _check_labels(y)
        y = y.astype(np.int64)
    elif np.issubdtype(y.dtype, np.floating):
        y = y.astype(np.float64).reshape(len(y), -1)
        if y.shape[1] == 0:
            raise DataError("dataset", f"y has no columns; got shape {y.shape}")
        _check_finite("y", y)
    else:
        raise DataError("dataset", f"y must be numeric; got dtype {y.dtype}")
    return Dataset(name, x, y)


def split_indices(
    n: int, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Training and validation sample indices of a seeded split of n samples.

    round(n * val_fraction) samples, at least one when val_fraction > 0, are
    held out; the validation indices are None when none are.
    """
    if not (0 <= val_fraction < 1) or math.isnan(val_fraction):
        raise DataError(
            "val_fraction", f"must be at least 0 and below 1; got {val_fraction}"
        )
    num_val = round(n * val_fraction)
    if val_fraction > 0:
        num_val = max(num_val, 1)
    if num_val >= n:
        raise DataError(
            "val_fraction",
            f"{val_fraction} of {n} samples leaves none to train on; lower it",
        )
    if num_val == 0:
        return np.arange(n), None
    order = np.random.default_rng([seed, 0x5EED]).permutation(n)
    return order[num_val:], order[:num_val]


def train_val_split(
    dataset: Dataset, val_fraction: float, seed: int
) -> tuple[Dataset, Dataset | None]:
    """Split off round(N * val_fraction) samples, chosen by a seeded shuffle."""
    train, val = split_indices(len(dataset.x), val_fraction, seed)
    if val is None:
        return dataset, None
    return dataset.subset(train), dataset.subset(val)


@dataclass(frozen=True)
class Standardizer:
    """Per-feature affine map x' = (x - mean) / scale fitted on training data.

    Constant features get scale 1, so they are centred but never divided by
    zero.
    """

    mean: Array  # (D,)
    scale: Array  # (D,)

    @classmethod
    def fit(cls, x: Array) -> Standardizer:
        """Fit on the training inputs only."""
        std = x.std(axis=0)
        return cls(x.mean(axis=0), np.where(std > 0, std, 1.0))

    def apply(self, x: Array) -> Array:
        """Standardise x."""
        return (x - self.mean) / self.scale


def _check_finite(name: str, values: np.ndarray) -> None:
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        row, col = (int(i) for i in bad[0])
        raise DataError(
            "dataset",
            f"{name} has {values[row, col]} at row {row}, column {col} "
            f"({len(bad)} non-finite values in all); remove or fill them",
        )


def _check_labels(y: np.ndarray) -> None:
    """Refuse negative labels and more classes than the data can support."""
    if not len(y):
        return
    # Python ints: uint64 labels above 2**63 would wrap in an int64 cast.
    smallest, largest = int(y.min()), int(y.max())
    if smallest < 0:
        row = int(np.argmin(y))
        raise DataError(
            "dataset", f"labels must be 0, 1, 2, ...; got {smallest} at row {row}"
        )
    # Up to MAX_CSV_CLASSES classes are always allowed, since a small file
    # need not show every class. Beyond that a class needs at least one
    # sample on average, or the labels are ids or quantities rather than
    # classes; and MAX_CLASSES bounds the output layer in any case.
    limit = min(MAX_CLASSES, max(MAX_CSV_CLASSES, len(y)))
    if largest + 1 > limit:
        row = int(np.argmax(y))
        raise DataError(
            "dataset",
            f"label {largest} at row {row} would mean {largest + 1:,} classes, "
            f"one output unit each; {len(y)} samples allow at most {limit:,} "
            f"(up to {MAX_CSV_CLASSES:,}, or one per sample up to "
            f"{MAX_CLASSES:,}); number the classes 0, 1, 2, ... or save "
            "regression targets as a float y",
        )


def _load_builtin(name: str) -> tuple[np.ndarray, np.ndarray]:
    # Imported here: scikit-learn is only needed for the bundled data sets.
    from sklearn import datasets

    loader = getattr(datasets, f"load_{name}")
    x, y = loader(return_X_y=True)
    return x, y


def _load_csv(path: Path, target_column: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Read a CSV data set and log how its target column was read."""
    table = load_csv(path, target_column)
    if table.regression_reason is None:
        logger.info(
            "dataset=%s target_column=%d read_as=labels num_classes=%d",
            path,
            table.target_column,
            int(table.y.max()) + 1,
        )
    else:
        logger.info(
            "dataset=%s target_column=%d read_as=regression reason=%r",
            path,
            table.target_column,
            table.regression_reason,
        )
    return table.x, table.y
