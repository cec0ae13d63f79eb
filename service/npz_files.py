"""Reading ``.npz`` archives: opening them safely and taking their arrays.

An archive is opened without pickle support, and anything that makes it
unreadable (a corrupt zip, a renamed ``.npy`` file, an array larger than
allowed) becomes a ``DataError`` naming the request field it came from. Both
data sets (arrays ``x`` and ``y``) and initial weights are read this way.
"""

from __future__ import annotations

import contextlib
import math
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from service.errors import CapacityError, DataError

# What np.load and reading an archive's members raise for a file that is
# not a readable .npz: a truncated or corrupt zip, pickled or non-numpy
# content, an empty file, a permission error.
UNREADABLE_NPZ = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


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


def load_npz_dataset(
    path: Path, max_elements: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """The arrays ``x`` and ``y`` of an .npz data set, as stored."""
    with open_npz(path, "dataset", "arrays 'x' and 'y'", max_elements) as archive:
        missing = {"x", "y"} - set(archive.files)
        if missing:
            raise DataError(
                "dataset",
                f"{path} lacks array {sorted(missing)[0]!r}; an .npz data "
                f"set needs arrays 'x' and 'y' (it has {sorted(archive.files)})",
            )
        return archive["x"], archive["y"]


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
