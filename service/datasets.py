"""Data sets the service stores: uploads, inline arrays and files under a root.

Stored data sets are content-addressed: the id is the SHA-256 of the bytes,
so an upload repeated after a dropped connection lands on the same id and
a job record that names an id always means the same data.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from service.atomic import atomic_write
from service.data import DataError, load_dataset
from service.errors import CapacityError, NotFoundError, PreconditionError

FORMATS = ("npz", "csv")
# CSV is parsed row by row into Python objects, which take many times the
# file's size in memory; larger data sets travel as .npz.
MAX_CSV_BYTES = 64 << 20
DATASET_ID = re.compile(r"[0-9a-f]{64}")


class DatasetStore:
    """Stores data sets under ``directory`` and resolves paths under a root."""

    def __init__(
        self,
        directory: Path,
        data_root: Path | None,
        max_bytes: int,
        max_elements: int | None = None,
    ):
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.data_root = data_root.resolve() if data_root else None
        self.max_bytes = max_bytes
        self.max_elements = max_elements

    def save_upload(
        self, name: str, format: str, size: int, sha256: str, chunks: Iterable[bytes]
    ) -> tuple[str, int, int]:
        """Receive chunks, check size and digest, check the data, store it.

        Returns the data set id, its sample count and its feature count.
        Nothing is kept when any check fails.
        """
        if format not in FORMATS:
            raise DataError(
                "header.format", f"must be one of {', '.join(FORMATS)}; got {format!r}"
            )
        if size <= 0:
            raise DataError("header.size", f"must be positive; got {size}")
        limit = (
            self.max_bytes if format == "npz" else min(self.max_bytes, MAX_CSV_BYTES)
        )
        if size > limit:
            raise CapacityError(
                "header.size",
                f"is {size} bytes; this server accepts at most {limit} for "
                f".{format} (send large data sets as .npz)",
            )
        if not DATASET_ID.fullmatch(sha256):
            raise DataError("header.sha256", "must be 64 lowercase hex digits")

        digest = hashlib.sha256()
        received = 0
        # Closed by the with below; kept past it so the file can be renamed.
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115
            dir=self.directory, prefix=".upload-", suffix=f".{format}", delete=False
        )
        try:
            with handle:
                for chunk in chunks:
                    received += len(chunk)
                    if received > size:
                        raise DataError(
                            "chunk", f"more than the declared {size} bytes arrived"
                        )
                    digest.update(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            if received != size:
                raise DataError(
                    "header.size", f"declared {size} bytes but {received} arrived"
                )
            if digest.hexdigest() != sha256:
                raise DataError(
                    "header.sha256",
                    f"does not match the data (got {digest.hexdigest()}); "
                    "the upload was corrupted, send it again",
                )
            try:
                dataset = load_dataset(handle.name, max_elements=self.max_elements)
            except DataError as error:
                # Name the client's file, not this server's temporary one.
                message = str(error).replace(handle.name, name or "the upload")
                raise type(error)(error.field, message) from None
            os.replace(handle.name, self.directory / f"{sha256}.{format}")
        finally:
            Path(handle.name).unlink(missing_ok=True)
        return sha256, len(dataset.x), dataset.x.shape[1]

    def save_arrays(self, x: np.ndarray, y: np.ndarray) -> str:
        """Store arrays sent inline with a request; return the file's path."""
        buffer = io.BytesIO()
        np.savez(buffer, x=x, y=y)
        content = buffer.getvalue()
        path = self.directory / f"{hashlib.sha256(content).hexdigest()}.npz"
        if not path.exists():
            atomic_write(path, lambda handle: handle.write(content))
        return str(path)

    def path_for(self, dataset_id: str) -> str:
        """The stored file of an uploaded data set."""
        if not DATASET_ID.fullmatch(dataset_id):
            raise DataError(
                "request.data.dataset_id",
                "must be 64 lowercase hex digits, as UploadDataset returns",
            )
        for format in FORMATS:
            path = self.directory / f"{dataset_id}.{format}"
            if path.exists():
                return str(path)
        raise NotFoundError(
            "request.data.dataset_id",
            f"no uploaded data set has id {dataset_id!r}; upload it first",
        )

    def under_root(self, relative: str) -> str:
        """Resolve a client's path inside the data root, refusing escapes."""
        field = "request.data.path"
        if self.data_root is None:
            raise PreconditionError(
                field,
                "this server has no data root (gradpool serve --data-root); "
                "upload the data set instead",
            )
        try:
            path = (self.data_root / relative).resolve()
            outside = Path(relative).is_absolute() or not path.is_relative_to(
                self.data_root
            )
            exists = path.is_file()
        except (OSError, ValueError) as error:  # a NUL byte, a name too long
            raise DataError(field, f"is not a usable file name: {error}") from None
        if outside:
            raise DataError(field, f"{relative!r} is outside the server's data root")
        if not exists:
            raise NotFoundError(field, f"{relative!r} does not exist in the data root")
        return str(path)
