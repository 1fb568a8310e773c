"""One document under review: the extracted object, its edits, and what is wrong with it.

Everything the review screen shows is computed here, without a terminal, so it is tested
directly. Every change of the object is judged again by ``extract.assess_output``, the same
function that judges the model's attempts, so a reviewer's edit is held to the same rules:
the full schema validator, and grounding against the document.

An edited value is read as JSON when that fits the schema better than the text as it is,
else as text: ``12.5`` becomes a number for a number field, and stays the text "12.5" for
a string field. Quoting it (``"12.5"``) always gives text.

Saving refuses an object that breaks the schema (the tool's promise is schema-valid
output), writes it atomically, and appends an entry to a review record beside it: who
saved, when, what the model extracted, what was saved and every edit in between.
"""

from __future__ import annotations

import copy
import getpass
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from thinkjson_edge.errors import OutputWriteError, ReviewError
from thinkjson_edge.files import write_atomically
from thinkjson_edge.pipeline.assessment import assess_output
from thinkjson_edge.pipeline.documents import Document
from thinkjson_edge.pipeline.findings import CONFLICT, INCOMPLETE, NOT_GROUNDED, SCHEMA, Finding
from thinkjson_edge.pipeline.grounding import NormalisedText, Span
from thinkjson_edge.schema import Schema, pointer, pointer_parts

# A field's status, worst first; the tree shows one glyph per status.
SCHEMA_ERROR = "schema error"
NOT_FOUND = "not grounded"
VALID = "valid"
REVIEW_RECORD_SUFFIX = ".review.json"


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

    def __post_init__(self) -> None:
        self._located = NormalisedText(self.document.text)
        if self.value is None:
            self.value = copy.deepcopy(self.extracted)
        self.revalidate()

    @classmethod
    def from_report(
        cls, document: Document, schema: Schema, report: dict[str, Any], save_path: Path
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
        return cls(
            document=document,
            schema=schema,
            extracted=report.get("value"),
            attempts=attempts,
            reasoning=reasoning,
            model=str(report.get("model", "")),
            save_path=save_path,
        )

    # -- judging ---------------------------------------------------------------

    def revalidate(self) -> None:
        """Judge the current object again: schema findings and where its values occur."""
        text = json.dumps(self.value, ensure_ascii=False)
        _, findings, grounding = assess_output(text, "complete", self.schema, self._located)
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
        return VALID

    # -- editing ---------------------------------------------------------------

    def value_at(self, path: str) -> Any:
        return get_at(self.value, path)

    def set_value(self, path: str, raw: str) -> Any:
        """Set the value at ``path`` from what the reviewer typed; return what was stored."""
        new = self._interpret(path, raw)
        self._replace(path, new, by="reviewer")
        return new

    def adopt_field(self, key: str, value: Any) -> None:
        """Put a re-extracted top-level field into the object (an edit by the model)."""
        if not isinstance(self.value, dict):
            self.value = {}
        self._replace(pointer([key]), value, by="model")

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
        name = self.save_path.name.removesuffix(".json") + REVIEW_RECORD_SUFFIX
        return self.save_path.with_name(name)

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


def default_save_path(document: Path) -> Path:
    """Where a reviewed result goes by default: ``NAME.extracted.json`` beside the document."""
    return document.with_name(f"{document.stem}.extracted.json")


# -- JSON Pointers (RFC 6901), the paths findings use ---------------------------


_MISSING = object()


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


def _describe(finding: dict[str, Any]) -> str:
    return f"{finding.get('path') or '(root)'}: {finding.get('message', '')}"


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return "unknown"
