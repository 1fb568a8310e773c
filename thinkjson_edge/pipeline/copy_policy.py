"""Which string values are copied from the document, by the schema.

By default every string is copied, except where the schema supplies or reshapes the
value: ``enum`` and ``const`` (the schema's own words) and ``format`` (a date may be
normalised). ``"x-thinkjson-copy": false`` turns copying off for a property and
everything below it; ``"x-thinkjson-copy": true`` turns it on for a ``format``
string. Numbers, booleans and keys are never copied.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from thinkjson_edge.pipeline.findings import effective_schema
from thinkjson_edge.schema import Schema

COPY_KEYWORD = "x-thinkjson-copy"
_SCHEMA_WORDS = ("enum", "const")  # the value comes from the schema, not the document

PathParts = tuple[str | int, ...]


def copy_policy(schema: Schema) -> Callable[[PathParts], bool]:
    """A function saying, for the path of a string value, whether it is copied."""
    root = schema.schema

    def copies(path: PathParts) -> bool:
        node: Any = root
        for part in path:
            node = effective_schema(node, [] if isinstance(part, int) else {}, root)
            if node.get(COPY_KEYWORD) is False:
                return False
            node = _child(node, part)
        node = effective_schema(node, "", root)
        switch = node.get(COPY_KEYWORD)
        if switch is False or any(word in node for word in _SCHEMA_WORDS):
            return False
        return switch is True or "format" not in node

    return copies


def _child(node: dict[str, Any], part: str | int) -> Any:
    """The subschema of an array item or an object member."""
    if isinstance(part, int):
        prefix = node.get("prefixItems") or []
        return prefix[part] if part < len(prefix) else node.get("items", {})
    properties = node.get("properties") or {}
    if part in properties:
        return properties[part]
    for pattern, subschema in (node.get("patternProperties") or {}).items():
        try:
            if re.search(pattern, part):
                return subschema
        except re.error:
            continue
    extra = node.get("additionalProperties", {})
    return extra if isinstance(extra, dict) else {}
