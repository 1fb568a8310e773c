"""The job database alone: states, transitions, skipping by hash, recovery after a crash."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from thinkjson_edge.batch.jobs import (
    Decision,
    JobDatabaseError,
    JobStatus,
    JobStore,
    Outcome,
    decide,
)

CONTENT, SCHEMA = "c" * 64, "s" * 64


@pytest.fixture
def store(tmp_path: Path):
    with JobStore(tmp_path / "jobs.sqlite") as opened:
        yield opened


def test_database_is_in_wal_mode_with_full_sync(store: JobStore) -> None:
    assert store.journal_mode == "wal"
    # A second connection sees the mode too: it is a property of the file, not the connection.
    other = sqlite3.connect(store.path)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other.close()
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_new_file_is_claimed_then_done_then_skipped(store: JobStore) -> None:
    assert decide(None, CONTENT, SCHEMA, retry_failed=False) == Decision.NEW
    job = store.claim("a.txt", CONTENT, SCHEMA, 10, 111)
    assert (job.status, job.attempts) == (JobStatus.RUNNING, 1)
    outcome = Outcome(
        JobStatus.DONE,
        findings=[{"kind": "not-grounded", "path": "/total", "message": "m"}],
        model_attempts=1,
        prompt_seconds=0.5,
        decode_seconds=1.5,
        total_seconds=2.1,
        prompt_tokens=800,
        cached_prompt_tokens=207,
        generated_tokens=40,
    )
    store.finish("a.txt", outcome)
    job = store.get("a.txt")
    assert job is not None
    assert job.status == JobStatus.DONE
    assert job.findings == [{"kind": "not-grounded", "path": "/total", "message": "m"}]
    assert (job.prompt_tokens, job.cached_prompt_tokens, job.generated_tokens) == (800, 207, 40)
    assert (job.prompt_seconds, job.decode_seconds, job.total_seconds) == (0.5, 1.5, 2.1)
    assert job.updated_at.endswith("+00:00")
    assert decide(job, CONTENT, SCHEMA, retry_failed=False) == Decision.SKIP_DONE
    assert decide(job, CONTENT, SCHEMA, retry_failed=True) == Decision.SKIP_DONE


def test_changed_content_or_schema_is_processed_again_with_attempts_restarted(
    store: JobStore,
) -> None:
    store.claim("a.txt", CONTENT, SCHEMA, 10, 111)
    store.finish("a.txt", Outcome(JobStatus.DONE))
    job = store.get("a.txt")
    assert decide(job, "d" * 64, SCHEMA, retry_failed=False) == Decision.CHANGED
    assert decide(job, CONTENT, "t" * 64, retry_failed=False) == Decision.CHANGED
    again = store.claim("a.txt", "d" * 64, SCHEMA, 12, 222)
    assert (again.attempts, again.size, again.mtime_ns) == (1, 12, 222)
    assert again.prompt_tokens is None  # the old run's figures are cleared


@pytest.mark.parametrize(
    ("status", "skip"),
    [(JobStatus.FAILED, Decision.SKIP_FAILED), (JobStatus.INVALID, Decision.SKIP_INVALID)],
)
def test_failures_are_skipped_unless_retry_failed(
    store: JobStore, status: JobStatus, skip: Decision
) -> None:
    store.claim("bad.txt", CONTENT, SCHEMA, 1, 1)
    store.finish("bad.txt", Outcome(status, error="why"))
    job = store.get("bad.txt")
    assert job is not None and job.error == "why"
    assert decide(job, CONTENT, SCHEMA, retry_failed=False) == skip
    assert decide(job, CONTENT, SCHEMA, retry_failed=True) == Decision.RETRY
    retried = store.claim("bad.txt", CONTENT, SCHEMA, 1, 1)
    assert (retried.status, retried.attempts, retried.error) == (JobStatus.RUNNING, 2, None)


def test_a_row_left_running_by_a_dead_process_is_redone(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    # A real process claims a file and is killed (SIGKILL) before it can finish it.
    script = (
        "import os, signal, sys; from thinkjson_edge.batch.jobs import JobStore;"
        "store = JobStore(__import__('pathlib').Path(sys.argv[1]));"
        f"store.claim('a.txt', {CONTENT!r}, {SCHEMA!r}, 10, 111);"
        "store.claim('b.txt', 'x', 'y', 1, 1);"
        "os.kill(os.getpid(), signal.SIGKILL)"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True)
    assert done.returncode == -9, done.stderr
    with JobStore(path) as store:
        assert store.get("a.txt").status == JobStatus.RUNNING
        recovered = store.recover()
        assert [(job.file, job.attempts) for job in recovered] == [("a.txt", 1), ("b.txt", 1)]
        job = store.get("a.txt")
        assert job is not None and job.status == JobStatus.PENDING
        assert decide(job, CONTENT, SCHEMA, retry_failed=False) == Decision.RESUME
        assert store.claim("a.txt", CONTENT, SCHEMA, 10, 111).attempts == 2
        assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_file_the_process_keeps_dying_on_is_still_redone(store: JobStore) -> None:
    """Every kill leaves the row to be redone; attempts count the kills (for a warning)."""
    for kills in range(1, 6):
        store.claim("hard.txt", CONTENT, SCHEMA, 1, 1)
        assert [(job.file, job.attempts) for job in store.recover()] == [("hard.txt", kills)]
        job = store.get("hard.txt")
        assert job is not None and job.status == JobStatus.PENDING
        assert decide(job, CONTENT, SCHEMA, retry_failed=False) == Decision.RESUME
    assert store.recover() == []  # nothing running now


def test_release_gives_back_an_abandoned_file_without_counting_the_try(store: JobStore) -> None:
    store.claim("a.txt", CONTENT, SCHEMA, 1, 1)
    store.release("a.txt")
    job = store.get("a.txt")
    assert job is not None and (job.status, job.attempts) == (JobStatus.PENDING, 0)


def test_finish_refuses_a_row_that_is_not_running(store: JobStore) -> None:
    store.claim("a.txt", CONTENT, SCHEMA, 1, 1)
    store.finish("a.txt", Outcome(JobStatus.DONE))
    with pytest.raises(JobDatabaseError, match="was not running"):
        store.finish("a.txt", Outcome(JobStatus.DONE))
    with pytest.raises(ValueError):
        store.finish("a.txt", Outcome(JobStatus.RUNNING))


def test_an_exception_inside_a_transaction_rolls_it_back(store: JobStore) -> None:
    store.claim("a.txt", CONTENT, SCHEMA, 1, 1)
    with pytest.raises(KeyboardInterrupt), store._transaction():
        store._db.execute("UPDATE jobs SET status = 'done'")
        raise KeyboardInterrupt
    assert store.get("a.txt").status == JobStatus.RUNNING
    assert not store._db.in_transaction


def test_one_row_per_file(store: JobStore) -> None:
    for _ in range(3):
        store.claim("a.txt", CONTENT, SCHEMA, 1, 1)
    assert list(store.jobs()) == ["a.txt"]


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(JobDatabaseError, match="cannot be used"):
        JobStore(path)
