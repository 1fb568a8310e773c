"""A batch output folder as the batch view reads it: jobs, counts, paths and the live batch.

Pure logic, no Textual, so it is tested without a terminal. It only reads: the job database
is opened read-only and the lock is never taken (taking it, even briefly, could make a batch
that is starting fail), so a batch can run while the folder is viewed.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from thinkjson_edge.batch.jobs import Job, JobStatus, JobStore, read_jobs
from thinkjson_edge.batch.layout import (
    DATABASE_NAME,
    LOCK_NAME,
    report_path,
    result_path,
)
from thinkjson_edge.batch.manifest import MAKER, read_manifest
from thinkjson_edge.errors import InputError
from thinkjson_edge.files import leads_outside, open_regular
from thinkjson_edge.schema import Schema, check_schema

_PID_BYTES = 32  # the lock file holds a pid and a newline


class BatchFolder:
    """The output folder of ``thinkjson-edge batch``; open it with ``BatchFolder.open``."""

    def __init__(self, out_dir: Path, input_dir: Path, schema: Schema) -> None:
        self.out_dir = out_dir
        self.input_dir = input_dir
        self.schema = schema

    @classmethod
    def open(cls, out_dir: Path) -> BatchFolder:
        """Check that ``out_dir`` is a batch output folder; InputError says what is missing."""
        if not out_dir.is_dir():
            raise InputError(f"{out_dir}: no such folder; {MAKER}")
        if not (out_dir / DATABASE_NAME).is_file():
            raise InputError(
                f"{out_dir}: not a batch output folder: it has no job database "
                f"({DATABASE_NAME}); {MAKER}"
            )
        manifest = read_manifest(out_dir)
        schema = check_schema(manifest["schema"], manifest["schema_source"])
        return cls(out_dir, Path(manifest["input_dir"]), schema)

    @property
    def database_path(self) -> Path:
        return self.out_dir / DATABASE_NAME

    def jobs(self) -> list[Job]:
        """Every row as it is now (read afresh each call), sorted by file."""
        return read_jobs(self.database_path)

    def counts(self) -> dict[JobStatus, int]:
        """How many rows are in each status now; every status is a key, zeros included."""
        return tally(self.jobs())

    def document_path(self, rel: str) -> Path:
        """Where input ``rel`` is; InputError when it leads out of the input folder (a name
        from a tampered job database, or a file swapped for a link since the batch ran)."""
        path = self.input_dir / rel
        if leads_outside(path, self.input_dir.resolve()):
            raise InputError(
                f"{rel}: leads outside the batch's input folder {self.input_dir}; "
                "it is not opened here (open the file itself to review it)"
            )
        return path

    def result_path(self, rel: str) -> Path:
        return result_path(self.out_dir, rel)

    def report_path(self, rel: str) -> Path:
        return report_path(self.out_dir, rel)

    def mark_reviewed(self, rel: str) -> bool:
        """A reviewed, schema-valid result was saved for ``rel``: an invalid row becomes done."""
        with JobStore(self.database_path) as store:
            return store.mark_reviewed(rel)

    def running_pid(self) -> int | None:
        """The pid of the batch working on the folder now, if any (a clean exit empties the
        lock file; a killed batch leaves its pid, but that process is gone)."""
        try:  # a pipe put in the lock's place must not hang the view
            with open_regular(self.out_dir / LOCK_NAME, error=InputError) as stream:
                text = stream.read(_PID_BYTES).decode("ascii", errors="replace")
        except (InputError, OSError):
            return None
        pid = text.strip()
        if not pid.isdigit() or int(pid) <= 0:
            return None
        return int(pid) if _alive(int(pid)) else None


def tally(jobs: list[Job]) -> dict[JobStatus, int]:
    """How many of ``jobs`` are in each status (the screen counts the rows it already read)."""
    found = Counter(job.status for job in jobs)
    return {status: found[status] for status in JobStatus}


def _alive(pid: int) -> bool:
    """Whether a process exists (signal 0 checks without sending anything)."""
    if os.name == "nt":  # there signal 0 is CTRL_C_EVENT; and no batch writes its pid there
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except OSError:
        return False
    return True
