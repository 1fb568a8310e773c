"""Typed results of an extraction, serialisable to JSON."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from thinkjson_edge.engine.generation import Generation, ValueTrace
from thinkjson_edge.pipeline.findings import (
    INCOMPLETE,
    NOT_GROUNDED,
    REVIEW,
    SCHEMA,
    Finding,
    GroundedValue,
)
from thinkjson_edge.pipeline.layout import Layout
from thinkjson_edge.schema import pointer, pointer_parts


@dataclass(frozen=True)
class Attempt:
    """One try at the extraction: the output, its parsed object and what is wrong with it."""

    number: int
    generation: Generation
    value: dict[str, Any] | None
    findings: list[Finding]
    grounding: list[GroundedValue]
    # Optional keys the first decoding left out although the document prints their labels,
    # and whether the decoding that asked for them was kept (see pipeline.labelled_keys).
    asked_keys: tuple[str, ...] = ()
    asked_kept: bool = False

    @property
    def values(self) -> tuple[ValueTrace, ...]:
        """Every scalar the model wrote, with its confidence and, when copied, its span."""
        return self.generation.values

    @property
    def schema_errors(self) -> int:
        return sum(f.kind in (SCHEMA, INCOMPLETE) for f in self.findings)

    @property
    def ungrounded(self) -> int:
        return sum(f.kind == NOT_GROUNDED for f in self.findings)

    @property
    def to_review(self) -> int:
        """Values the model was unsure of (``review`` findings)."""
        return sum(f.kind == REVIEW for f in self.findings)

    @property
    def correctable(self) -> list[Finding]:
        """What a second attempt is asked to fix: schema errors and values not found."""
        return [f for f in self.findings if f.kind in (SCHEMA, INCOMPLETE, NOT_GROUNDED)]

    @property
    def valid(self) -> bool:
        """Parsed and schema-valid (grounding problems do not make a result invalid)."""
        return self.value is not None and self.schema_errors == 0

    def rank(self) -> tuple[int, int, int]:
        """Smaller is better: invalid last, then by schema errors, then by ungrounded values."""
        return (0 if self.valid else 1, self.schema_errors, self.ungrounded)


@dataclass(frozen=True)
class ChunkResult:
    """The extraction from one chunk of a long document: ``document[start:end]``."""

    number: int  # from 1, in document order
    start: int
    end: int
    tokens: int
    attempts: list[Attempt]  # their grounding offsets are in the whole document
    chosen_attempt: int
    correction_skipped: bool = False  # attempt 2 was due, but its prompt would not fit

    @property
    def chosen(self) -> Attempt:
        return self.attempts[self.chosen_attempt - 1]

    def to_dict(self, layout: Layout | None = None) -> dict[str, Any]:
        return {
            "number": self.number,
            "start": self.start,
            "end": self.end,
            "tokens": self.tokens,
            "chosen_attempt": self.chosen_attempt,
            "correction_skipped": self.correction_skipped,
            "value": self.chosen.value,
            "attempts": [_attempt_dict(a, layout) for a in self.attempts],
        }


@dataclass(frozen=True)
class ExtractionResult:
    """The chosen object, whether it is valid, and every attempt that led to it."""

    value: dict[str, Any] | None
    valid: bool
    chosen_attempt: int
    attempts: list[Attempt]
    source: str
    model: str
    think: bool
    load_seconds: float
    total_seconds: float
    validation_only: list[str] = field(default_factory=list)
    # A long document is extracted chunk by chunk; ``attempts`` then holds one attempt, the
    # merged object, and ``chunk_results`` the extraction from each chunk.
    chunks: int = 1
    chunk_results: list[ChunkResult] = field(default_factory=list)
    correction_skipped: bool = False  # attempt 2 was due, but its prompt would not fit
    # With a LoRA adapter: its name, file and sha256, and its base's (``model`` is its name).
    adapter: dict[str, str] | None = None
    # Where the document's text sits on its pages (PDFs and images): the report then gives
    # each value with offsets its page and, for text read by OCR, its box.
    layout: Layout | None = None
    # What the reading of the document noted (a blank scanned page).
    reading_notes: tuple[str, ...] = ()

    @property
    def chosen(self) -> Attempt:
        return self.attempts[self.chosen_attempt - 1]

    @property
    def findings(self) -> list[Finding]:
        return self.chosen.findings

    def to_dict(self) -> dict[str, Any]:
        """Everything about the extraction, as plain JSON types (the ``--report`` record)."""
        return {
            "source": self.source,
            "model": self.model,
            **({"adapter": self.adapter} if self.adapter else {}),
            "think": self.think,
            "valid": self.valid,
            "chosen_attempt": self.chosen_attempt,
            "value": self.value,
            "validation_only_keywords": self.validation_only,
            "timings": {"load_seconds": self.load_seconds, "total_seconds": self.total_seconds},
            "attempts": [_attempt_dict(a, self.layout) for a in self.attempts],
            "correction_skipped": self.correction_skipped,
            "chunks": self.chunks,
            **(
                {"chunk_results": [chunk.to_dict(self.layout) for chunk in self.chunk_results]}
                if self.chunk_results
                else {}
            ),
            **({"pages": [page.to_dict() for page in self.layout.pages]} if self.layout else {}),
            **({"reading_notes": list(self.reading_notes)} if self.reading_notes else {}),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)


def _attempt_dict(attempt: Attempt, layout: Layout | None = None) -> dict[str, Any]:
    generation = dataclasses.asdict(attempt.generation)
    del generation["values"]  # reported apart, by JSON Pointer
    generation["tokens_per_second"] = round(attempt.generation.tokens_per_second, 2)
    return {
        "number": attempt.number,
        "valid": attempt.valid,
        "value": attempt.value,
        "findings": [dataclasses.asdict(f) for f in attempt.findings],
        "asked_keys": list(attempt.asked_keys),
        "asked_kept": attempt.asked_kept,
        "grounding": [
            {
                "path": g.path,
                "value": g.value,
                "found": g.span is not None,
                **(
                    {"start": g.span.start, "end": g.span.end, "match": g.span.match}
                    if g.span
                    else {}
                ),
                **(layout.locate(g.span.start, g.span.end) if layout and g.span else {}),
            }
            for g in attempt.grounding
        ],
        "values": [value_dict(trace, layout) for trace in attempt.values],
        "generation": generation,
    }


def value_dict(trace: ValueTrace, layout: Layout | None = None) -> dict[str, Any]:
    """One value of the report: its pointer, kind, confidence, and whether it was copied;
    a copied value has its offsets and, with a ``layout``, its page (and box)."""
    located = trace.copied and trace.start is not None and trace.end is not None
    return {
        "path": pointer(trace.path),
        "kind": trace.kind,
        "confidence": trace.confidence,
        "copied": trace.copied,
        **({"start": trace.start, "end": trace.end} if trace.copied else {}),
        **(layout.locate(trace.start, trace.end) if layout and located else {}),  # type: ignore[arg-type]
    }


def value_from_dict(entry: dict[str, Any]) -> ValueTrace:
    """A report's value (``value_dict``) as a trace again; its path parts are strings."""
    copied = bool(entry.get("copied"))
    return ValueTrace(
        path=tuple(pointer_parts(entry["path"])),
        kind=str(entry.get("kind", "")),
        confidence=float(entry["confidence"]),
        copied=copied,
        start=entry.get("start") if copied else None,
        end=entry.get("end") if copied else None,
    )
