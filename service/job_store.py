"""Durable job records in an embedded SQLite database.

A record holds the request as submitted, the resolved settings, the state,
progress, the latest checkpoint and the final figures, so a restarted
service knows every job it had and can resume the unfinished ones.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL UNIQUE,
    request_id TEXT UNIQUE,
    request BLOB NOT NULL,
    config TEXT NOT NULL,
    state TEXT NOT NULL,
    step INTEGER NOT NULL DEFAULT 0,
    total_steps INTEGER NOT NULL DEFAULT 0,
    checkpoint_step INTEGER NOT NULL DEFAULT 0,
    checkpoint_path TEXT,
    metrics TEXT,
    error TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, seq);
"""

TERMINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")
ACTIVE_STATES = ("PENDING", "RUNNING")


@dataclass(frozen=True)
class JobRecord:
    """One row of the jobs table."""

    job_id: str
    request: bytes  # serialized gradpool.v1.TrainingRequest
    config: dict  # TrainConfig settings
    state: str
    request_id: str | None = None
    step: int = 0
    total_steps: int = 0
    checkpoint_step: int = 0
    checkpoint_path: str | None = None
    metrics: dict | None = None
    error: str = ""
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    seq: int = 0

    @property
    def finished(self) -> bool:
        """Whether the job reached a terminal state."""
        return self.state in TERMINAL_STATES


class JobStore:
    """Thread-safe access to the jobs table of one database file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        with self._lock, self._db:
            # WAL keeps readers unblocked by the writer; synchronous=FULL
            # makes every commit survive a crash of the process or machine.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)

    def insert(self, record: JobRecord) -> JobRecord | None:
        """Add a job; return None if its request_id is taken already."""
        try:
            with self._lock, self._db:
                cursor = self._db.execute(
                    "INSERT INTO jobs (job_id, request_id, request, config, state, "
                    "total_steps, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.job_id,
                        record.request_id,
                        record.request,
                        json.dumps(record.config),
                        record.state,
                        record.total_steps,
                        record.created_at,
                        record.updated_at,
                    ),
                )
        except sqlite3.IntegrityError:
            return None
        return replace(record, seq=cursor.lastrowid)

    def update(self, job_id: str, **changes) -> None:
        """Change some columns of one job and stamp updated_at."""
        changes["updated_at"] = time.time()
        if "metrics" in changes:
            changes["metrics"] = json.dumps(changes["metrics"])
        columns = ", ".join(f"{name} = ?" for name in changes)
        with self._lock, self._db:
            self._db.execute(
                f"UPDATE jobs SET {columns} WHERE job_id = ?",
                (*changes.values(), job_id),
            )

    def get(self, job_id: str) -> JobRecord | None:
        """One job by id."""
        return self._one("SELECT * FROM jobs WHERE job_id = ?", (job_id,))

    def by_request_id(self, request_id: str) -> JobRecord | None:
        """The job submitted with this idempotency key."""
        return self._one("SELECT * FROM jobs WHERE request_id = ?", (request_id,))

    def page(
        self, states: tuple[str, ...], limit: int, before_seq: int | None
    ) -> list[JobRecord]:
        """Up to limit jobs, newest first, older than before_seq if given."""
        query = "SELECT * FROM jobs WHERE 1 = 1"
        arguments: list = []
        if states:
            query += f" AND state IN ({', '.join('?' for _ in states)})"
            arguments.extend(states)
        if before_seq is not None:
            query += " AND seq < ?"
            arguments.append(before_seq)
        query += " ORDER BY seq DESC LIMIT ?"
        arguments.append(limit)
        with self._lock:
            rows = self._db.execute(query, arguments).fetchall()
        return [_record(row) for row in rows]

    def in_states(self, states: tuple[str, ...]) -> list[JobRecord]:
        """Every job in the given states, oldest first."""
        marks = ", ".join("?" for _ in states)
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY seq", states
            ).fetchall()
        return [_record(row) for row in rows]

    def count_by_state(self) -> dict[str, int]:
        """Number of jobs in each state."""
        with self._lock:
            rows = self._db.execute(
                "SELECT state, COUNT(*) FROM jobs GROUP BY state"
            ).fetchall()
        return {state: count for state, count in rows}

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def _one(self, query: str, arguments: tuple) -> JobRecord | None:
        with self._lock:
            row = self._db.execute(query, arguments).fetchone()
        return _record(row) if row else None


def _record(row: sqlite3.Row) -> JobRecord:
    values = dict(row)
    values["config"] = json.loads(values["config"])
    values["metrics"] = json.loads(values["metrics"]) if values["metrics"] else None
    return JobRecord(**values)
