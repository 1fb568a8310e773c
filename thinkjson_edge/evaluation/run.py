"""Running an evaluation: every document extracted with the same settings, resumably.

One record per document is cached in ``REPORT_DIR/documents/NAME.json``, keyed by the
document's bytes, the schema, the model file and the settings, so an interrupted run
resumes where it stopped. ``summary`` scores the records with ``metrics``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from thinkjson_edge import __version__
from thinkjson_edge.errors import GenerationError, InputError, SchemaError
from thinkjson_edge.evaluation.dataset import SCHEMA_FILE, Case, Dataset, load_gold
from thinkjson_edge.files import sha256_file, sha256_text, write_atomically
from thinkjson_edge.pipeline.concurrently import as_finished
from thinkjson_edge.pipeline.documents import read_document
from thinkjson_edge.pipeline.extractor import ExtractOptions, LazyExtractor
from thinkjson_edge.pipeline.findings import GroundedValue
from thinkjson_edge.pipeline.images import image_format
from thinkjson_edge.pipeline.ocr import reading_signature
from thinkjson_edge.pipeline.reading import OCR_AUTO, OCR_NEVER, ReadOptions
from thinkjson_edge.pipeline.result import value_dict

if TYPE_CHECKING:
    from thinkjson_edge.pipeline.result import ExtractionResult
    from thinkjson_edge.schema import Schema

CACHE_FOLDER = "documents"

Warn = Callable[[str], None]


# --- settings and the cache key ---------------------------------------------------


@dataclass(frozen=True)
class EvalSettings:
    """How every document is extracted; the CLI's defaults."""

    model: str | None = None
    device: str = "auto"
    options: ExtractOptions = field(default_factory=ExtractOptions)
    limit: int | None = None
    read: ReadOptions = field(default_factory=ReadOptions)  # when OCR reads a page
    # Documents in flight at once (engine.parallel); None: the device's default. Outputs
    # do not depend on it (BENCHMARKS.md), so the cache key leaves it out.
    parallel: int | None = 1

    @property
    def think(self) -> bool:
        return self.options.think

    @property
    def self_correct(self) -> bool:
        return self.options.self_correct

    @property
    def max_think_tokens(self) -> int:
        return self.options.max_think_tokens

    @property
    def copy(self) -> bool:
        return self.options.copy


def cache_key(
    document_sha256: str,
    schema_sha256: str,
    model_sha256: str,
    settings: EvalSettings,
    adapter_sha256: str | None = None,
    ocr_reading: str | None = None,
) -> str:
    """What the extraction of one document depends on. The device and limit do not count.
    ``ocr_reading`` is how OCR reads (``reading_signature``), for a document it may read."""
    inputs = {
        "document": document_sha256,
        "schema": schema_sha256,
        "model": model_sha256,
        "think": settings.think,
        "self_correct": settings.self_correct,
        "max_think_tokens": settings.max_think_tokens,
        "copy": settings.copy,
        "span_search": settings.options.span_search,
        "review_below": settings.options.review_below,
        "version": __version__,
    }
    if settings.options.ask_labelled:  # only then: runs without it keep the keys made before
        inputs["ask_labelled"] = True
    if adapter_sha256:  # only then: the keys of runs without an adapter stay as they were
        inputs["adapter"] = adapter_sha256
    if settings.read.ocr != OCR_AUTO:  # likewise: the default keeps the keys made before
        inputs["ocr"] = settings.read.ocr
    if ocr_reading:
        inputs["ocr_reading"] = ocr_reading
    return sha256_text(json.dumps(inputs, sort_keys=True))


# --- per-document records -----------------------------------------------------------


@dataclass(frozen=True)
class AttemptRecord:
    """What one attempt produced, reduced to what scoring and the report need."""

    number: int
    value: Any | None  # None: no JSON output
    valid: bool
    schema_errors: int
    strings_checked: int  # extracted strings looked up in the document
    strings_found: int
    generated_tokens: int
    decode_seconds: float
    stop_reason: str
    findings: list[str] = field(default_factory=list)
    # Every scalar written: pointer, kind, confidence, copied (and its offsets); see
    # pipeline.result.value_dict. ``copied_in_document``: copied values whose offsets hold
    # them in the document, checked against the document's own text.
    values: list[dict[str, Any]] = field(default_factory=list)
    copied_values: int = 0
    copied_in_document: int = 0


@dataclass(frozen=True)
class DocumentRecord:
    """One document's extraction; ``chosen_attempt`` is 0 when it failed with ``error``."""

    name: str
    document: str
    attempts: list[AttemptRecord]
    chosen_attempt: int
    seconds: float
    error: str | None = None
    key: str = ""
    cached: bool = False
    chunks: int = 1  # a long document extracted in chunks has one attempt: the merged object

    def attempt(self, view: str) -> AttemptRecord | None:
        """The attempt a view scores: ``attempt1``, ``attempt2`` (1 carried over) or ``kept``."""
        if not self.attempts:
            return None
        if view == "attempt1":
            return self.attempts[0]
        if view == "attempt2":
            return self.attempts[1] if len(self.attempts) > 1 else self.attempts[0]
        return self.attempts[self.chosen_attempt - 1]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocumentRecord:
        attempts = [AttemptRecord(**a) for a in data["attempts"]]
        return cls(**{**data, "attempts": attempts})


def record_from_result(
    name: str, document: str, key: str, result: ExtractionResult, text: str = ""
) -> DocumentRecord:
    """A record of an ``ExtractionResult`` from a document whose text is ``text``."""
    attempts = [
        AttemptRecord(
            number=a.number,
            value=a.value,
            valid=a.valid,
            schema_errors=a.schema_errors,
            strings_checked=len(a.grounding),
            strings_found=sum(g.span is not None for g in a.grounding),
            generated_tokens=a.generation.generated_tokens,
            decode_seconds=a.generation.decode_seconds,
            stop_reason=a.generation.stop_reason,
            findings=[f.describe() for f in a.findings],
            values=[value_dict(trace) for trace in a.values],
            copied_values=sum(g.span is not None and g.span.match == "copied" for g in a.grounding),
            copied_in_document=sum(_copied_in(text, g) for g in a.grounding),
        )
        for a in result.attempts
    ]
    return DocumentRecord(
        name,
        document,
        attempts,
        result.chosen_attempt,
        result.total_seconds,
        key=key,
        chunks=result.chunks,
    )


# --- running -----------------------------------------------------------------------


class Progress(Protocol):
    def start(self, total: int) -> None: ...

    def begin(self, name: str) -> None: ...

    def advance(self, name: str, cached: bool) -> None: ...


@dataclass
class RunOutcome:
    """The records of a run (in case order), with what was computed and what came cached."""

    dataset: Dataset
    settings: EvalSettings
    model_name: str
    model_sha256: str
    golds: list[Any]
    records: list[DocumentRecord]
    computed: int = 0
    started: str = ""
    adapter: dict[str, str] | None = None  # a LoRA adapter on the model (ModelChoice)


def run_evaluation(
    dataset: Dataset,
    report_dir: Path,
    settings: EvalSettings,
    *,
    fresh: bool = False,
    progress: Progress | None = None,
    warn: Warn = lambda message: None,
) -> RunOutcome:
    """Extract every case not in the cache (all with ``fresh``), caching each as it is done.

    The model is loaded only when some document is not cached. Gold files are read first,
    so a broken one stops the run before minutes of work.
    """
    from thinkjson_edge.models.choice import choose_model
    from thinkjson_edge.pipeline.schema_check import load_usable_schema

    if not dataset.schema_path.is_file():
        raise SchemaError(
            f"{dataset.root}: no {SCHEMA_FILE}; a data folder needs the JSON Schema "
            "the documents are extracted with, beside the documents"
        )
    schema = load_usable_schema(dataset.schema_path, settings.options.grammar_limits)
    cases = dataset.cases[: settings.limit] if settings.limit else dataset.cases
    if not cases:
        raise InputError(f"{dataset.root}: no document has a gold file to compare with")
    golds = [load_gold(case) for case in cases]
    model = choose_model(settings.model)
    outcome = RunOutcome(
        dataset,
        settings,
        model.name,
        sha256_file(model.path),
        golds,
        [],
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        adapter=model.adapter_record(),
    )
    adapter_sha256 = outcome.adapter["sha256"] if outcome.adapter else None
    cache_dir = report_dir / CACHE_FOLDER
    extractor = LazyExtractor(
        settings.model, settings.device, settings.options, parallel=settings.parallel
    )
    if progress:
        progress.start(len(cases))
    records: dict[str, DocumentRecord] = {}
    missing: list[tuple[Case, str]] = []  # to extract, with their cache keys

    def extract(entry: tuple[Case, str]) -> DocumentRecord:
        case, key = entry
        if progress:
            progress.begin(case.name)
        cache_file = cache_dir / f"{case.name}.json"
        return _extract_one(case, dataset.root, key, extractor, schema, cache_file, settings.read)

    reading = reading_signature()  # once: it looks up the engine's installed version
    try:
        for case in cases:
            ocr_reading = reading if _may_be_read_by_ocr(case, settings.read) else None
            key = cache_key(
                _document_sha256(case), schema.sha256, outcome.model_sha256, settings,
                adapter_sha256, ocr_reading,
            )  # fmt: skip
            record = None if fresh else read_cached(cache_dir / f"{case.name}.json", key)
            if record is None:
                missing.append((case, key))
            else:
                records[case.name] = _noted(record, warn, progress)
        # The model loads before the threads start, so that one thread loads it.
        width = extractor.get().parallel if missing else 1
        for (case, _key), record in as_finished(extract, missing, width=width):
            outcome.computed += 1
            records[case.name] = _noted(record, warn, progress)
    finally:
        extractor.close()
    outcome.records = [records[case.name] for case in cases]
    return outcome


def _noted(record: DocumentRecord, warn: Warn, progress: Progress | None) -> DocumentRecord:
    """Say that a document is done (and why it gave nothing, if so)."""
    if record.error:
        warn(f"{record.name}: {record.error} (counted as no JSON output)")
    if progress:
        progress.advance(record.name, record.cached)
    return record


def _copied_in(text: str, grounded: GroundedValue) -> bool:
    """Whether a copied value is what the document holds at its offsets (whitespace runs
    counted as one space): an independent check of the decoder's copy constraint."""
    span = grounded.span
    if span is None or span.match != "copied":
        return False
    return " ".join(text[span.start : span.end].split()) == " ".join(grounded.value.split())


def _document_sha256(case: Case) -> str:
    try:
        return sha256_file(case.document)
    except OSError as exc:
        raise InputError(f"{case.document}: cannot be read ({exc.strerror or exc})") from exc


def _may_be_read_by_ocr(case: Case, read: ReadOptions) -> bool:
    """Whether OCR is on and the document is an image or a PDF (whose pages may be scans)."""
    if read.ocr == OCR_NEVER:
        return False
    try:
        with case.document.open("rb") as file:
            head = file.read(64)
    except OSError:
        return False  # reading the document reports it
    return image_format(head) is not None or head.startswith(b"%PDF")


def _extract_one(
    case: Case,
    root: Path,
    key: str,
    extractor: LazyExtractor,
    schema: Schema,
    cache_file: Path,
    read: ReadOptions,
) -> DocumentRecord:
    shown = str(case.document.relative_to(root))
    full: dict[str, Any] | None = None
    try:
        document = read_document(case.document, read)
        result = extractor.get().extract(document, schema)
    except (InputError, GenerationError) as error:  # the product gives nothing here either
        record = DocumentRecord(case.name, shown, [], 0, 0.0, error=str(error), key=key)
    else:
        record = record_from_result(case.name, shown, key, result, document.text)
        full = result.to_dict()
    entry = {"key": key, "record": record.to_dict(), "result": full}
    write_atomically(cache_file, json.dumps(entry, ensure_ascii=False, indent=1) + "\n")
    return record


def read_cached(cache_file: Path, key: str) -> DocumentRecord | None:
    """The cached record when it was made with the same inputs, else None."""
    try:
        entry = json.loads(cache_file.read_text(encoding="utf-8"))
        if entry.get("key") != key:
            return None
        record = DocumentRecord.from_dict(entry["record"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # absent, half-written by an older version, or stale: compute again
    return DocumentRecord(**{**record.__dict__, "cached": True})
