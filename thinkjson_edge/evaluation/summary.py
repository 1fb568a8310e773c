"""Scoring the records of a run against their gold, and the report that sums a run up.

Three views of each document are scored: attempt 1; attempt 2, which is attempt 2's
output when the second attempt ran and attempt 1's carried over when it did not (the
first attempt had no findings); and the kept attempt, which is what the product outputs.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from thinkjson_edge import __version__
from thinkjson_edge.errors import InputError
from thinkjson_edge.evaluation.calibration import summarise_calibration
from thinkjson_edge.evaluation.metrics import (
    DocumentScore,
    aggregate,
    render_path,
    score_document,
    self_correction_scores,
)
from thinkjson_edge.evaluation.run import DocumentRecord, EvalSettings, RunOutcome
from thinkjson_edge.schema import pointer_parts

REPORT_FORMAT = "thinkjson-edge-eval/1"
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
    copied = sum(a.copied_values for a in attempts if a)
    in_document = sum(a.copied_in_document for a in attempts if a)
    summary["copied"] = {
        "values": copied,
        "in_document": in_document,
        "rate_pct": _pct(in_document, copied),
    }
    return summary


def confidence_pairs(
    records: Sequence[DocumentRecord], scores: Sequence[DocumentScore], view: str
) -> tuple[list[float], list[bool]]:
    """(confidence, equals the gold) for every predicted leaf that has a confidence."""
    confidences: list[float] = []
    correct: list[bool] = []
    for record, score in zip(records, scores, strict=True):
        attempt = record.attempt(view)
        if attempt is None or attempt.value is None:
            continue
        outcomes = {leaf.path: leaf.outcome for leaf in score.leaves}
        for value in attempt.values:
            path = _leaf_path(attempt.value, value["path"])
            if path in outcomes:
                confidences.append(float(value["confidence"]))
                correct.append(outcomes[path] == "match")
    return confidences, correct


def _leaf_path(instance: Any, json_pointer: str) -> str | None:
    """The metrics' path of a JSON Pointer into ``instance`` (indices where it holds lists)."""
    parts: list[str | int] = []
    node = instance
    for part in pointer_parts(json_pointer):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            parts.append(int(part))
        elif isinstance(node, dict) and part in node:
            node = node[part]
            parts.append(part)
        else:
            return None
    return render_path(parts)


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
    confidences, correct = confidence_pairs(records, scores["kept"], "kept")
    summary["calibration"] = summarise_calibration(confidences, correct) if confidences else None
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
            "adapter": outcome.adapter,
            "device": settings.device,
            "think": settings.think,
            "max_think_tokens": settings.max_think_tokens,
            "self_correct": settings.self_correct,
            "copy": settings.copy,
            "span_search": settings.options.span_search,
            "review_below": settings.options.review_below,
            "ask_labelled": settings.options.ask_labelled,
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
    copy = "" if settings.copy else "-nocopy"
    name = data_dir.resolve().name or "data"
    return Path(f"eval-{name}-{_safe(model_name)}-{think}-{correct}{copy}")


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
