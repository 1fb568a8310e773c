"""The batch view: every file of a batch output folder, its status, and why it failed.

The screen re-reads the job database every second (a read takes milliseconds, so it is done
on the timer in the UI thread) and touches only the rows that changed, so a batch running
in another process shows up live and the cursor stays put. Opening a file is the app's job:
the screen posts ``BatchScreen.OpenFile``.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, ProgressBar, Static

from thinkjson_edge.batch.jobs import Job, JobStatus
from thinkjson_edge.errors import ThinkJsonError
from thinkjson_edge.pipeline.findings import SCHEMA as SCHEMA_FINDING
from thinkjson_edge.tui.batch_folder import BatchFolder, tally
from thinkjson_edge.tui.paths import shown_path

REFRESH_SECONDS = 1.0
COLUMNS = ("file", "status", "attempts", "findings", "seconds", "reason")
_NUMERIC = {"attempts", "findings", "seconds"}
# The glyph and colour of each status, in the table and in the counts line.
STATUS_LOOK: dict[JobStatus, tuple[str, str]] = {
    JobStatus.DONE: ("✓", "green"),
    JobStatus.INVALID: ("!", "yellow"),
    JobStatus.FAILED: ("✗", "red"),
    JobStatus.PENDING: ("…", "dim"),
    JobStatus.RUNNING: ("▶", "dim"),
}
_FINISHED = (JobStatus.DONE, JobStatus.INVALID, JobStatus.FAILED)
_PROBLEMS = (JobStatus.FAILED, JobStatus.INVALID)
_REASON_WIDTH = 80  # in the table; the line under it shows the whole reason


class BatchScreen(Screen[None]):
    """Watch a batch output folder and pick a file to review."""

    DEFAULT_CSS = """
    BatchScreen {
        layout: vertical;
    }
    BatchScreen #batch-where {
        height: 1;
        padding: 0 1;
    }
    BatchScreen #batch-progress {
        height: 1;
        padding: 0 1;
    }
    BatchScreen #batch-progress ProgressBar {
        width: auto;
    }
    BatchScreen #batch-finished {
        width: 1fr;
        padding: 0 0 0 2;
    }
    BatchScreen #batch-counts {
        height: 1;
        padding: 0 1;
    }
    BatchScreen DataTable {
        height: 1fr;
        border: round $primary 50%;
        border-title-color: $text;
    }
    BatchScreen DataTable:focus {
        border: round $primary;
    }
    BatchScreen #batch-detail {
        height: auto;
        max-height: 4;
        padding: 0 1;
        color: $text-muted;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        # Priority, or the focused table would take enter for its own row selection.
        Binding("enter", "open", "Open", priority=True),
        Binding("o", "open", "Open", show=False),
        Binding("f", "toggle_problems", "Failed only"),
        Binding("r", "refresh", "Refresh"),
        Binding("escape", "back", "Back"),
    ]

    class OpenFile(Message):
        """Open one file of the batch in the review view; the app handles it."""

        def __init__(self, folder: BatchFolder, rel: str) -> None:
            super().__init__()
            self.folder = folder
            self.rel = rel  # the job's key: the path relative to the input folder

    def __init__(self, folder: BatchFolder) -> None:
        super().__init__()
        self.folder = folder
        self.problems_only = False
        self._jobs: dict[str, Job] = {}
        self._shown: dict[str, tuple[str, ...]] = {}  # row key -> its cells' text now

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="batch-where")
        with Horizontal(id="batch-progress"):
            yield ProgressBar(total=1, show_eta=False)
            yield Static(id="batch-finished")
        yield Static(id="batch-counts")
        table: DataTable[Text] = DataTable(cursor_type="row", zebra_stripes=True)
        for column in COLUMNS:
            table.add_column(column, key=column)
        yield table
        yield Static(id="batch-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = shown_path(self.folder.out_dir)
        self.action_refresh()
        self.set_interval(REFRESH_SECONDS, self.action_refresh)

    # -- actions ---------------------------------------------------------------

    def action_refresh(self) -> None:
        """Read the database again; a failed read is shown, the last rows are kept."""
        try:
            jobs = self.folder.jobs()
            pid = self.folder.running_pid()
        except ThinkJsonError as error:
            self._show_where(Text(f"cannot read the batch: {error}", style="red"))
            return
        self._jobs = {job.file: job for job in jobs}
        self._show_where(self._where(pid))
        self._show_progress(jobs)
        self._update_table()

    def action_toggle_problems(self) -> None:
        """Show only the files that need a look (failed and invalid), or all of them."""
        self.problems_only = not self.problems_only
        self._update_table()

    def action_open(self) -> None:
        """Ask the app to open the selected file, unless there is nothing to review."""
        rel = self.selected_rel()
        if rel is None:
            return
        job = self._jobs.get(rel)
        if job and job.status == JobStatus.FAILED and not self.folder.result_path(rel).is_file():
            self.notify(
                f"{rel} failed, so there is no result to review: {job.error or 'no reason'}",
                title="Nothing to open",
                severity="warning",
                markup=False,  # file names and errors may hold brackets
            )
            return
        self.post_message(self.OpenFile(self.folder, rel))

    def action_back(self) -> None:
        """Leave the view, when it was pushed over another screen."""
        if len(self.app.screen_stack) > 1:
            self.dismiss()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide "Back" from the footer when there is nothing to go back to."""
        if action == "back":
            return len(self.app.screen_stack) > 1
        return True

    def selected_rel(self) -> str | None:
        """The file under the cursor, or None when the table is empty."""
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return row_key.value

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """The cursor moved: show the whole reason of the row under it."""
        self._show_detail()

    # -- drawing -----------------------------------------------------------------

    def _where(self, pid: int | None) -> Text:
        where = Text()
        where.append("output ", style="dim").append(shown_path(self.folder.out_dir))
        where.append("   input ", style="dim").append(shown_path(self.folder.input_dir))
        if pid is None:
            where.append("   no batch running", style="dim")
        else:
            where.append(f"   ▶ batch running (process {pid})", style="bold green")
        return where

    def _show_where(self, text: Text) -> None:
        self.query_one("#batch-where", Static).update(text)

    def _show_progress(self, jobs: list[Job]) -> None:
        counts = tally(jobs)
        finished = sum(counts[status] for status in _FINISHED)
        # No rows yet: 0 of 1, not the 100% a total of 0 would show.
        self.query_one(ProgressBar).update(total=max(len(jobs), 1), progress=finished)
        finished_text = Text(f"{finished} of {len(jobs)} files finished", style="bold")
        self.query_one("#batch-finished", Static).update(finished_text)
        self.query_one("#batch-counts", Static).update(counts_line(counts))

    def _update_table(self) -> None:
        """Bring the table to the rows wanted now, touching only what changed."""
        table: DataTable[Text] = self.query_one(DataTable)
        wanted = {
            rel: row_texts(job)
            for rel, job in self._jobs.items()
            if not self.problems_only or job.status in _PROBLEMS
        }
        selected = self.selected_rel()
        gone = [rel for rel in self._shown if rel not in wanted]
        for rel in gone:
            table.remove_row(rel)
            del self._shown[rel]
        added = False
        for rel, texts in wanted.items():
            old = self._shown.get(rel)
            if old is None:
                table.add_row(*row_cells(self._jobs[rel], texts), key=rel)
                added = True
            elif old != texts:
                self._update_row(table, rel, old, texts)
            self._shown[rel] = texts
        if added:
            table.sort("file", key=str)
        if (added or gone) and selected in self._shown:
            table.move_cursor(row=table.get_row_index(selected))
        table.border_title = "failed and invalid files" if self.problems_only else "files"
        self._show_detail()

    def _update_row(
        self, table: DataTable[Text], rel: str, old: tuple[str, ...], new: tuple[str, ...]
    ) -> None:
        cells = row_cells(self._jobs[rel], new)
        for column, before, after, cell in zip(COLUMNS, old, new, cells, strict=True):
            if before != after:
                table.update_cell(rel, column, cell, update_width=True)

    def _show_detail(self) -> None:
        """The whole reason of the highlighted file (the table cuts long ones)."""
        rel = self.selected_rel()
        job = self._jobs.get(rel) if rel is not None else None
        reason = reason_of(job) if job is not None else ""
        detail = Text(f"{rel}: {reason}") if reason else Text("")
        self.query_one("#batch-detail", Static).update(detail)


# -- what a row shows (plain functions, so they are easy to test) ------------------


def row_texts(job: Job) -> tuple[str, ...]:
    """The text of each column for one job, in COLUMNS order."""
    glyph, _ = STATUS_LOOK[job.status]
    reason = " ".join(reason_of(job).split())  # one line
    if len(reason) > _REASON_WIDTH:
        reason = reason[: _REASON_WIDTH - 1] + "…"
    return (
        job.file,
        f"{glyph} {job.status}",
        "" if job.model_attempts is None else str(job.model_attempts),
        "" if job.findings is None else str(len(job.findings)),
        "" if job.total_seconds is None else f"{job.total_seconds:.1f}",
        reason,
    )


def row_cells(job: Job, texts: tuple[str, ...]) -> list[Text]:
    """The texts as cells: plain Text (a file name is never read as markup), status coloured."""
    _, colour = STATUS_LOOK[job.status]
    cells = []
    for column, text in zip(COLUMNS, texts, strict=True):
        style = colour if column == "status" else ""
        cells.append(Text(text, style=style, justify="right" if column in _NUMERIC else "left"))
    return cells


def reason_of(job: Job) -> str:
    """Why a file needs a look: the error, or for an invalid result its first finding."""
    if job.status == JobStatus.INVALID and job.findings:
        finding = next(
            (f for f in job.findings if f.get("kind") == SCHEMA_FINDING), job.findings[0]
        )
        return f"{finding.get('path') or '(root)'}: {finding.get('message', '')}"
    return job.error or ""


def counts_line(counts: dict[JobStatus, int]) -> Text:
    """The tally under the progress bar (``✓ 3 done   ! 1 invalid …``), in colour."""
    line = Text()
    for status in (*_FINISHED, JobStatus.PENDING, JobStatus.RUNNING):
        glyph, colour = STATUS_LOOK[status]
        line.append(f"{glyph} {counts[status]} {status}", style=colour).append("   ")
    line.rstrip()
    return line
