"""Reasoning traces for SFT: the ``<think>`` block that maps each schema field to the text.

A trace names every field the schema asks for, in schema order, and says where
the document gives its value or that it does not; for a value the document
writes differently (a date, a number with separators) it says what it becomes.
The completion a model is trained on is exactly what the runtime's grammar
admits with reasoning on: ``<think>\\n`` + reasoning + ``\\n</think>\\n`` + the JSON.
"""

from __future__ import annotations

import json
from typing import Any

from thinkjson_edge.grammar.compiler import THINK_CLOSE, THINK_OPEN

THINK_END = THINK_CLOSE.strip()


def synthetic_trace(schema: dict[str, Any], gold: dict[str, Any], surfaces: dict[str, str]) -> str:
    """The reasoning for ``gold``: one line per field of the schema (nested ones included)."""
    lines: list[str] = []
    _describe(schema, gold, surfaces, "", lines)
    return "\n".join(lines)


def _describe(
    schema: dict[str, Any], value: Any, surfaces: dict[str, str], path: str, lines: list[str]
) -> None:
    for name, subschema in (schema.get("properties") or {}).items():
        here = f"{path}.{name}" if path else name
        if not isinstance(value, dict) or name not in value:
            lines.append(f"{here}: not in the document, so it is left out.")
            continue
        item = value[name]
        if isinstance(item, dict):
            _describe(subschema, item, surfaces, here, lines)
        elif isinstance(item, list):
            lines.append(f"{here}: the document lists {len(item)} item(s).")
            element_schema = subschema.get("items") or {}
            for index, element in enumerate(item):
                _describe(element_schema, element, surfaces, f"{here}[{index}]", lines)
        else:
            lines.append(_leaf_line(here, item, surfaces.get(here)))


def _leaf_line(path: str, value: Any, surface: str | None) -> str:
    canonical = json.dumps(value, ensure_ascii=False)
    if surface is None:
        return f"{path}: {canonical}."
    if canonical in (surface, json.dumps(surface, ensure_ascii=False)):
        return f"{path}: the document gives {canonical}."
    return f"{path}: the document writes {json.dumps(surface, ensure_ascii=False)}, so {canonical}."


def completion_text(reasoning: str | None, answer: Any, *, think: bool) -> str:
    """The assistant's whole output as the runtime's grammar shapes it."""
    body = json.dumps(answer, ensure_ascii=False)
    if not think:
        return body
    cleaned = (reasoning or "").replace("<", "(").strip()  # the reasoning block cannot hold "<"
    return f"{THINK_OPEN}{cleaned}\n{THINK_CLOSE}{body}"


def split_completion(text: str) -> tuple[str | None, str]:
    """(reasoning, answer) of a completion; reasoning is None without a closed ``<think>`` block.

    The answer is what follows the first ``</think>``, or the whole text when there is none.

    >>> split_completion("<think>\\nfields\\n</think>\\n{}")
    ('fields', '{}')
    >>> split_completion('{"a": 1}')
    (None, '{"a": 1}')
    """
    start = text.lstrip()
    if start.startswith(THINK_OPEN.strip()) and THINK_END in start:
        head, _, answer = start.partition(THINK_END)
        return head.removeprefix(THINK_OPEN.strip()).strip(), answer.strip()
    return None, text.strip()
