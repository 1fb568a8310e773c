"""The one judge of an attempt: parse its JSON, check it against the schema and the document.

Used at run time (which attempt to keep, what the correction prompt lists), by the review
interface (every edit is judged again), and by training (SCoRe's second prompt and rewards).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from thinkjson_edge.pipeline.findings import (
    INCOMPLETE,
    SCHEMA,
    Finding,
    GroundedValue,
    ground_values,
    grounding_findings,
    schema_findings,
)
from thinkjson_edge.pipeline.grounding import NormalisedText, Span
from thinkjson_edge.schema import Schema

MAX_PROBLEMS_IN_PROMPT = 12  # keeps the correction prompt short on a badly wrong attempt


def assess_output(
    json_text: str,
    stop_reason: str,
    schema: Schema,
    located: NormalisedText,
    copied: Mapping[str, Span] | None = None,
) -> tuple[dict[str, Any] | None, list[Finding], list[GroundedValue]]:
    """Parse one attempt's JSON and find what is wrong with it: the object (None when it does
    not parse as one), the findings, and where its values are in the document.
    ``copied``: the spans of values the decoder copied from the document, by JSON Pointer.

    Every attempt is judged by this, at run time and in training (SCoRe's second prompt).
    """
    try:
        value = json.loads(json_text)
    except json.JSONDecodeError as exc:
        problem = f"the output is not complete JSON ({exc.msg}; stop: {stop_reason})"
        return None, [Finding(INCOMPLETE, "", problem)], []
    if not isinstance(value, dict):
        problem = f"the output is a JSON {type(value).__name__}, not an object"
        return None, [Finding(INCOMPLETE, "", problem)], []
    grounded = ground_values(schema, value, located, copied)
    findings = (
        duplicate_key_findings(json_text)
        + schema_findings(schema, value)
        + grounding_findings(grounded)
    )
    return value, findings, grounded


def duplicate_key_findings(json_text: str) -> list[Finding]:
    """A finding for each object that names a key twice.

    The grammar lets ``additionalProperties`` write any key, a declared one included; a
    parser then keeps only one of the two values, so the validator never sees the other.
    """
    findings: list[Finding] = []

    def check(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                findings.append(Finding(SCHEMA, "", f"the key {key!r} is written twice"))
            seen.add(key)
        return dict(pairs)

    json.loads(json_text, object_pairs_hook=check)
    return findings
