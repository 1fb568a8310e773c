"""The TUI's batch view: the manifest, the folder it reads, and the screen, over real files.

A batch output folder is made without the model: a real ``Batch`` is opened and closed (that
writes the manifest, takes and drops the lock), then rows are driven through ``JobStore`` as
a run would leave them, and result files written where a run writes them.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from textual.app import App, ComposeResult
from textual.message import Message
from textual.notifications import Notify
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from thinkjson_edge.batch.jobs import (
    Decision,
    Job,
    JobStatus,
    JobStore,
    Outcome,
    decide,
    read_jobs,
)
from thinkjson_edge.batch.layout import DATABASE_NAME, LOCK_NAME, MANIFEST_NAME, result_path
from thinkjson_edge.batch.runner import (
    Batch,
    remove_temporaries,
    scan_inputs,
)
from thinkjson_edge.errors import InputError, JobDatabaseError, SchemaError
from thinkjson_edge.files import write_atomically
from thinkjson_edge.schema import load_schema
from thinkjson_edge.tui.batch_folder import BatchFolder
from thinkjson_edge.tui.batch_screen import BatchScreen, row_texts

if TYPE_CHECKING:
    from thinkjson_edge.pipeline.extractor import Extractor

SCHEMA = Path(__file__).resolve().parent.parent / "fixtures" / "sroie" / "schema.json"
FAILED_REASON = "c.txt: cannot be read (Permission denied)"
# What each input's row says; None: claimed, then given back (pending); "running": claimed.
ROWS: dict[str, Outcome | str | None] = {
    "a.txt": Outcome(JobStatus.DONE, findings=[], model_attempts=1, total_seconds=2.34),
    "b.txt": Outcome(
        JobStatus.INVALID,
        error="1 schema error(s) remain after correction; written anyway",
        findings=[
            {"kind": "not-grounded", "path": "/company", "message": "not in the document"},
            {"kind": "schema", "path": "/date", "message": "'' should be non-empty"},
        ],
        model_attempts=2,
        total_seconds=5.0,
    ),
    "c.txt": Outcome(JobStatus.FAILED, error=FAILED_REASON, total_seconds=0.04),
    "e.txt": "running",
    "sub/d.txt": None,
}


def no_model() -> Extractor:
    raise AssertionError("the batch view never loads a model")


def add_row(out_dir: Path, rel: str, outcome: Outcome | str | None) -> None:
    """One row, left the way a run leaves it, with its result file when it has one."""
    with JobStore(out_dir / DATABASE_NAME) as store:
        store.claim(rel, f"hash of {rel}", "schema hash", 100, 0)
        if outcome is None:
            store.release(rel)
        elif isinstance(outcome, Outcome):
            if outcome.status != JobStatus.FAILED:
                write_atomically(result_path(out_dir, rel), '{"company": "X"}\n')
            store.finish(rel, outcome)


def make_batch(root: Path) -> Path:
    """``root/in`` with its inputs and ``root/out`` as a batch left it; returns ``root/out``."""
    in_dir, out_dir = root / "in", root / "out"
    for rel in ROWS:
        (in_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (in_dir / rel).write_text(f"receipt {rel}\nTOTAL: 1.00\n", encoding="utf-8")
    with Batch(in_dir, out_dir, load_schema(SCHEMA), no_model):
        pass
    for rel, outcome in ROWS.items():
        add_row(out_dir, rel, outcome)
    return out_dir


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return make_batch(tmp_path)


# -- the manifest and the folder --------------------------------------------------------


def test_opening_a_batch_writes_the_manifest_which_nothing_takes_for_an_input(
    tmp_path: Path, out_dir: Path
) -> None:
    manifest = json.loads((out_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert manifest == {
        "input_dir": str((tmp_path / "in").resolve()),
        "schema_source": str(SCHEMA),
        "schema": json.loads(SCHEMA.read_text(encoding="utf-8")),
    }
    # Neither a batch over the output folder itself nor the clean-up touches it.
    assert MANIFEST_NAME not in {item.rel for item in scan_inputs(out_dir)}
    assert remove_temporaries(out_dir) == 0
    assert (out_dir / MANIFEST_NAME).is_file()
    # A batch that ended cleanly leaves no pid behind to be taken for a running one.
    assert (out_dir / LOCK_NAME).read_text(encoding="utf-8") == ""


def test_a_folder_that_is_not_a_batch_output_folder_is_refused_saying_why(
    tmp_path: Path,
) -> None:
    with pytest.raises(InputError, match="no such folder"):
        BatchFolder.open(tmp_path / "missing")
    folder = tmp_path / "plain"
    folder.mkdir()
    with pytest.raises(InputError, match=r"no job database.*thinkjson-edge batch"):
        BatchFolder.open(folder)
    JobStore(folder / DATABASE_NAME).close()
    with pytest.raises(InputError, match=r"no manifest.*thinkjson-edge batch"):
        BatchFolder.open(folder)
    (folder / MANIFEST_NAME).write_text('{"input_dir": ', encoding="utf-8")
    with pytest.raises(InputError, match="manifest is garbled"):
        BatchFolder.open(folder)
    (folder / MANIFEST_NAME).write_text('{"input_dir": "in", "schema": {}}', encoding="utf-8")
    with pytest.raises(InputError, match=r"garbled .*'schema_source' is missing"):
        BatchFolder.open(folder)
    bad_schema = {"input_dir": "in", "schema_source": "s.json", "schema": {"type": "array"}}
    (folder / MANIFEST_NAME).write_text(json.dumps(bad_schema), encoding="utf-8")
    with pytest.raises(SchemaError, match=r"s\.json"):
        BatchFolder.open(folder)


def test_the_folder_lists_counts_and_locates_every_file(tmp_path: Path, out_dir: Path) -> None:
    folder = BatchFolder.open(out_dir)
    assert folder.input_dir == (tmp_path / "in").resolve()
    assert folder.schema.schema["title"] == "SROIE receipt key information"
    jobs = folder.jobs()
    assert [job.file for job in jobs] == sorted(ROWS)
    assert {job.file: job.status for job in jobs}["sub/d.txt"] == JobStatus.PENDING
    assert folder.counts() == {
        JobStatus.PENDING: 1,
        JobStatus.RUNNING: 1,
        JobStatus.DONE: 1,
        JobStatus.FAILED: 1,
        JobStatus.INVALID: 1,
    }
    assert folder.document_path("sub/d.txt").read_text(encoding="utf-8").startswith("receipt")
    assert folder.result_path("a.txt") == out_dir / "a.txt.json"
    assert folder.result_path("a.txt").is_file()
    assert folder.report_path("sub/d.txt") == out_dir / ".reports" / "sub" / "d.txt.report.json"


def test_a_reviewed_invalid_file_becomes_done_so_a_retry_keeps_the_review(
    out_dir: Path,
) -> None:
    folder = BatchFolder.open(out_dir)
    assert folder.mark_reviewed("b.txt")  # invalid -> done
    assert not folder.mark_reviewed("a.txt")  # done already: nothing to change
    assert not folder.mark_reviewed("c.txt")  # failed has no result file to review
    jobs = {job.file: job for job in folder.jobs()}
    assert jobs["b.txt"].status == JobStatus.DONE
    assert jobs["b.txt"].error is None and jobs["b.txt"].findings == []
    assert jobs["c.txt"].status == JobStatus.FAILED
    done = decide(jobs["b.txt"], "hash of b.txt", "schema hash", retry_failed=True)
    assert done == Decision.SKIP_DONE


def test_jobs_are_read_while_a_batch_holds_a_write_transaction(out_dir: Path) -> None:
    database = out_dir / DATABASE_NAME
    with JobStore(database):  # as a running batch keeps it open (WAL)
        writer = sqlite3.connect(database, isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")
            writer.execute("UPDATE jobs SET status = 'done' WHERE file = 'e.txt'")
            started = time.monotonic()
            before = {job.file: job.status for job in read_jobs(database)}
            assert time.monotonic() - started < 1  # not waiting for the writer
            assert before["e.txt"] == JobStatus.RUNNING  # the last committed state
            writer.execute("COMMIT")
        finally:
            writer.close()
        after = {job.file: job.status for job in read_jobs(database)}
        assert after["e.txt"] == JobStatus.DONE
    missing = out_dir / "missing.sqlite"
    with pytest.raises(JobDatabaseError, match="cannot be read"):
        read_jobs(missing)
    assert not missing.exists()  # read-only: not even an empty database is made


def test_running_pid_is_the_locks_pid_only_while_that_process_lives(out_dir: Path) -> None:
    folder = BatchFolder.open(out_dir)
    lock = out_dir / LOCK_NAME
    assert folder.running_pid() is None  # emptied when the batch closed
    lock.write_text(f"{os.getpid()}\n", encoding="ascii")
    assert folder.running_pid() == os.getpid()
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    lock.write_text(f"{ended.pid}\n", encoding="ascii")
    assert folder.running_pid() is None
    lock.write_text("not a pid\n", encoding="ascii")
    assert folder.running_pid() is None


# -- the screen ---------------------------------------------------------------------------


def test_a_long_reason_is_one_cut_line_in_the_table() -> None:
    failed = read_jobs_of(Outcome(JobStatus.FAILED, error="first line\n" + "x" * 200))
    reason = row_texts(failed)[-1]
    assert reason.startswith("first line xxx") and reason.endswith("…") and len(reason) == 80


def read_jobs_of(outcome: Outcome) -> Job:
    """A job row as the database returns it, made by a real store in a scratch folder."""
    with tempfile.TemporaryDirectory() as scratch:
        add_row(Path(scratch), "z.txt", outcome)
        return read_jobs(Path(scratch) / DATABASE_NAME)[0]


class Host(App[None]):
    """Stands in for the real app: pushes the batch view and records what it asks to open."""

    TITLE = "thinkjson-edge"

    def __init__(self, folder: BatchFolder) -> None:
        super().__init__()
        self.folder = folder
        self.opened: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static("the app's own screen")

    def on_mount(self) -> None:
        self.push_screen(BatchScreen(self.folder))

    def on_batch_screen_open_file(self, message: BatchScreen.OpenFile) -> None:
        assert message.folder is self.folder
        self.opened.append(message.rel)


def drive(out_dir: Path, steps: Callable[[Host, Pilot[None]], Awaitable[None]]) -> list[Message]:
    """Run the host app over the folder, do ``steps``; returns every message seen."""
    seen: list[Message] = []

    async def scenario() -> None:
        app = Host(BatchFolder.open(out_dir))
        async with app.run_test(size=(110, 30), message_hook=seen.append) as pilot:
            await pilot.pause()
            await steps(app, pilot)

    asyncio.run(scenario())
    return seen


def table_of(app: Host) -> DataTable:
    return app.screen.query_one(DataTable)


def shown(app: Host) -> dict[str, list[str]]:
    """The table as text, in display order: file -> its cells."""
    table = table_of(app)
    return {
        row.key.value: [str(cell) for cell in table.get_row(row.key)] for row in table.ordered_rows
    }


def test_the_table_shows_every_file_its_status_and_why_it_failed(out_dir: Path) -> None:
    async def steps(app: Host, pilot: Pilot[None]) -> None:
        assert isinstance(app.screen, BatchScreen)
        rows = shown(app)
        assert list(rows) == ["a.txt", "b.txt", "c.txt", "e.txt", "sub/d.txt"]
        assert rows["a.txt"] == ["a.txt", "✓ done", "1", "0", "2.3", ""]
        assert rows["b.txt"] == [
            "b.txt",
            "! invalid",
            "2",
            "2",
            "5.0",
            "/date: '' should be non-empty",
        ]
        assert rows["c.txt"] == ["c.txt", "✗ failed", "", "", "0.0", FAILED_REASON]
        assert rows["e.txt"][1] == "▶ running"
        assert rows["sub/d.txt"][1:] == ["… pending", "", "", "", ""]
        counts = str(app.screen.query_one("#batch-counts", Static).render())
        assert "✓ 1 done" in counts and "✗ 1 failed" in counts and "… 1 pending" in counts
        finished = str(app.screen.query_one("#batch-finished", Static).render())
        assert finished == "3 of 5 files finished"
        assert "no batch running" in str(app.screen.query_one("#batch-where", Static).render())

    drive(out_dir, steps)


def test_f_shows_only_failed_and_invalid_files_and_back(out_dir: Path) -> None:
    async def steps(app: Host, pilot: Pilot[None]) -> None:
        await pilot.press("f")
        assert list(shown(app)) == ["b.txt", "c.txt"]
        await pilot.press("f")
        assert list(shown(app)) == ["a.txt", "b.txt", "c.txt", "e.txt", "sub/d.txt"]

    drive(out_dir, steps)


def test_rows_added_or_changed_elsewhere_appear_live_and_the_cursor_stays(out_dir: Path) -> None:
    async def steps(app: Host, pilot: Pilot[None]) -> None:
        await pilot.press("down", "down", "down")
        assert app.screen.selected_rel() == "e.txt"
        with JobStore(out_dir / DATABASE_NAME) as store:  # the batch, in another process
            store.finish("e.txt", Outcome(JobStatus.DONE, model_attempts=1, total_seconds=1.0))
        add_row(out_dir, "0-first.txt", Outcome(JobStatus.FAILED, error="empty document"))
        await pilot.pause(1.3)  # the timer's refresh, not a key
        rows = shown(app)
        assert next(iter(rows)) == "0-first.txt"
        assert rows["0-first.txt"][5] == "empty document"
        assert rows["e.txt"][1:5] == ["✓ done", "1", "", "1.0"]
        assert app.screen.selected_rel() == "e.txt"

    drive(out_dir, steps)


def test_enter_opens_a_file_but_not_a_failed_one_without_a_result(out_dir: Path) -> None:
    async def steps(app: Host, pilot: Pilot[None]) -> None:
        await pilot.press("enter")
        assert app.opened == ["a.txt"]
        await pilot.press("down", "o")
        assert app.opened == ["a.txt", "b.txt"]
        await pilot.press("down")
        detail = str(app.screen.query_one("#batch-detail", Static).render())
        assert detail == f"c.txt: {FAILED_REASON}"
        await pilot.press("enter")
        await pilot.pause()
        assert app.opened == ["a.txt", "b.txt"]

    seen = drive(out_dir, steps)
    warnings = [m.notification for m in seen if isinstance(m, Notify)]
    assert len(warnings) == 1
    assert warnings[0].severity == "warning"
    assert "c.txt failed" in warnings[0].message and FAILED_REASON in warnings[0].message


def test_escape_goes_back_only_when_the_view_was_pushed(out_dir: Path) -> None:
    async def steps(app: Host, pilot: Pilot[None]) -> None:
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, BatchScreen)
        assert len(app.screen_stack) == 1

    drive(out_dir, steps)


def test_snapshot_of_the_batch_view(
    tmp_path: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch, snap_compare
) -> None:
    monkeypatch.chdir(tmp_path)  # the header shows "out" and "in", not a temporary path
    assert snap_compare(Host(BatchFolder.open(Path("out"))), terminal_size=(110, 30))
