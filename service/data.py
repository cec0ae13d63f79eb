"""Training data: loading, checking, the validation split and standardisation.

A data set is an input matrix x (N, D) and targets y that are either integer
class labels (N,) or a float target matrix (N, K). Sources are the real data
sets bundled with scikit-learn, ``.npz`` files with arrays ``x`` and ``y``,
and ``.csv`` files whose target is one column (the last unless told).

Whether y is read as class labels or as regression targets:

- ``.npz``: the dtype of y decides. Integer (or bool) y holds class labels,
  floating y a target matrix (a 1-D float y becomes one column).
- ``.csv``: every cell is text, so the values decide. The target column is
  read as class labels only if all its values are whole numbers, none is
  negative, the largest is below ``MAX_CSV_CLASSES``, and there are no more
  classes (largest + 1) than rows. Anything else, such as a price column of
  100000, 101000, ..., is a float regression target (N, 1). The choice is
  logged; to override it, save the data as ``.npz`` with an integer or a
  float y.

Labels of any source may name at most ``MAX_CLASSES`` classes, and more than
``MAX_CSV_CLASSES`` only when there are at least as many samples.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.errors import CapacityError, DataError
from workers.network import Array

logger = logging.getLogger(__name__)

BUILTIN_DATASETS = ("digits", "iris", "wine", "breast_cancer")

# A whole-number CSV column with values this large is far more likely a
# quantity (a price, a year, an id) than a class label.
MAX_CSV_CLASSES = 1000

# Each class is one output unit, so W2 has one row per class; labels beyond
# this are ids or quantities stored as integers, not classes to learn.
MAX_CLASSES = 100_000

# What np.load and reading an archive's members raise for a file that is
# not a readable .npz: a truncated or corrupt zip, pickled or non-numpy
# content, an empty file, a permission error.
UNREADABLE_NPZ = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


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
            x, y = _load_npz(path, max_elements)
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


@contextlib.contextmanager
def open_npz(
    path: Path, field: str, needs: str, max_elements: int | None = None
) -> Iterator[np.lib.npyio.NpzFile]:
    """Open an .npz archive; anything unreadable becomes DataError(field).

    ``needs`` names the arrays the caller reads, for the message about a
    file that is not an archive. Errors raised while reading arrays inside
    the ``with`` block are translated too, since members are read lazily.
    With ``max_elements``, every member's declared shape is checked against
    it before any array is read.
    """
    try:
        archive = np.load(path, allow_pickle=False)
    except UNREADABLE_NPZ as error:
        raise DataError(field, f"cannot read {path} as .npz: {error}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        # np.load goes by the file's content, not its name: a renamed .npy
        # file loads as a bare array.
        raise DataError(
            field,
            f"{path} holds a single {archive.dtype} array of shape "
            f"{archive.shape} (an .npy file), not an .npz archive of named "
            f"arrays; it needs {needs}, as written by np.savez",
        )
    with archive:
        try:
            if max_elements is not None:
                _check_member_sizes(archive, path, field, max_elements)
            yield archive
        except DataError:
            raise
        except UNREADABLE_NPZ as error:
            raise DataError(field, f"cannot read {path} as .npz: {error}") from None


def _check_member_sizes(
    archive: np.lib.npyio.NpzFile, path: Path, field: str, max_elements: int
) -> None:
    """Read only the .npy headers and refuse arrays larger than allowed."""
    for member in archive.zip.namelist():
        with archive.zip.open(member) as handle:
            version = np.lib.format.read_magic(handle)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, _ = read_header(handle)
        elements = math.prod(shape)
        if elements > max_elements:
            raise CapacityError(
                field,
                f"{path.name} holds array {member.removesuffix('.npy')!r} of "
                f"shape {shape} ({elements} elements); the most allowed is "
                f"{max_elements}",
            )


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


def _load_npz(path: Path, max_elements: int | None) -> tuple[np.ndarray, np.ndarray]:
    with open_npz(path, "dataset", "arrays 'x' and 'y'", max_elements) as archive:
        missing = {"x", "y"} - set(archive.files)
        if missing:
            raise DataError(
                "dataset",
                f"{path} lacks array {sorted(missing)[0]!r}; an .npz data "
                f"set needs arrays 'x' and 'y' (it has {sorted(archive.files)})",
            )
        return archive["x"], archive["y"]


def _load_csv(path: Path, target_column: str | None) -> tuple[np.ndarray, np.ndarray]:
    rows = _read_csv_rows(path)
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
    target = _target_index(path, header, width, target_column)
    first_line = 2 if header else 1
    values = np.empty((len(rows), width))  # (N, D + 1)
    for index, row in enumerate(rows):
        line = first_line + index
        if len(row) != width:
            raise DataError(
                "dataset",
                f"{path} line {line} has {len(row)} columns; expected {width}",
            )
        try:
            values[index] = [float(cell) for cell in row]
        except ValueError:
            column = next(c for c, cell in enumerate(row) if not _is_number(cell))
            raise DataError(
                "dataset", _not_a_number(path, line, column, row, header, target)
            ) from None

    y = values[:, target]
    x = np.delete(values, target, axis=1)
    reason = _regression_reason(y)
    if reason is None:
        logger.info(
            "dataset=%s target_column=%d read_as=labels num_classes=%d",
            path,
            target,
            int(y.max()) + 1,
        )
        return x, y.astype(np.int64)
    logger.info(
        "dataset=%s target_column=%d read_as=regression reason=%r",
        path,
        target,
        reason,
    )
    return x, y


def _read_csv_rows(path: Path) -> list[list[str]]:
    """The non-empty rows of a UTF-8 CSV file, as text cells."""
    try:
        content = path.read_bytes()
    except OSError as error:
        reason = error.strerror or str(error)
        raise DataError("dataset", f"cannot read {path}: {reason}") from None
    try:
        # utf-8-sig also accepts the byte-order mark spreadsheet programs
        # write, which would otherwise end up in the first header name.
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = content.count(b"\n", 0, error.start) + 1
        raise DataError(
            "dataset",
            f"{path} is not UTF-8 text: line {line} has byte "
            f"{content[error.start]:#04x}; save the file as UTF-8",
        ) from None
    try:
        return [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except csv.Error as error:
        raise DataError("dataset", f"cannot read {path} as .csv: {error}") from None


def _regression_reason(y: np.ndarray) -> str | None:
    """Why a CSV target column is a regression target; None for labels."""
    if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
        return "not all values are whole numbers"
    if y.min() < 0:
        return f"a value is negative ({y.min():g})"
    if y.max() >= MAX_CSV_CLASSES:
        return f"the largest value {y.max():g} is not below {MAX_CSV_CLASSES}"
    if y.max() + 1 > len(y):
        return f"labels up to {y.max():g} would mean more classes than {len(y)} rows"
    return None


def _not_a_number(
    path: Path,
    line: int,
    column: int,
    row: list[str],
    header: list[str] | None,
    target: int,
) -> str:
    """Where a CSV cell is not a number, its text, and how to fix it."""
    name = f" ({header[column]!r})" if header else ""
    if column == target:
        hint = "class names must be encoded as 0, 1, 2, ..."
    else:
        hint = "features must be numbers; encode categories as 0, 1, 2, ..."
    place = f"{path} line {line}, column {column + 1}{name}"
    return f"{place}: {row[column]!r} is not a number; {hint}"


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _is_numeric_row(row: list[str]) -> bool:
    return all(_is_number(cell) for cell in row)


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
