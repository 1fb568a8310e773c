"""One document under review: the extracted object, its edits, and what is wrong with it.

Everything the review screen shows is computed here, without a terminal, so it is tested
directly. Every change of the object is judged again by ``extract.assess_output``, the same
function that judges the model's attempts, so a reviewer's edit is held to the same rules:
the full schema validator, and grounding against the document.

An edited value is read as JSON when that fits the schema better than the text as it is,
else as text: ``12.5`` becomes a number for a number field, and stays the text "12.5" for
a string field. Quoting it (``"12.5"``) always gives text.

Each value the model wrote carries its confidence (see ``ValueTrace``) and, when copied
from the document, its exact span. A value the reviewer edited has no model confidence any
more; one under ``review_below`` is marked for a look, and ``next_to_check`` walks the
values from the least confident up. In a paged document (a PDF, a scan) a value found in
the text also has a page and, where OCR read it, a box on that page (``page_and_box``).

Saving refuses an object that breaks the schema (the tool's promise is schema-valid
output), writes it atomically, and appends an entry to a review record beside it: who
saved, when, what the model extracted, what was saved and every edit in between.
"""

from __future__ import annotations

import copy
import getpass
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from thinkjson_edge.batch.layout import review_record_path
from thinkjson_edge.engine.generation import ValueTrace
from thinkjson_edge.errors import OutputWriteError, ReviewError
from thinkjson_edge.files import write_atomically
from thinkjson_edge.pipeline.assessment import assess_output
from thinkjson_edge.pipeline.documents import Document
from thinkjson_edge.pipeline.extractor import DEFAULT_REVIEW_BELOW
from thinkjson_edge.pipeline.findings import (
    CONFLICT,
    INCOMPLETE,
    NOT_GROUNDED,
    REVIEW,
    SCHEMA,
    Finding,
    copied_spans,
    review_findings,
)
from thinkjson_edge.pipeline.grounding import NormalisedText, Span
from thinkjson_edge.pipeline.layout import Layout
from thinkjson_edge.pipeline.result import value_from_dict
from thinkjson_edge.schema import Schema, pointer, pointer_parts

# A field's status, worst first; the tree shows one glyph per status.
SCHEMA_ERROR = "schema error"
NOT_FOUND = "not grounded"
LOW_CONFIDENCE = "low confidence"
VALID = "valid"


@dataclass(frozen=True)
class Edit:
    """One change of the object: by the reviewer, or by re-running one field."""

    path: str
    before: Any
    after: Any
    by: str  # "reviewer" or "model"


@dataclass(frozen=True)
class AttemptSummary:
    """One attempt of the extraction as the attempts view shows it."""

    number: int
    value: Any
    valid: bool
    problems: list[str]
    kept: bool


@dataclass
class Review:
    """The document, the schema, the extraction's attempts and the object being reviewed."""

    document: Document
    schema: Schema
    extracted: Any  # the object the extraction kept, before any edit
    attempts: list[AttemptSummary]
    reasoning: str
    model: str
    save_path: Path
    value: Any = None
    edits: list[Edit] = field(default_factory=list)
    saved: bool = False
    findings: list[Finding] = field(default_factory=list)
    spans: dict[str, Span] = field(default_factory=dict)
    # The model's values by JSON Pointer, in the order it wrote them (the kept attempt's).
    traces: dict[str, ValueTrace] = field(default_factory=dict)
    review_below: float = DEFAULT_REVIEW_BELOW  # values less confident are marked (0: none)

    def __post_init__(self) -> None:
        self._located = NormalisedText(self.document.text)
        # The object the traces describe: the extracted one, with re-run fields put in.
        self._model_value = copy.deepcopy(self.extracted)
        if self.value is None:
            self.value = copy.deepcopy(self.extracted)
        self.revalidate()

    @classmethod
    def from_report(
        cls,
        document: Document,
        schema: Schema,
        report: dict[str, Any],
        save_path: Path,
        *,
        review_below: float = DEFAULT_REVIEW_BELOW,
    ) -> Review:
        """A review of an extraction's report (``ExtractionResult.to_dict()`` or a batch's)."""
        chosen = report.get("chosen_attempt", 1)
        attempts = [
            AttemptSummary(
                number=attempt["number"],
                value=attempt.get("value"),
                valid=bool(attempt.get("valid")),
                problems=[_describe(f) for f in attempt.get("findings", [])],
                kept=attempt["number"] == chosen,
            )
            for attempt in report.get("attempts", [])
        ]
        kept = next((a for a in report.get("attempts", []) if a["number"] == chosen), {})
        reasoning = (kept.get("generation") or {}).get("reasoning") or ""
        traces = [value_from_dict(v) for v in kept.get("values") or [] if _is_value_entry(v)]
        return cls(
            document=document,
            schema=schema,
            extracted=report.get("value"),
            attempts=attempts,
            reasoning=reasoning,
            model=str(report.get("model", "")),
            save_path=save_path,
            traces={pointer(t.path): t for t in traces},
            review_below=review_below,
        )

    # -- judging ---------------------------------------------------------------

    def revalidate(self) -> None:
        """Judge the current object again: schema findings and where its values occur.

        The model's values still in place keep what the extraction knew of them: a copied
        one its span, and one under ``review_below`` a ``review`` finding.
        """
        text = json.dumps(self.value, ensure_ascii=False)
        live = self._live_traces()
        _, findings, grounding = assess_output(
            text, "complete", self.schema, self._located, copied_spans(live)
        )
        if self.review_below > 0:
            findings += review_findings(live, self.review_below)
        self.findings = findings
        self.spans = {g.path: g.span for g in grounding if g.span is not None}

    @property
    def valid(self) -> bool:
        return isinstance(self.value, dict) and not self.schema_errors()

    def schema_errors(self) -> list[Finding]:
        return [f for f in self.findings if f.kind in (SCHEMA, INCOMPLETE)]

    def problems_at(self, path: str) -> list[Finding]:
        """The findings about exactly this node (a missing property is its object's)."""
        return [f for f in self.findings if f.path == path and f.kind != CONFLICT]

    def status(self, path: str) -> str:
        """The worst status of the node and everything under it."""
        under = [f for f in self.findings if _is_within(f.path, path)]
        if any(f.kind in (SCHEMA, INCOMPLETE) for f in under):
            return SCHEMA_ERROR
        if any(f.kind == NOT_GROUNDED for f in under):
            return NOT_FOUND
        if any(f.kind == REVIEW for f in under):
            return LOW_CONFIDENCE
        return VALID

    def to_check(self) -> list[Finding]:
        """The ``review`` findings: values the model wrote with a confidence under the bar."""
        return [f for f in self.findings if f.kind == REVIEW]

    # -- confidence ------------------------------------------------------------

    def edited(self, path: str) -> bool:
        """Whether the reviewer changed this value: by an edit, or in the object saved since.

        A field re-run by the model is the model's again.
        """
        last_by = None
        for edit in self.edits:
            if _is_within(path, edit.path):
                last_by = edit.by
        if last_by == "reviewer":
            return True
        if self._model_value is None:  # nothing extracted to compare with (no report)
            return False
        return not _same(
            get_at(self.value, path, _ABSENT), get_at(self._model_value, path, _ABSENT)
        )

    def confidence(self, path: str) -> ValueTrace | None:
        """The model's trace of the value at ``path``; None when edited or not traced."""
        trace = self.traces.get(path)
        if trace is None or self.edited(path) or get_at(self.value, path, _ABSENT) is _ABSENT:
            return None
        return trace

    def by_confidence(self) -> list[ValueTrace]:
        """The model's values not edited since, least confident first (ties: writing order)."""
        return sorted(self._live_traces(), key=lambda t: t.confidence)

    def next_to_check(self, after: str | None = None) -> ValueTrace | None:
        """The value to look at next: the least confident, or the next one up after ``after``.

        ``after`` is where the last jump went; it may have been edited since, and the walk
        goes on from where it stood. Past the most confident value it starts again.
        """
        order = self.by_confidence()
        if not order:
            return None
        previous = self.traces.get(after) if after is not None else None
        if previous is None:
            return order[0]
        written = {path: number for number, path in enumerate(self.traces)}

        def rank(trace: ValueTrace) -> tuple[float, int]:
            return trace.confidence, written[pointer(trace.path)]

        return next((t for t in order if rank(t) > rank(previous)), order[0])

    def _live_traces(self) -> list[ValueTrace]:
        return [t for path, t in self.traces.items() if self.confidence(path) is not None]

    # -- editing ---------------------------------------------------------------

    def value_at(self, path: str) -> Any:
        return get_at(self.value, path)

    def set_value(self, path: str, raw: str) -> Any:
        """Set the value at ``path`` from what the reviewer typed; return what was stored."""
        new = self._interpret(path, raw)
        self._replace(path, new, by="reviewer")
        return new

    def adopt_field(self, key: str, value: Any, traces: Iterable[ValueTrace] = ()) -> None:
        """Put a re-extracted top-level field into the object (an edit by the model).

        ``traces``: the re-run's values; those under ``key`` replace the field's old ones.
        """
        path = pointer([key])
        if not isinstance(self.value, dict):
            self.value = {}
        if not isinstance(self._model_value, dict):
            self._model_value = {}
        self._model_value = set_at(self._model_value, path, value)
        kept = {p: t for p, t in self.traces.items() if not _is_within(p, path)}
        fresh = {pointer(t.path): t for t in traces if t.path[:1] == (key,)}
        self.traces = {**kept, **fresh}
        self._replace(path, value, by="model")

    def _replace(self, path: str, new: Any, *, by: str) -> None:
        before = get_at(self.value, path, missing=None)
        self.value = set_at(self.value, path, new)
        self.edits.append(Edit(path, before, new, by))
        self.saved = False
        self.revalidate()

    def _interpret(self, path: str, raw: str) -> Any:
        """JSON when that fits the schema at least as well as the plain text, else the text."""
        try:
            parsed = json.loads(raw)
        except ValueError:
            return raw
        if isinstance(parsed, str):
            return parsed
        as_json = len(self.schema.errors(set_at(self.value, path, parsed)))
        as_text = len(self.schema.errors(set_at(self.value, path, raw)))
        return parsed if as_json <= as_text else raw

    # -- re-running one field --------------------------------------------------

    def field_schema(self, key: str) -> dict[str, Any]:
        """A schema for the top-level property ``key`` alone, to extract it again."""
        root = self.schema.schema
        properties = root.get("properties")
        if not isinstance(properties, dict) or key not in properties:
            raise ReviewError(
                f"{key!r} is not a property the schema declares at its top level, so it "
                "cannot be extracted on its own; re-run the whole document instead"
            )
        kept = {k: v for k, v in root.items() if k in ("$schema", "$defs", "definitions")}
        required = [key] if key in (root.get("required") or []) else []
        return {
            **kept,
            "type": "object",
            "properties": {key: properties[key]},
            "required": required,
            "additionalProperties": False,
        }

    # -- saving ----------------------------------------------------------------

    def save(self, reviewer: str | None = None) -> Path:
        """Write the object atomically and append this save to the review record."""
        if not self.valid:
            count = len(self.schema_errors())
            raise ReviewError(
                f"not saved: the object breaks the schema in {count} place(s); fix the "
                "fields marked ✗ first (the schema is the promise this tool keeps)"
            )
        if self.save_path.resolve() == Path(self.document.source).resolve():
            raise ReviewError(f"not saved: {self.save_path} is the document itself")
        text = json.dumps(self.value, ensure_ascii=False, indent=2) + "\n"
        write_atomically(self.save_path, text)
        self._append_record(reviewer or _user())
        self.saved = True
        return self.save_path

    @property
    def record_path(self) -> Path:
        return review_record_path(self.save_path)

    def _append_record(self, reviewer: str) -> None:
        record = self._read_record()
        record["reviews"].append(
            {
                "reviewer": reviewer,
                "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "model": self.model,
                "extracted": self.extracted,
                "saved": self.value,
                "edits": [vars(edit) for edit in self.edits],
            }
        )
        write_atomically(self.record_path, json.dumps(record, ensure_ascii=False, indent=2) + "\n")

    def _read_record(self) -> dict[str, Any]:
        fresh = {
            "document": self.document.source,
            "schema_source": self.schema.source,
            "schema_sha256": self.schema.sha256,
            "result": str(self.save_path),
            "reviews": [],
        }
        if not self.record_path.exists():
            return fresh
        try:
            record = json.loads(self.record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            # Never overwrite an audit trail that cannot be read: it would be lost.
            raise OutputWriteError(
                f"{self.record_path}: the review record cannot be read ({exc}); move it "
                "aside to keep it, then save again"
            ) from exc
        if not isinstance(record, dict) or not isinstance(record.get("reviews"), list):
            raise OutputWriteError(f"{self.record_path}: not a review record; move it aside")
        return record


def page_and_box(layout: Layout | None, span: Span | None) -> str:
    """Where a value found at ``span`` sits on its page, as the report gives it:
    ``page 2 · box 29,107-421,130 px`` where OCR read the text, ``page 2`` on a text-layer
    PDF page, and "" for a document without pages or a value not found."""
    if layout is None or span is None:
        return ""
    located = layout.locate(span.start, span.end)
    page, box = located["page"], located.get("box")
    if not isinstance(box, list):
        return f"page {page}"
    x0, y0, x1, y1 = box
    unit = next((p.unit for p in layout.pages if p.number == page), "")
    return f"page {page} · box {x0:g},{y0:g}-{x1:g},{y1:g} {unit}".rstrip()


def default_save_path(document: Path) -> Path:
    """Where a reviewed result goes by default: ``NAME.extracted.json`` beside the document."""
    return document.with_name(f"{document.stem}.extracted.json")


# -- JSON Pointers (RFC 6901), the paths findings use ---------------------------


_MISSING = object()
_ABSENT = object()  # a value a path does not reach, as get_at's ``missing``


def get_at(value: Any, path: str, missing: Any = _MISSING) -> Any:
    """The value at ``path``; ``missing`` (or KeyError) when it does not exist."""
    node = value
    for part in pointer_parts(path):
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            if missing is _MISSING:
                raise KeyError(path) from None
            return missing
    return node


def set_at(value: Any, path: str, new: Any) -> Any:
    """A copy of ``value`` with ``path`` set to ``new`` (objects gain the key if absent)."""
    parts = pointer_parts(path)
    if not parts:
        return copy.deepcopy(new)
    result = copy.deepcopy(value)
    node = result
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = new
    else:
        node[last] = new
    return result


def _is_within(path: str, ancestor: str) -> bool:
    return path == ancestor or path.startswith(ancestor + "/")


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON text (``1`` is not ``true``); absent only equals absent."""
    if a is _ABSENT or b is _ABSENT:
        return a is b
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _is_value_entry(entry: Any) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("path"), str) and "confidence" in entry


def _describe(finding: dict[str, Any]) -> str:
    return f"{finding.get('path') or '(root)'}: {finding.get('message', '')}"


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return "unknown"
