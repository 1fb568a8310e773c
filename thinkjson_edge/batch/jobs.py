"""The job database of a batch: one SQLite row per input file, in the output folder.

States and transitions (one transaction each, so a kill at any instant leaves a known state)::

    (new file) ──claim──▶ running ──finish──▶ done | invalid | failed
                             │
                             └─ found at start (the process died) ──▶ pending ──claim──▶ …

    done     the result file is written and valid against the schema
    invalid  the result file is written, but still fails the schema after correction
    failed   no result file: the reason is in ``error``
    pending  waiting to be (re)processed: left running by a process that died, or given back
             when a file is abandoned on a second Ctrl-C

A row is redone when the file's content hash or the schema hash changes; ``failed`` and
``invalid`` rows are redone only when asked (``--retry-failed``). ``attempts`` counts the
tries at the current content and schema.

Durability: WAL journal with ``synchronous=FULL``. A batch commits twice per document, and a
document costs seconds of model time, so one fsync per commit is free in comparison; in
exchange a row marked done survives a power cut, not only a killed process (with NORMAL the
last commits could roll back, and those documents would be redone).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from thinkjson_edge.errors import JobDatabaseError

# A file the process died on this often may be crashing it: worth a warning (it is still redone).
SUSPECT_ATTEMPTS = 3
BUSY_TIMEOUT_MS = 10_000
_SCHEMA_VERSION = 1

_CREATE = """
CREATE TABLE IF NOT EXISTS jobs (
    file                 TEXT PRIMARY KEY,   -- path relative to the input folder, '/'-separated
    content_hash         TEXT NOT NULL,      -- sha256 of the file's bytes ('' if unreadable)
    schema_hash          TEXT NOT NULL,      -- sha256 of the schema's canonical text
    size                 INTEGER NOT NULL,   -- the file's size and mtime when it was hashed,
    mtime_ns             INTEGER NOT NULL,   -- so an unchanged file is not hashed again
    status               TEXT NOT NULL
        CHECK (status IN ('pending', 'running', 'done', 'failed', 'invalid')),
    attempts             INTEGER NOT NULL DEFAULT 0,
    model_attempts       INTEGER,            -- extraction attempts (2 when self-corrected)
    findings             TEXT,               -- JSON list of the kept attempt's findings
    error                TEXT,
    prompt_seconds       REAL,
    decode_seconds       REAL,
    total_seconds        REAL,               -- reading, extracting and writing this file
    prompt_tokens        INTEGER,            -- the three token counts sum over the attempts
    cached_prompt_tokens INTEGER,
    generated_tokens     INTEGER,
    updated_at           TEXT NOT NULL       -- ISO 8601, UTC
)
"""


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INVALID = "invalid"


class Decision(StrEnum):
    """What a batch does with an input file, given its row."""

    NEW = "new"
    CHANGED = "changed"  # content or schema differs from the row's
    RESUME = "resume"  # pending: a process died on it, or it was abandoned
    RETRY = "retry"  # failed or invalid, and retrying was asked for
    SKIP_DONE = "skip-done"
    SKIP_FAILED = "skip-failed"
    SKIP_INVALID = "skip-invalid"

    @property
    def needs_work(self) -> bool:
        return not self.name.startswith("SKIP")


@dataclass(frozen=True)
class Job:
    """One row of the job database."""

    file: str
    content_hash: str
    schema_hash: str
    size: int
    mtime_ns: int
    status: JobStatus
    attempts: int
    model_attempts: int | None
    findings: list[dict[str, Any]] | None
    error: str | None
    prompt_seconds: float | None
    decode_seconds: float | None
    total_seconds: float | None
    prompt_tokens: int | None
    cached_prompt_tokens: int | None
    generated_tokens: int | None
    updated_at: str


@dataclass(frozen=True)
class Outcome:
    """What processing a file produced, as it is recorded."""

    status: JobStatus
    error: str | None = None
    findings: list[dict[str, Any]] | None = None
    model_attempts: int | None = None
    prompt_seconds: float | None = None
    decode_seconds: float | None = None
    total_seconds: float | None = None
    prompt_tokens: int | None = None
    cached_prompt_tokens: int | None = None
    generated_tokens: int | None = None


def decide(job: Job | None, content_hash: str, schema_hash: str, *, retry_failed: bool) -> Decision:
    """Whether and why a file with these hashes is processed, given its row (if any)."""
    if job is None:
        return Decision.NEW
    if job.content_hash != content_hash or job.schema_hash != schema_hash:
        return Decision.CHANGED
    if job.status in (JobStatus.PENDING, JobStatus.RUNNING):
        return Decision.RESUME
    if job.status == JobStatus.DONE:
        return Decision.SKIP_DONE
    if retry_failed:
        return Decision.RETRY
    return Decision.SKIP_FAILED if job.status == JobStatus.FAILED else Decision.SKIP_INVALID


class JobStore:
    """The job database: one connection, explicit ``BEGIN IMMEDIATE`` transactions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            # isolation_level=None: no implicit transactions, each one is opened here.
            self._db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
            self._db.row_factory = sqlite3.Row
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise JobDatabaseError(f"{path}: the job database cannot use WAL mode ({mode})")
            self._db.execute("PRAGMA synchronous = FULL")
            with self._transaction():
                version = self._db.execute("PRAGMA user_version").fetchone()[0]
                if version not in (0, _SCHEMA_VERSION):
                    raise JobDatabaseError(
                        f"{path}: job database version {version} is newer than this program "
                        f"understands ({_SCHEMA_VERSION}); use another --out folder"
                    )
                self._db.execute(_CREATE)
                self._db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise JobDatabaseError(f"{path}: the job database cannot be used ({exc})") from exc

    def __enter__(self) -> JobStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    @property
    def journal_mode(self) -> str:
        return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    # -- reading -------------------------------------------------------------

    def get(self, file: str) -> Job | None:
        row = self._query("SELECT * FROM jobs WHERE file = ?", (file,))
        return _job(row[0]) if row else None

    def jobs(self) -> dict[str, Job]:
        """Every row, by file."""
        return {row["file"]: _job(row) for row in self._query("SELECT * FROM jobs ORDER BY file")}

    # -- transitions -----------------------------------------------------------

    def recover(self) -> list[Job]:
        """After a process died: its ``running`` rows become pending, to be redone.

        Only call this while no other batch uses the database (the batch holds a lock).
        Returns those rows as they were (``attempts`` tells how often the process died on one).
        """
        with self._transaction():
            rows = self._db.execute(
                "SELECT * FROM jobs WHERE status = ? ORDER BY file", (JobStatus.RUNNING,)
            ).fetchall()
            self._db.execute(
                "UPDATE jobs SET status = ?, updated_at = ? WHERE status = ?",
                (JobStatus.PENDING, _now(), JobStatus.RUNNING),
            )
        return [_job(row) for row in rows]

    def claim(
        self, file: str, content_hash: str, schema_hash: str, size: int, mtime_ns: int
    ) -> Job:
        """Mark a file running (creating its row); ``attempts`` restarts when a hash changed."""
        with self._transaction():
            old = self._db.execute(
                "SELECT content_hash, schema_hash, attempts FROM jobs WHERE file = ?", (file,)
            ).fetchone()
            same = old is not None and (old["content_hash"], old["schema_hash"]) == (
                content_hash,
                schema_hash,
            )
            attempts = old["attempts"] + 1 if same else 1
            self._db.execute(
                """
                INSERT INTO jobs (file, content_hash, schema_hash, size, mtime_ns, status,
                                  attempts, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (file) DO UPDATE SET
                    content_hash = excluded.content_hash, schema_hash = excluded.schema_hash,
                    size = excluded.size, mtime_ns = excluded.mtime_ns,
                    status = excluded.status, attempts = excluded.attempts,
                    model_attempts = NULL, findings = NULL, error = NULL,
                    prompt_seconds = NULL, decode_seconds = NULL, total_seconds = NULL,
                    prompt_tokens = NULL, cached_prompt_tokens = NULL, generated_tokens = NULL,
                    updated_at = excluded.updated_at
                """,
                (
                    file,
                    content_hash,
                    schema_hash,
                    size,
                    mtime_ns,
                    JobStatus.RUNNING,
                    attempts,
                    _now(),
                ),
            )
        job = self.get(file)
        assert job is not None
        return job

    def finish(self, file: str, outcome: Outcome) -> None:
        """Record a running file's outcome (after its result file, if any, is in place)."""
        if outcome.status not in (JobStatus.DONE, JobStatus.INVALID, JobStatus.FAILED):
            raise ValueError(f"not a final status: {outcome.status}")
        with self._transaction():
            updated = self._db.execute(
                """
                UPDATE jobs SET status = ?, error = ?, findings = ?, model_attempts = ?,
                    prompt_seconds = ?, decode_seconds = ?, total_seconds = ?,
                    prompt_tokens = ?, cached_prompt_tokens = ?, generated_tokens = ?,
                    updated_at = ?
                WHERE file = ? AND status = ?
                """,
                (
                    outcome.status,
                    outcome.error,
                    None if outcome.findings is None else json.dumps(outcome.findings),
                    outcome.model_attempts,
                    outcome.prompt_seconds,
                    outcome.decode_seconds,
                    outcome.total_seconds,
                    outcome.prompt_tokens,
                    outcome.cached_prompt_tokens,
                    outcome.generated_tokens,
                    _now(),
                    file,
                    JobStatus.RUNNING,
                ),
            ).rowcount
            if updated != 1:
                raise JobDatabaseError(f"{self.path}: {file} was not running; not recorded")

    def mark_reviewed(self, file: str) -> bool:
        """Record that a person saved a schema-valid result for ``file`` (the review screen).

        An ``invalid`` row becomes ``done``, so ``--retry-failed`` does not overwrite the
        reviewed result; a row of a file that changes since is still redone. Returns whether
        the row was changed.
        """
        with self._transaction():
            updated = self._db.execute(
                "UPDATE jobs SET status = ?, error = NULL, findings = '[]', updated_at = ? "
                "WHERE file = ? AND status = ?",
                (JobStatus.DONE, _now(), file, JobStatus.INVALID),
            ).rowcount
        return updated == 1

    def release(self, file: str) -> None:
        """Give back a running file that was abandoned (not a crash: the try is not counted)."""
        with self._transaction():
            self._db.execute(
                "UPDATE jobs SET status = ?, attempts = max(attempts - 1, 0), updated_at = ? "
                "WHERE file = ? AND status = ?",
                (JobStatus.PENDING, _now(), file, JobStatus.RUNNING),
            )

    def record_stat(self, file: str, size: int, mtime_ns: int) -> None:
        """Remember a new size and mtime for a file whose content hash did not change."""
        with self._transaction():
            self._db.execute(
                "UPDATE jobs SET size = ?, mtime_ns = ? WHERE file = ?", (size, mtime_ns, file)
            )

    # -- plumbing ----------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT; rolled back on any exception, Ctrl-C included."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise JobDatabaseError(f"{self.path}: the job database failed ({exc})") from exc

    def _query(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            return self._db.execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise JobDatabaseError(f"{self.path}: the job database failed ({exc})") from exc


def read_jobs(database: Path) -> list[Job]:
    """Every row, sorted by file, for a viewer: read-only, so it never disturbs a running batch.

    WAL lets it read while the batch writes; it sees the last committed state. The rows are
    never written; when no batch has the database open, SQLite may leave its empty ``-wal``
    and ``-shm`` side files behind, which the next batch opens and removes as usual.
    """
    try:
        db = sqlite3.connect(
            f"{database.absolute().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000
        )
    except sqlite3.Error as exc:
        raise JobDatabaseError(f"{database}: the job database cannot be read ({exc})") from exc
    try:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT * FROM jobs ORDER BY file").fetchall()
        return [_job(row) for row in rows]
    except sqlite3.Error as exc:
        raise JobDatabaseError(f"{database}: the job database cannot be read ({exc})") from exc
    finally:
        db.close()


def _job(row: sqlite3.Row) -> Job:
    values = dict(row)
    values["status"] = JobStatus(values["status"])
    if values["findings"] is not None:
        values["findings"] = json.loads(values["findings"])
    return Job(**values)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
