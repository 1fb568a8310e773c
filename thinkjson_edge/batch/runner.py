"""Batch extraction over a folder: scan, claim, extract, write the result, record it.

For every input ``IN_DIR/<rel>`` the batch writes ``OUT_DIR/<rel>.json`` (the object) and
``OUT_DIR/.reports/<rel>.report.json`` (the full record), and keeps one row per input in the
job database ``OUT_DIR/.thinkjson-jobs.sqlite`` (see ``jobs.py`` for the states). The manifest
``OUT_DIR/.thinkjson-batch.json`` records the input folder and the schema, so a viewer (the
TUI's batch view) finds each document and checks each result later.

Exactly once, whatever instant the process is killed at:

1. the row is marked ``running`` (one transaction);
2. the result is written to a temporary file, fsynced, renamed over the target, and the
   folder is fsynced, so the target is always either the old file or the whole new one;
3. the row is marked ``done`` (one transaction).

A kill before 3 leaves the row ``running``; the next run (which holds the folder's lock, so
nobody else is working on it) turns it back to pending and redoes the file after the others,
and the rename overwrites whatever step 2 left. Temporary files of a killed run are removed
at the start. A ``done`` row whose result file has gone missing is redone too.

Only one model is loaded for the whole batch, and only when there is work; documents are
extracted one after another so each one reuses the cached prompt prefix (instruction and
schema) of the one before.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from thinkjson_edge.batch.jobs import (
    Decision,
    Job,
    JobStatus,
    JobStore,
    Outcome,
    decide,
)
from thinkjson_edge.batch.layout import (
    DATABASE_NAME,
    LOCK_NAME,
    MANIFEST_NAME,
    report_path,
    result_path,
)
from thinkjson_edge.batch.manifest import manifest_text
from thinkjson_edge.errors import Cancelled, InputError, OutputWriteError, ThinkJsonError
from thinkjson_edge.files import (
    is_temporary,
    leads_outside,
    sha256_regular,
    special_file_kind,
    write_atomically,
)
from thinkjson_edge.pipeline.documents import document_limit, read_document
from thinkjson_edge.pipeline.findings import REVIEW
from thinkjson_edge.pipeline.reading import PageRead, ReadOptions

if TYPE_CHECKING:
    from thinkjson_edge.pipeline.extractor import Extractor
    from thinkjson_edge.pipeline.result import ExtractionResult
    from thinkjson_edge.schema import Schema

_SLEEP_STEP = 0.1  # seconds; how quickly an idle watch notices a stop request

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one batch per folder is up to the user
    fcntl = None  # type: ignore[assignment]


@dataclass(frozen=True)
class BatchOptions:
    """How a batch scans and when it stops; the model's options live in the Extractor."""

    globs: tuple[str, ...] = ()  # shell patterns; none means every file
    retry_failed: bool = False
    watch: bool = False
    interval: float = 2.0  # seconds between scans when watching
    settle: float = 1.0  # when watching, files modified this recently wait for the next scan
    reuse_prefix: bool = True  # False evaluates every prompt in full (for measuring the cache)
    follow_links: bool = False  # also read files whose links lead out of the input folder
    read: ReadOptions = field(default_factory=ReadOptions)  # when OCR reads a page


@dataclass(frozen=True)
class InputFile:
    rel: str  # relative to the input folder, '/'-separated: the job's key
    path: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Unread:
    """A file under the input folder that is never read: a link out of it, a pipe, a device."""

    rel: str
    reason: str


@dataclass
class Scan:
    """What a scan of the input folder found: the inputs, and the files left unread."""

    inputs: list[InputFile] = field(default_factory=list)
    unread: list[Unread] = field(default_factory=list)


class Observer(Protocol):
    """Hears what a batch does (the command line shows it as a progress bar)."""

    def loading_model(self) -> None: ...

    def model_loaded(self, extractor: Extractor) -> None: ...

    def planned(self, files: int) -> None: ...

    def started(self, file: str) -> None: ...

    def page_read(self, file: str, page: PageRead) -> None: ...

    def finished(self, file: str, outcome: Outcome) -> None: ...

    def skipped(self, file: str, reason: str) -> None: ...

    def waiting(self) -> None: ...


class SilentObserver:
    def loading_model(self) -> None:
        pass

    def model_loaded(self, extractor: Extractor) -> None:
        pass

    def planned(self, files: int) -> None:
        pass

    def started(self, file: str) -> None:
        pass

    def page_read(self, file: str, page: PageRead) -> None:
        pass

    def finished(self, file: str, outcome: Outcome) -> None:
        pass

    def skipped(self, file: str, reason: str) -> None:
        pass

    def waiting(self) -> None:
        pass


@dataclass
class BatchSummary:
    """What a run did, and the state of every input it saw."""

    files: int = 0  # inputs seen
    done: int = 0  # processed in this run, by outcome
    invalid: int = 0
    failed: int = 0
    skipped_done: int = 0  # left alone: done before with the same content and schema
    skipped_failed: int = 0  # failed or invalid before, not retried
    skipped_invalid: int = 0
    pending: int = 0  # not reached (the run was stopped)
    problems: list[dict[str, str | None]] = field(default_factory=list)  # failed/invalid now
    # Files never read: links out of the input folder, and files that are not regular.
    not_read: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the run, model loading included
    load_seconds: float = 0.0
    busy_seconds: float = 0.0  # reading, extracting and writing, summed over processed files
    model_seconds: float = 0.0  # prompt evaluation and decoding, summed
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    generated_tokens: int = 0
    to_review: int = 0  # values under the review threshold (``review`` findings), summed
    interrupted: bool = False  # a stop was requested (Ctrl-C, SIGTERM)
    abandoned: bool = False  # ... a second time: the file being extracted was given up

    @property
    def processed(self) -> int:
        return self.done + self.invalid + self.failed

    @property
    def docs_per_minute(self) -> float:
        return 60 * self.processed / self.busy_seconds if self.busy_seconds else 0.0

    @property
    def any_failed(self) -> bool:
        return any(p["status"] == JobStatus.FAILED for p in self.problems)

    @property
    def any_invalid(self) -> bool:
        return any(p["status"] == JobStatus.INVALID for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "processed": self.processed,
            "docs_per_minute": round(self.docs_per_minute, 2),
        }


class Batch:
    """One batch over IN_DIR into OUT_DIR. Open it (lock, database, clean-up), then run it."""

    def __init__(
        self,
        in_dir: Path,
        out_dir: Path,
        schema: Schema,
        load_extractor: Callable[[], Extractor],
        options: BatchOptions | None = None,
        *,
        observer: Observer | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.in_dir = in_dir
        self.out_dir = out_dir
        self._in_root = in_dir.resolve()  # where every input must lie, links followed
        self.schema = schema
        self.schema_hash = schema.sha256
        self.options = options or BatchOptions()
        self.observer: Observer = observer or SilentObserver()
        self.should_stop = should_stop
        self._load_extractor = load_extractor
        self._extractor: Extractor | None = None
        self._lock: OutputLock | None = None
        self._store: JobStore | None = None
        self._seen: set[str] = set()
        self._attempted: set[str] = set()  # processed in this run: retried at most once
        self._unread: dict[str, str] = {}  # file -> why it is not read, as last scanned
        self._summary = BatchSummary()
        self.recovered: list[Job] = []  # left running by a process that died; redone last
        self.removed_temporaries = 0

    @property
    def store(self) -> JobStore:
        if self._store is None:
            raise RuntimeError("open the batch first")
        return self._store

    def __enter__(self) -> Batch:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> None:
        """Take the output folder's lock, open the job database, clean up after a killed run."""
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputWriteError(
                f"{self.out_dir}: cannot be created ({exc.strerror or exc})"
            ) from exc
        self._lock = OutputLock(self.out_dir / LOCK_NAME)
        try:
            self._store = JobStore(self.database_path)
            self._write_manifest()
            self.removed_temporaries = remove_temporaries(self.out_dir)
            self.recovered = self._store.recover()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _write_manifest(self) -> None:
        """Rewritten at every open, so it names the schema the latest run used."""
        text = manifest_text(self.in_dir, self.schema.source, self.schema.schema)
        write_atomically(self.out_dir / MANIFEST_NAME, text)

    @property
    def database_path(self) -> Path:
        return self.out_dir / DATABASE_NAME

    def result_path(self, rel: str) -> Path:
        return result_path(self.out_dir, rel)

    def report_path(self, rel: str) -> Path:
        return report_path(self.out_dir, rel)

    # -- running ---------------------------------------------------------------

    def run(self) -> BatchSummary:
        """Process the folder (and keep watching it, if asked); ModelLoadError stops it."""
        started = time.perf_counter()
        try:
            if self.options.watch:
                self._ready_to_extract()  # a bad model should fail now, not at the first file
            while True:
                self._one_pass()
                if not self.options.watch or self.should_stop():
                    break
                self.observer.waiting()
                if not self._sleep(self.options.interval):
                    break
        except KeyboardInterrupt:  # a second Ctrl-C: the current file was abandoned
            self._summary.interrupted = self._summary.abandoned = True
        if self.should_stop():
            self._summary.interrupted = True
        self._summary.seconds = time.perf_counter() - started
        return self._final_summary()

    def _one_pass(self) -> None:
        jobs = self.store.jobs()
        settled = time.time() - self.options.settle if self.options.watch else None
        work: list[tuple[InputFile, str, str | None]] = []
        resumed: set[str] = set()
        scan = scan_folder(
            self.in_dir,
            self.out_dir,
            self.options.globs,
            settled,
            follow_links=self.options.follow_links,
        )
        self._note_unread(scan.unread)
        for item in scan.inputs:
            self._seen.add(item.rel)
            job = jobs.get(item.rel)
            # An unchanged size and mtime means unchanged content: no need to read it again.
            known = (
                job is not None
                and job.content_hash != ""
                and (job.size, job.mtime_ns) == (item.size, item.mtime_ns)
            )
            if job is not None and known:
                digest, error = job.content_hash, None
            else:
                digest, error = hash_file(item.path)
            decision = decide(
                job,
                digest,
                self.schema_hash,
                retry_failed=self.options.retry_failed and item.rel not in self._attempted,
            )
            if decision == Decision.SKIP_DONE and not self.result_path(item.rel).is_file():
                decision = Decision.RESUME  # the result was deleted (or lost): make it again
            if decision.needs_work:
                work.append((item, digest, error))
                if decision == Decision.RESUME:
                    resumed.add(item.rel)
            elif job is not None and not known:
                self.store.record_stat(item.rel, item.size, item.mtime_ns)
        if not work:
            return
        # Files a process died on (or that were abandoned) go last: should one of them crash
        # the process, the other files still get done.
        work.sort(key=lambda entry: entry[0].rel in resumed)
        if any(error is None for _item, _digest, error in work):
            self._ready_to_extract()  # files refused unread (a pipe, too large) need no model
        self.observer.planned(len(work))
        self._work_through(work)

    def _ready_to_extract(self) -> None:
        """Load the model (the cluster runner starts its workers instead)."""
        self._model()

    def _work_through(self, work: list[tuple[InputFile, str, str | None]]) -> None:
        """Process the files one after another, or as many at once as the model decodes
        together (the cluster runner hands them to workers)."""
        width = self._extractor.parallel if self._extractor is not None else 1
        if width > 1:
            self._work_through_together(work, width)
            return
        for item, digest, error in work:
            if self.should_stop():
                return
            self._process(item, digest, error)

    def _work_through_together(
        self, work: list[tuple[InputFile, str, str | None]], width: int
    ) -> None:
        """Up to ``width`` files extract at once, each in a thread of its own. Claims and
        records stay in this thread, in the same order of steps as one file at a time: a
        file is claimed, its result written, then its outcome recorded. A stop request
        lets the files in flight finish; Ctrl-C twice abandons them (released, redone by
        the next run)."""
        queue = deque(work)
        in_flight: dict[Future[Outcome], InputFile] = {}
        abandon = threading.Event()
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix="extract") as pool:
            try:
                while True:
                    while queue and len(in_flight) < width and not self.should_stop():
                        item, digest, error = queue.popleft()
                        self._claim(item, digest)
                        started = time.perf_counter()
                        if error is not None:
                            self._record(item.rel, self._failure(item.rel, error, started))
                            continue
                        future = pool.submit(self._extract_and_write, item, started, abandon)
                        in_flight[future] = item
                    if not in_flight:
                        return
                    finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in finished:
                        self._record(in_flight.pop(future).rel, future.result())
            except BaseException:
                abandon.set()
                for item in in_flight.values():
                    self.store.release(item.rel)
                raise

    def _note_unread(self, unread: list[Unread]) -> None:
        """Say once per run why each file is left unread (again only if the reason changes)."""
        current = {entry.rel: entry.reason for entry in unread}
        for rel, reason in current.items():
            if self._unread.get(rel) != reason:
                self.observer.skipped(rel, reason)
        self._unread = current

    def _process(self, item: InputFile, digest: str, read_error: str | None) -> None:
        self._claim(item, digest)
        started = time.perf_counter()
        try:
            if read_error is not None:
                outcome = self._failure(item.rel, read_error, started)
            else:
                outcome = self._extract_and_write(item, started)
        except KeyboardInterrupt:
            self.store.release(item.rel)  # abandoned, not crashed: the next run redoes it
            raise
        self._record(item.rel, outcome)

    def _claim(self, item: InputFile, digest: str) -> None:
        """Step 1 of exactly once: the file's row is marked running, its try counted."""
        self._attempted.add(item.rel)
        self.observer.started(item.rel)
        self.store.claim(item.rel, digest, self.schema_hash, item.size, item.mtime_ns)

    def _record(self, rel: str, outcome: Outcome) -> None:
        """Step 3: the outcome is recorded, once the result file (if any) is in place."""
        self.store.finish(rel, outcome)
        self._count(outcome)
        self.observer.finished(rel, outcome)

    def _link_out_now(self, item: InputFile) -> str | None:
        """Why a file that became a link out of IN_DIR after the scan is still not read."""
        if not self.options.follow_links and leads_outside(item.path, self._in_root):
            return f"{item.path}: {_link_out(item.path)}"
        return None

    def _extract_and_write(
        self, item: InputFile, started: float, abandon: threading.Event | None = None
    ) -> Outcome:
        """Read and extract one file, and write its result; ``abandon``, once set, stops
        the extraction (Cancelled), which then leaves everything as it was."""
        extractor = self._model()
        if not self.options.reuse_prefix:
            extractor.engine.forget_prompt()
        if (link_out := self._link_out_now(item)) is not None:
            return self._failure(item.rel, link_out, started)
        try:
            pages = dataclasses.replace(
                self.options.read, on_page=lambda page: self.observer.page_read(item.rel, page)
            )
            document = read_document(item.path, pages)
            result = extractor.extract(
                document, self.schema, on_text=_stop_when(abandon) if abandon else None
            )
        except InputError as error:  # unreadable, unsupported, too long: this file only
            return self._failure(item.rel, str(error), started)
        except Cancelled:
            raise
        except Exception as error:  # a bug on one document must not stop the others
            extractor.engine.forget_prompt()  # the cached state may be half-updated
            return self._failure(item.rel, extraction_failure(error), started)
        return self._write_result(item.rel, result, started)

    def _write_result(self, rel: str, result: ExtractionResult, started: float) -> Outcome:
        """Step 2: the object and its report, each written atomically; or why there is none."""
        if result.value is None:
            problems = "; ".join(f.describe() for f in result.findings) or "no output"
            return self._failure(rel, f"no JSON object was produced: {problems}", started)
        try:
            text = json.dumps(result.value, ensure_ascii=False, indent=2) + "\n"
            write_atomically(self.result_path(rel), text)
            write_atomically(self.report_path(rel), self._report(rel, result))
        except OutputWriteError as error:
            return self._failure(rel, str(error), started)
        return _outcome(result, time.perf_counter() - started)

    def _failure(self, rel: str, message: str, started: float) -> Outcome:
        """A failed file keeps no result: an older one would describe other content."""
        for stale in (self.result_path(rel), self.report_path(rel)):
            try:
                stale.unlink(missing_ok=True)
            except OSError as exc:
                message += f" (the older {stale} could not be removed: {exc.strerror or exc})"
        return Outcome(JobStatus.FAILED, error=message, total_seconds=time.perf_counter() - started)

    def _report(self, rel: str, result: ExtractionResult) -> str:
        record = {"file": rel, "schema_hash": self.schema_hash, **result.to_dict()}
        return json.dumps(record, ensure_ascii=False, indent=2) + "\n"

    def _model(self) -> Extractor:
        if self._extractor is None:
            self.observer.loading_model()
            self._extractor = self._load_extractor()
            self._summary.load_seconds = self._extractor.engine.load_seconds
            self.observer.model_loaded(self._extractor)
        return self._extractor

    def _sleep(self, seconds: float) -> bool:
        """Sleep, waking early on a stop request; False if one came."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.should_stop():
                return False
            time.sleep(min(_SLEEP_STEP, left))
        return not self.should_stop()

    def _count(self, outcome: Outcome) -> None:
        summary = self._summary
        if outcome.status == JobStatus.DONE:
            summary.done += 1
        elif outcome.status == JobStatus.INVALID:
            summary.invalid += 1
        else:
            summary.failed += 1
        summary.busy_seconds += outcome.total_seconds or 0.0
        summary.model_seconds += (outcome.prompt_seconds or 0.0) + (outcome.decode_seconds or 0.0)
        summary.prompt_tokens += outcome.prompt_tokens or 0
        summary.cached_prompt_tokens += outcome.cached_prompt_tokens or 0
        summary.generated_tokens += outcome.generated_tokens or 0
        summary.to_review += sum(f.get("kind") == REVIEW for f in outcome.findings or [])

    def _final_summary(self) -> BatchSummary:
        summary = self._summary
        jobs = self.store.jobs()
        # Files removed while the batch ran (a watched folder's temporary files) do not count.
        present = sorted(rel for rel in self._seen if os.path.lexists(self.in_dir / rel))
        summary.files = len(present)
        skipped = {JobStatus.DONE: 0, JobStatus.FAILED: 0, JobStatus.INVALID: 0}
        summary.pending = 0
        summary.problems = []
        for rel in present:
            job = jobs.get(rel)
            status = job.status if job else JobStatus.PENDING
            if status in (JobStatus.PENDING, JobStatus.RUNNING):
                summary.pending += 1
                continue
            if rel not in self._attempted:
                skipped[status] += 1
            if job is not None and status in (JobStatus.FAILED, JobStatus.INVALID):
                summary.problems.append({"file": rel, "status": str(status), "error": job.error})
        summary.not_read = [
            {"file": rel, "reason": reason}
            for rel, reason in sorted(self._unread.items())
            if os.path.lexists(self.in_dir / rel)
        ]
        summary.skipped_done = skipped[JobStatus.DONE]
        summary.skipped_failed = skipped[JobStatus.FAILED]
        summary.skipped_invalid = skipped[JobStatus.INVALID]
        return summary


# -- the pieces ------------------------------------------------------------------


def _stop_when(abandon: threading.Event) -> Callable[[int, str, bool], None]:
    """A text listener that stops the extraction once ``abandon`` is set."""

    def listen(_attempt: int, _text: str, _reasoning: bool) -> None:
        if abandon.is_set():
            raise Cancelled("abandoned")

    return listen


def scan_inputs(
    in_dir: Path,
    out_dir: Path | None = None,
    globs: Sequence[str] = (),
    modified_before: float | None = None,
) -> list[InputFile]:
    """The input files of ``scan_folder``."""
    return scan_folder(in_dir, out_dir, globs, modified_before).inputs


def scan_folder(
    in_dir: Path,
    out_dir: Path | None = None,
    globs: Sequence[str] = (),
    modified_before: float | None = None,
    *,
    follow_links: bool = False,
) -> Scan:
    """Every input file under ``in_dir``, sorted: hidden files and folders and ``out_dir``
    left out, filtered by ``globs``, and (when given) last modified before a time.

    Only regular files inside ``in_dir`` are inputs: a link that leads out of it (unless
    ``follow_links``) and a file that is not regular (a pipe, a socket, a device) are listed
    as unread instead. Links to folders are not followed.
    """
    root = in_dir.resolve()
    skip = out_dir.resolve() if out_dir is not None else None
    scan = Scan()
    for here_name, folders, names in os.walk(in_dir):
        here = Path(here_name)
        folders[:] = [
            name
            for name in folders
            if not name.startswith(".") and (skip is None or (here / name).resolve() != skip)
        ]
        for name in names:
            if name.startswith("."):
                continue
            path = here / name
            rel = path.relative_to(in_dir).as_posix()
            if globs and not any(matches(rel, pattern) for pattern in globs):
                continue
            try:
                info = path.stat()
            except OSError:  # a broken link: kept, so it is recorded as failed when read
                scan.inputs.append(InputFile(rel, path, -1, 0))
                continue
            reason = _unread_reason(path, info, root, follow_links)
            if reason is not None:
                scan.unread.append(Unread(rel, reason))
            elif modified_before is None or info.st_mtime <= modified_before:
                # (a file modified later may still be being written: the next scan takes it)
                scan.inputs.append(InputFile(rel, path, info.st_size, info.st_mtime_ns))
    scan.inputs.sort(key=lambda item: item.rel)
    scan.unread.sort(key=lambda entry: entry.rel)
    return scan


def _unread_reason(path: Path, info: os.stat_result, root: Path, follow_links: bool) -> str | None:
    """Why a file found in the input folder is not read, or None for an input."""
    if not follow_links and leads_outside(path, root):
        return _link_out(path)
    kind = special_file_kind(info.st_mode)
    if kind is not None:
        return f"is {kind}, not a regular file; only regular files are read"
    return None


def _link_out(path: Path) -> str:
    try:
        target = str(path.resolve())
    except (OSError, RuntimeError):
        target = "a place"
    return f"is a link to {target}, outside IN_DIR; not read (--follow-links reads it)"


def matches(rel: str, pattern: str) -> bool:
    """A pattern with a '/' is matched against the relative path, one without against the
    file name (so ``*.txt`` takes text files in every subfolder)."""
    return fnmatch.fnmatchcase(rel if "/" in pattern else rel.rsplit("/", 1)[-1], pattern)


def hash_file(path: Path) -> tuple[str, str | None]:
    """(sha256 of the bytes, None), or ("", why it cannot be read).

    Like a document read: only a regular file is opened (a pipe never blocks the batch),
    and no more than the document limit is read.
    """
    try:
        return sha256_regular(path, document_limit(), error=InputError), None
    except InputError as error:
        return "", str(error)


def extraction_failure(error: Exception) -> str:
    """What a failed file's row says of an error raised while reading or extracting it."""
    if isinstance(error, ThinkJsonError):
        return str(error)
    return f"internal error ({type(error).__name__}: {error}); please report it"


def remove_temporaries(out_dir: Path) -> int:
    """Remove the temporary files a killed run left in ``out_dir``; return how many."""
    removed = 0
    for path in _walk_files(out_dir):
        if is_temporary(path.name):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    return removed


class OutputLock:
    """An exclusive lock on the output folder, so two batches never share a job database.

    The operating system drops it when the process dies, kill -9 included.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputWriteError(f"{path}: cannot be created ({exc.strerror or exc})") from exc
        if fcntl is None:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.read(self._fd, 32).decode(errors="replace").strip() or "?"
            os.close(self._fd)
            self._fd = None
            raise OutputWriteError(
                f"{path.parent}: another batch (process {holder}) is using this output "
                "folder; wait for it to end or choose another --out"
            ) from exc
        self._write_pid()

    def _write_pid(self) -> None:
        """Write our pid for viewers; a full disk here is a write failure, not a crash."""
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, 0)
            os.write(self._fd, f"{os.getpid()}\n".encode())
        except OSError as exc:
            self.release()
            raise OutputWriteError(
                f"{self.path}: the batch's lock file cannot be written ({exc.strerror or exc}); "
                "free some space in the output folder or choose another --out"
            ) from exc

    def release(self) -> None:
        """Empty the file first: a pid left in it would make viewers think a batch still runs."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)  # still held here, so no starting batch is affected
            os.close(self._fd)  # closing drops the lock
            self._fd = None


def _outcome(result: ExtractionResult, seconds: float) -> Outcome:
    generations = [attempt.generation for attempt in result.attempts]
    chosen = result.chosen
    return Outcome(
        status=JobStatus.DONE if result.valid else JobStatus.INVALID,
        error=None
        if result.valid
        else f"{chosen.schema_errors} schema error(s) remain after correction; written anyway",
        findings=[dataclasses.asdict(finding) for finding in result.findings],
        model_attempts=len(generations),
        prompt_seconds=sum(g.prompt_seconds for g in generations),
        decode_seconds=sum(g.decode_seconds for g in generations),
        total_seconds=seconds,
        prompt_tokens=sum(g.prompt_tokens for g in generations),
        cached_prompt_tokens=sum(g.cached_prompt_tokens for g in generations),
        generated_tokens=sum(g.generated_tokens for g in generations),
    )


def _walk_files(folder: Path) -> Iterator[Path]:
    for root, _folders, names in os.walk(folder):
        for name in names:
            yield Path(root) / name
