"""What is wrong with an attempt: schema violations and values not found in the document.

Schema findings come from the full validator (every keyword of the schema's
draft, ``format`` included), so they also cover what the grammar cannot
express. Grounding findings flag strings that do not occur in the document;
strings the schema itself supplies (``enum``, ``const``) or reformats
(``format``) are not expected to be found verbatim and are not checked. Values
copied from the document while decoding are found by construction: their spans
come from the decoder (match ``"copied"``), so grounding findings concern only
generated values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from thinkjson_edge.engine.generation import STOP_TIME_LIMIT, STOP_TOKEN_LIMIT, ValueTrace
from thinkjson_edge.pipeline.grounding import NormalisedText, Span
from thinkjson_edge.schema import Schema, merge_schemas, pointer, resolve_local_ref

SCHEMA = "schema"
NOT_GROUNDED = "not-grounded"
INCOMPLETE = "incomplete"
# Chunks of a long document gave different values, each found in the document, for one path.
# Not a schema error: the merged object keeps the first and the report shows the others.
CONFLICT = "conflict"
# A value the model wrote with a confidence below the review threshold: worth a look by a
# person. Not an error: it neither makes the result invalid nor asks for a second attempt.
REVIEW = "review"
# Decoding ran out of its token or time budget before the object was complete (the object
# is then also "incomplete"). Another attempt would run out the same way: none is made.
BUDGET = "budget"

_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}


@dataclass(frozen=True)
class Finding:
    """One problem with an attempt, at a JSON Pointer into the extracted object."""

    kind: str
    path: str
    message: str

    def describe(self) -> str:
        """One line for people and for the correction prompt."""
        return f"{self.path or '(root)'}: {self.message}"


@dataclass(frozen=True)
class GroundedValue:
    """A string value of the result and where it occurs in the document (None: nowhere)."""

    path: str
    value: str
    span: Span | None


def schema_findings(schema: Schema, instance: Any) -> list[Finding]:
    """Every violation of the schema, as findings."""
    return [
        Finding(SCHEMA, pointer(error.absolute_path), error.message)
        for error in schema.errors(instance)
    ]


def ground_values(
    schema: Schema,
    instance: Any,
    document: NormalisedText,
    copied: Mapping[str, Span] | None = None,
) -> list[GroundedValue]:
    """Look up every groundable string of ``instance`` in the document.

    ``copied`` maps the JSON Pointers of values copied while decoding to their spans.
    """
    copied = copied or {}
    return [
        GroundedValue(path, value, copied.get(path) or document.find(value))
        for path, value in iter_groundable_strings(instance, schema.schema)
    ]


def shift_grounding(grounded: list[GroundedValue], offset: int) -> list[GroundedValue]:
    """Grounding made in a part of the document, at offsets in the whole (``offset``: its start)."""
    return [
        GroundedValue(
            item.path,
            item.value,
            Span(item.span.start + offset, item.span.end + offset, item.span.match)
            if item.span
            else None,
        )
        for item in grounded
    ]


def copied_spans(values: Iterable[ValueTrace]) -> dict[str, Span]:
    """Where the decoder copied each copied value from, by JSON Pointer (for ``ground_values``)."""
    return {
        pointer(trace.path): Span(trace.start, trace.end, "copied")
        for trace in values
        if trace.copied and trace.start is not None and trace.end is not None
    }


def review_findings(values: Iterable[ValueTrace], below: float) -> list[Finding]:
    """A ``review`` finding for each value whose confidence is under ``below``."""
    return [
        Finding(
            REVIEW, pointer(trace.path), f"confidence {_shown(trace.confidence)} is below {below:g}"
        )
        for trace in values
        if trace.confidence < below
    ]


def _shown(confidence: float) -> str:
    """Two decimals, rounded down, so a value under the threshold never reads as equal."""
    return f"{math.floor(round(confidence * 100, 6)) / 100:.2f}"  # 0.29 * 100 is 28.999...


def budget_findings(
    stop_reason: str, *, max_json_tokens: int, max_seconds: float | None
) -> list[Finding]:
    """A ``budget`` finding when decoding stopped at its token or time limit, else none."""
    if stop_reason == STOP_TIME_LIMIT:
        limit = f"its time limit of {max_seconds:g} s"
        hint = "raise --attempt-timeout for a slow machine or a large object"
    elif stop_reason == STOP_TOKEN_LIMIT:
        limit = f"its budget of {max_json_tokens} JSON tokens"
        hint = "a schema whose required properties contain their own object never closes"
    else:
        return []
    message = f"decoding stopped at {limit} before the object was complete ({hint})"
    return [Finding(BUDGET, "", message)]


def grounding_findings(grounded: list[GroundedValue]) -> list[Finding]:
    return [
        Finding(NOT_GROUNDED, item.path, f"{item.value!r} does not occur in the document")
        for item in grounded
        if item.span is None
    ]


def iter_groundable_strings(instance: Any, root: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(JSON Pointer, value) for every non-empty string the document should contain."""
    yield from _walk(instance, root, root, "")


def _walk(instance: Any, schema: Any, root: dict[str, Any], path: str) -> Iterator[tuple[str, str]]:
    schema = _effective_schema(schema, instance, root)
    if isinstance(instance, str):
        if instance.strip() and not {"enum", "const", "format"} & schema.keys():
            yield path, instance
    elif isinstance(instance, dict):
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties", {})
        for key, value in instance.items():
            subschema = properties.get(key, extra if isinstance(extra, dict) else {})
            yield from _walk(value, subschema, root, path + pointer([key]))
    elif isinstance(instance, list):
        prefix = schema.get("prefixItems") or []
        items = schema.get("items", {})
        for index, value in enumerate(instance):
            subschema = prefix[index] if index < len(prefix) else items
            yield from _walk(
                value, subschema if isinstance(subschema, dict) else {}, root, f"{path}/{index}"
            )


def effective_schema(schema: Any, instance: Any, root: dict[str, Any]) -> dict[str, Any]:
    """The schema that applies to ``instance`` (see ``_effective_schema``)."""
    return _effective_schema(schema, instance, root)


def _effective_schema(schema: Any, instance: Any, root: dict[str, Any]) -> dict[str, Any]:
    """The schema that applies to ``instance``: references followed, combinators flattened."""
    for _ in range(32):  # bounded: a reference cycle must not hang the walk
        if not isinstance(schema, dict):
            return {}
        if "$ref" in schema:
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = merge_schemas(rest, resolve_local_ref(root, schema["$ref"]))
        elif "allOf" in schema:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                merged = merge_schemas(merged, _effective_schema(part, instance, root))
            schema = merged
        elif "anyOf" in schema or "oneOf" in schema:
            branches = schema.get("anyOf") or schema.get("oneOf")
            base = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
            schema = merge_schemas(base, _branch_for(branches, instance, root))
        else:
            return schema
    return {}


def _branch_for(branches: list[Any], instance: Any, root: dict[str, Any]) -> Any:
    """The first branch whose type admits the instance's JSON type."""
    kind = (
        "number"
        if isinstance(instance, int | float) and not isinstance(instance, bool)
        else (_JSON_TYPES.get(type(instance), ""))
    )
    for branch in branches:
        resolved = _effective_schema(branch, instance, root)
        types = resolved.get("type")
        allowed = types if isinstance(types, list) else [types] if types else None
        if allowed is None or kind in allowed or (kind == "number" and "integer" in allowed):
            return resolved
    return {}
