"""Reading a data set from a ``.csv`` file, and the rule for its target.

The file is UTF-8 text with one sample per row; a first row that is not all
numbers is a header. The target is one column, the last unless told by name
or index, and the other columns are the inputs x (N, D).

Every cell is text, so the values decide whether the target column holds
class labels or a regression target. It is read as class labels only if all
its values are whole numbers, none is negative, the largest is below
``MAX_CSV_CLASSES``, and there are no more classes (largest + 1) than rows.
Anything else, such as a price column of 100000, 101000, ..., is a float
regression target. The reason for the choice comes back with the arrays so
that the caller can log it; to override it, save the data as ``.npz`` with
an integer or a float y.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.errors import DataError

# A whole-number CSV column with values this large is far more likely a
# quantity (a price, a year, an id) than a class label.
MAX_CSV_CLASSES = 1000


@dataclass(frozen=True)
class CsvData:
    """The arrays read from a CSV file and how its target column was read."""

    x: np.ndarray  # (N, D)
    y: np.ndarray  # (N,) int64 labels, or (N,) float64 regression targets
    target_column: int
    # Why y is a regression target; None when it holds class labels.
    regression_reason: str | None


def load_csv(path: Path, target_column: str | None) -> CsvData:
    """Read x and the target column y of a CSV data set."""
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
        y = y.astype(np.int64)
    return CsvData(x, y, target, reason)


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
