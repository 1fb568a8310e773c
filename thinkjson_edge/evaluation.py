"""Measuring extraction quality on a folder of documents with gold answers.

A data folder holds ``schema.json``, the documents, and one gold object per document
(``NAME.json`` for document ``NAME.*``). Documents sit either at the top of the folder or
in a ``documents/`` subfolder; gold files sit beside them or in a ``gold/`` subfolder.

Every document is extracted with the same settings, one record per document is cached
in ``REPORT_DIR/documents/NAME.json`` (keyed by the document's bytes, the schema, the
model file and the settings, so an interrupted run resumes where it stopped), and the
records are scored against the gold with :mod:`thinkjson_edge.metrics`.

Three views of each document are scored: attempt 1; attempt 2, which is attempt 2's
output when the second attempt ran and attempt 1's carried over when it did not (the
first attempt had no findings); and the kept attempt, which is what the product outputs.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from thinkjson_edge import __version__
from thinkjson_edge.errors import GenerationError, InputError, SchemaError
from thinkjson_edge.metrics import DocumentScore, aggregate, score_document, self_correction_scores

if TYPE_CHECKING:
    from thinkjson_edge.result import ExtractionResult
    from thinkjson_edge.schema import Schema

SCHEMA_FILE = "schema.json"
DOCUMENTS_FOLDER = "documents"
GOLD_FOLDER = "gold"
CACHE_FOLDER = "documents"
REPORT_FORMAT = "thinkjson-edge-eval/1"
# Files of a data folder that are about the data, not documents to extract from.
_NOT_DOCUMENTS = ("readme", "license", "upstream_license", "notice", "copying", "licence")

Warn = Callable[[str], None]


# --- the data folder -------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One document and its gold file."""

    name: str
    document: Path
    gold: Path


@dataclass(frozen=True)
class Skipped:
    """A file of the data folder that is not evaluated, and why."""

    name: str
    path: str
    reason: str


@dataclass(frozen=True)
class Dataset:
    root: Path
    schema_path: Path
    cases: list[Case]
    skipped: list[Skipped]


def find_dataset(data_dir: Path) -> Dataset:
    """Pair every document of ``data_dir`` with its gold file, sorted by name.

    Raises InputError for a folder that is not there. Documents without gold, gold
    without a document and several documents of one name are listed as skipped. Files
    named README*, LICENSE*, NOTICE*, COPYING* and hidden files are not documents.
    """
    if not data_dir.is_dir():
        raise InputError(f"{data_dir}: no such data folder")
    documents_dir = data_dir / DOCUMENTS_FOLDER
    if not documents_dir.is_dir():
        documents_dir = data_dir
    gold_dir = data_dir / GOLD_FOLDER
    if not gold_dir.is_dir():
        gold_dir = documents_dir
    by_name: dict[str, list[Path]] = {}
    for path in sorted(documents_dir.iterdir()):
        if _is_document(path, documents_dir == gold_dir):
            by_name.setdefault(path.stem, []).append(path)
    cases: list[Case] = []
    skipped: list[Skipped] = []
    for name, paths in sorted(by_name.items()):
        gold = gold_dir / f"{name}.json"
        shown = str(paths[0].relative_to(data_dir))
        if len(paths) > 1:
            files = ", ".join(p.name for p in paths)
            skipped.append(Skipped(name, shown, f"several documents share the name ({files})"))
        elif not gold.is_file():
            skipped.append(Skipped(name, shown, f"no gold file {gold.relative_to(data_dir)}"))
        else:
            cases.append(Case(name, paths[0], gold))
    for gold in sorted(gold_dir.glob("*.json")):
        if gold.name != SCHEMA_FILE and gold.stem not in by_name:
            shown = str(gold.relative_to(data_dir))
            skipped.append(Skipped(gold.stem, shown, "gold file without a document"))
    return Dataset(data_dir, data_dir / SCHEMA_FILE, cases, skipped)


def _is_document(path: Path, gold_beside: bool) -> bool:
    if not path.is_file() or path.name.startswith("."):
        return False
    if path.name == SCHEMA_FILE or (gold_beside and path.suffix.lower() == ".json"):
        return False
    return not path.stem.lower().startswith(_NOT_DOCUMENTS)


def load_gold(case: Case) -> Any:
    """The parsed gold object; InputError naming the file and place when it is not JSON."""
    try:
        text = case.gold.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{case.gold}: the gold file cannot be read ({exc})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{case.gold}: the gold file is not valid JSON at line {exc.lineno}, "
            f"column {exc.colno}: {exc.msg}"
        ) from exc


# --- settings and the cache key ---------------------------------------------------


@dataclass(frozen=True)
class EvalSettings:
    """How every document is extracted; the CLI's defaults."""

    model: str | None = None
    device: str = "auto"
    think: bool = True
    self_correct: bool = True
    max_think_tokens: int = 256
    limit: int | None = None


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def cache_key(
    document_sha256: str, schema_text: str, model_sha256: str, settings: EvalSettings
) -> str:
    """What the extraction of one document depends on. The device and limit do not count."""
    inputs = {
        "document": document_sha256,
        "schema": hashlib.sha256(schema_text.encode("utf-8")).hexdigest(),
        "model": model_sha256,
        "think": settings.think,
        "self_correct": settings.self_correct,
        "max_think_tokens": settings.max_think_tokens,
        "version": __version__,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode("utf-8")).hexdigest()


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
    name: str, document: str, key: str, result: ExtractionResult
) -> DocumentRecord:
    """A record of an ``ExtractionResult``."""
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
    from thinkjson_edge.models import choose_model
    from thinkjson_edge.schema import load_schema

    if not dataset.schema_path.is_file():
        raise SchemaError(
            f"{dataset.root}: no {SCHEMA_FILE}; a data folder needs the JSON Schema "
            "the documents are extracted with, beside the documents"
        )
    schema = load_schema(dataset.schema_path)
    cases = dataset.cases[: settings.limit] if settings.limit else dataset.cases
    if not cases:
        raise InputError(f"{dataset.root}: no document has a gold file to compare with")
    golds = [load_gold(case) for case in cases]
    model = choose_model(settings.model)
    outcome = RunOutcome(
        dataset,
        settings,
        model.name,
        file_sha256(model.path),
        golds,
        [],
        started=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    cache_dir = report_dir / CACHE_FOLDER
    extractor = _LazyExtractor(settings)
    if progress:
        progress.start(len(cases))
    try:
        for case in cases:
            key = cache_key(_document_sha256(case), schema.text, outcome.model_sha256, settings)
            cache_file = cache_dir / f"{case.name}.json"
            record = None if fresh else read_cached(cache_file, key)
            if record is None:
                if progress:
                    progress.begin(case.name)
                record = _extract_one(case, dataset.root, key, extractor, schema, cache_file)
                outcome.computed += 1
            if record.error:
                warn(f"{case.name}: {record.error} (counted as no JSON output)")
            outcome.records.append(record)
            if progress:
                progress.advance(case.name, record.cached)
    finally:
        extractor.close()
    return outcome


def _document_sha256(case: Case) -> str:
    try:
        return file_sha256(case.document)
    except OSError as exc:
        raise InputError(f"{case.document}: cannot be read ({exc.strerror or exc})") from exc


class _LazyExtractor:
    """Loads the model on first use, so a fully cached run loads nothing."""

    def __init__(self, settings: EvalSettings) -> None:
        self.settings = settings
        self._extractor: Any = None

    def get(self) -> Any:
        if self._extractor is None:
            from thinkjson_edge.extract import ExtractOptions, Extractor

            options = ExtractOptions(
                think=self.settings.think,
                self_correct=self.settings.self_correct,
                max_think_tokens=self.settings.max_think_tokens,
            )
            self._extractor = Extractor(
                self.settings.model, device=self.settings.device, options=options
            )
        return self._extractor

    def close(self) -> None:
        if self._extractor is not None:
            self._extractor.close()


def _extract_one(
    case: Case, root: Path, key: str, extractor: _LazyExtractor, schema: Schema, cache_file: Path
) -> DocumentRecord:
    from thinkjson_edge.cli import write_atomically

    shown = str(case.document.relative_to(root))
    full: dict[str, Any] | None = None
    try:
        result = extractor.get().extract(case.document, schema)
    except (InputError, GenerationError) as error:  # the product gives nothing here either
        record = DocumentRecord(case.name, shown, [], 0, 0.0, error=str(error), key=key)
    else:
        record = record_from_result(case.name, shown, key, result)
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


# --- scoring and aggregation -------------------------------------------------------

VIEWS = ("attempt1", "attempt2", "kept")


def _view_scores(records: Sequence[DocumentRecord], golds: Sequence[Any], view: str) -> list[Any]:
    scores = []
    for record, gold in zip(records, golds, strict=True):
        attempt = record.attempt(view)
        scores.append(score_document(gold, attempt.value if attempt else None))
    return scores


def _pct(part: float, whole: float) -> float | None:
    return 100 * part / whole if whole else None


def summarise_view(
    records: Sequence[DocumentRecord], scores: Sequence[DocumentScore], view: str
) -> dict[str, Any]:
    """The corpus figures of one view, with schema validity and grounding."""
    attempts = [r.attempt(view) for r in records]
    summary = aggregate(scores).to_dict()
    checked = sum(a.strings_checked for a in attempts if a)
    found = sum(a.strings_found for a in attempts if a)
    valid = sum(bool(a and a.valid) for a in attempts)
    summary["schema_valid"] = valid
    summary["schema_valid_pct"] = _pct(valid, len(records))
    summary["grounding"] = {"checked": checked, "found": found, "rate_pct": _pct(found, checked)}
    return summary


def _transitions(first: Sequence[bool], second: Sequence[bool]) -> dict[str, int]:
    pairs = list(zip(first, second, strict=True))
    return {
        "right_to_right": sum(a and b for a, b in pairs),
        "wrong_to_right": sum(not a and b for a, b in pairs),
        "right_to_wrong": sum(a and not b for a, b in pairs),
        "wrong_to_wrong": sum(not a and not b for a, b in pairs),
    }


def _gold_leaf_matches(score: DocumentScore) -> list[bool]:
    return [leaf.outcome == "match" for leaf in score.leaves if leaf.outcome != "extra"]


def summarise_self_correction(
    records: Sequence[DocumentRecord],
    first: Sequence[DocumentScore],
    second: Sequence[DocumentScore],
    kept: Sequence[DocumentScore],
) -> dict[str, Any]:
    """SCoRe's figures (exact match as the criterion) in percent, with transition counts."""
    figures = self_correction_scores(first, second)
    first_leaves = [m for s in first for m in _gold_leaf_matches(s)]
    second_leaves = [m for s in second for m in _gold_leaf_matches(s)]
    return {
        "criterion": "exact match",
        "problems": figures.problems,
        "second_attempts": sum(len(r.attempts) > 1 for r in records),
        "kept_second": sum(r.chosen_attempt == 2 for r in records),
        "accuracy_t1_pct": 100 * figures.accuracy_t1,
        "accuracy_t2_pct": 100 * figures.accuracy_t2,
        "accuracy_kept_pct": 100 * sum(s.exact_match for s in kept) / len(kept),
        "delta_pct": 100 * figures.delta,
        "delta_i_to_c_pct": 100 * figures.delta_i_to_c,
        "delta_c_to_i_pct": 100 * figures.delta_c_to_i,
        "documents": _transitions([s.exact_match for s in first], [s.exact_match for s in second]),
        "fields": _transitions(first_leaves, second_leaves),
    }


def summarise_timing(records: Sequence[DocumentRecord]) -> dict[str, Any]:
    """Seconds per document (as measured when computed, cached ones included) and tokens/s."""
    timed = [r for r in records if not r.error]
    seconds = [r.seconds for r in timed]
    tokens = sum(a.generated_tokens for r in timed for a in r.attempts)
    decode = sum(a.decode_seconds for r in timed for a in r.attempts)
    return {
        "documents_timed": len(timed),
        "seconds_total": sum(seconds),
        "seconds_mean": statistics.fmean(seconds) if seconds else None,
        "seconds_median": statistics.median(seconds) if seconds else None,
        "seconds_max": max(seconds) if seconds else None,
        "generated_tokens": tokens,
        "decode_seconds": decode,
        "tokens_per_second": tokens / decode if decode else None,
        "cached_documents": sum(r.cached for r in records),
    }


def summarise(
    records: Sequence[DocumentRecord], golds: Sequence[Any], self_correct: bool
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The corpus summary and the per-document entries of the report."""
    scores = {view: _view_scores(records, golds, view) for view in VIEWS}
    views = VIEWS if self_correct else ("attempt1", "kept")
    summary: dict[str, Any] = {view: summarise_view(records, scores[view], view) for view in views}
    summary["self_correction"] = (
        summarise_self_correction(records, scores["attempt1"], scores["attempt2"], scores["kept"])
        if self_correct
        else None
    )
    summary["timing"] = summarise_timing(records)
    documents = []
    for index, (record, gold) in enumerate(zip(records, golds, strict=True)):
        entry = record.to_dict()
        entry.pop("key")
        entry["gold"] = gold
        entry["scores"] = {view: scores[view][index].to_dict() for view in views}
        documents.append(entry)
    return summary, documents


def build_report(outcome: RunOutcome, report_dir: Path) -> dict[str, Any]:
    """Everything about a run, as plain JSON types (``report.json``)."""
    settings = outcome.settings
    summary, documents = summarise(outcome.records, outcome.golds, settings.self_correct)
    return {
        "format": REPORT_FORMAT,
        "settings": {
            "model": outcome.model_name,
            "model_sha256": outcome.model_sha256,
            "device": settings.device,
            "think": settings.think,
            "max_think_tokens": settings.max_think_tokens,
            "self_correct": settings.self_correct,
            "limit": settings.limit,
            "date": outcome.started,
            "version": __version__,
            "data_dir": str(outcome.dataset.root),
            "schema": str(outcome.dataset.schema_path),
            "report_dir": str(report_dir),
        },
        "dataset": {
            "documents_with_gold": len(outcome.dataset.cases),
            "evaluated": len(outcome.records),
            "skipped": len(outcome.dataset.skipped),
            "skipped_files": [asdict(s) for s in outcome.dataset.skipped],
            "errors": sum(r.error is not None for r in outcome.records),
        },
        "run": {
            "computed": outcome.computed,
            "cached": len(outcome.records) - outcome.computed,
        },
        "summary": summary,
        "documents": documents,
    }


def default_report_dir(data_dir: Path, model_name: str, settings: EvalSettings) -> Path:
    """``eval-DATA-MODEL-think|nothink-sc|nosc`` in the current folder: one per setting,
    so re-running a command resumes it and the four settings do not overwrite each other."""
    think = "think" if settings.think else "nothink"
    correct = "sc" if settings.self_correct else "nosc"
    name = data_dir.resolve().name or "data"
    return Path(f"eval-{name}-{_safe(model_name)}-{think}-{correct}")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def load_report(path: Path) -> dict[str, Any]:
    """A ``report.json`` written by this module; InputError when it is not one."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON at line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(report, dict) or report.get("format") != REPORT_FORMAT:
        raise InputError(f'{path}: not an evaluation report (no "format": {REPORT_FORMAT!r})')
    try:
        report["settings"]["model"], report["summary"]["kept"]["per_field"].items()
        names = [document["name"] for document in report["documents"]]
    except (KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{path}: an incomplete evaluation report (no {exc})") from exc
    if len(names) != len(set(names)):
        raise InputError(f"{path}: an evaluation report with a document listed twice")
    return report


__all__ = [
    "AttemptRecord",
    "Case",
    "Dataset",
    "DocumentRecord",
    "EvalSettings",
    "RunOutcome",
    "Skipped",
    "build_report",
    "cache_key",
    "default_report_dir",
    "find_dataset",
    "load_gold",
    "load_report",
    "read_cached",
    "run_evaluation",
    "summarise",
]
