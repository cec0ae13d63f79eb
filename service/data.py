"""Training data: loading, checking, the validation split and standardisation.

A data set is an input matrix x (N, D) and targets y that are either integer
class labels (N,) or a float target matrix (N, K). Sources are the real data
sets bundled with scikit-learn, ``.npz`` files with arrays ``x`` and ``y``,
and ``.csv`` files whose target is one column (the last unless told).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workers.network import Array

BUILTIN_DATASETS = ("digits", "iris", "wine", "breast_cancer")


class DataError(ValueError):
    """A data set or its options cannot be used; the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


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


def load_dataset(source: str, target_column: str | None = None) -> Dataset:
    """Load and check a bundled data set by name, or an .npz or .csv file."""
    if source in BUILTIN_DATASETS:
        x, y = _load_builtin(source)
    else:
        path = Path(source)
        suffix = path.suffix.lower()
        if suffix not in (".npz", ".csv"):
            raise DataError(
                "dataset",
                f"{source!r} is neither a bundled data set "
                f"({', '.join(BUILTIN_DATASETS)}) nor a .npz or .csv file",
            )
        if not path.is_file():
            raise DataError("dataset", f"file {source!r} does not exist")
        if suffix == ".npz":
            x, y = _load_npz(path)
        else:
            x, y = _load_csv(path, target_column)
    if target_column is not None and not source.endswith(".csv"):
        raise DataError("target_column", "applies only to .csv data sets")
    return check_arrays(source, x, y)


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
        y = y.astype(np.int64)
        if y.min() < 0:
            row = int(np.argmin(y))
            raise DataError(
                "dataset",
                f"labels must be 0, 1, 2, ...; got {y[row]} at row {row}",
            )
    elif np.issubdtype(y.dtype, np.floating):
        y = y.astype(np.float64).reshape(len(y), -1)
        _check_finite("y", y)
    else:
        raise DataError("dataset", f"y must be numeric; got dtype {y.dtype}")
    return Dataset(name, x, y)


def train_val_split(
    dataset: Dataset, val_fraction: float, seed: int
) -> tuple[Dataset, Dataset | None]:
    """Split off round(N * val_fraction) samples, chosen by a seeded shuffle."""
    if not (0 <= val_fraction < 1) or math.isnan(val_fraction):
        raise DataError(
            "val_fraction", f"must be at least 0 and below 1; got {val_fraction}"
        )
    n = len(dataset.x)
    num_val = round(n * val_fraction)
    if val_fraction > 0:
        num_val = max(num_val, 1)
    if num_val >= n:
        raise DataError(
            "val_fraction",
            f"{val_fraction} of {n} samples leaves none to train on; lower it",
        )
    if num_val == 0:
        return dataset, None
    order = np.random.default_rng([seed, 0x5EED]).permutation(n)
    return dataset.subset(order[num_val:]), dataset.subset(order[:num_val])


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


def _load_builtin(name: str) -> tuple[np.ndarray, np.ndarray]:
    # Imported here: scikit-learn is only needed for the bundled data sets.
    from sklearn import datasets

    loader = getattr(datasets, f"load_{name}")
    x, y = loader(return_X_y=True)
    return x, y


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {"x", "y"} - set(archive.files)
            if missing:
                raise DataError(
                    "dataset",
                    f"{path} lacks array {sorted(missing)[0]!r}; an .npz data "
                    f"set needs arrays 'x' and 'y' (it has {sorted(archive.files)})",
                )
            return archive["x"], archive["y"]
    except (OSError, ValueError) as error:
        if isinstance(error, DataError):
            raise
        raise DataError("dataset", f"cannot read {path} as .npz: {error}") from error


def _load_csv(path: Path, target_column: str | None) -> tuple[np.ndarray, np.ndarray]:
    with path.open(newline="") as handle:
        rows = [row for row in csv.reader(handle) if row]
    if not rows:
        raise DataError("dataset", f"{path} is empty")
    header = None
    if not _is_numeric_row(rows[0]):
        header, rows = rows[0], rows[1:]
    if not rows:
        raise DataError("dataset", f"{path} has a header but no data rows")

    width = len(rows[0])
    if width < 2:
        raise DataError("dataset", f"{path} needs at least two columns; got {width}")
    values = np.empty((len(rows), width))
    for line, row in enumerate(rows, start=2 if header else 1):
        if len(row) != width:
            raise DataError(
                "dataset",
                f"{path} line {line} has {len(row)} columns; expected {width}",
            )
        try:
            values[line - (2 if header else 1)] = [float(cell) for cell in row]
        except ValueError as error:
            raise DataError(
                "dataset", f"{path} line {line} has a value that is not a number"
            ) from error

    target = _target_index(path, header, width, target_column)
    y = values[:, target]
    x = np.delete(values, target, axis=1)
    if np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        return x, y.astype(np.int64)
    return x, y


def _is_numeric_row(row: list[str]) -> bool:
    try:
        [float(cell) for cell in row]
    except ValueError:
        return False
    return True


def _target_index(
    path: Path, header: list[str] | None, width: int, target_column: str | None
) -> int:
    if target_column is None:
        return width - 1
    if header and target_column in header:
        return header.index(target_column)
    try:
        index = int(target_column)
    except ValueError:
        names = f"; columns are {', '.join(header)}" if header else ""
        raise DataError(
            "target_column", f"{target_column!r} is not a column of {path}{names}"
        ) from None
    if not -width <= index < width:
        raise DataError(
            "target_column",
            f"index {index} is outside the {width} columns of {path}",
        )
    return index % width
