"""The limits a schema must keep before anything recursive or any model runs.

Two passes, both iterative, each refusing with ``SchemaError`` that names the keyword and
the JSON Pointer of the place:

* ``check_document`` sees the parsed JSON as data, before the metaschema check (whose
  validator recurses): how deep it nests, NaN and Infinity, lone surrogates, and how deeply
  a ``pattern`` nests its groups (Python's ``re`` recurses on them in that same check).
* ``check_positions`` sees the schema's subschemas once the metaschema has passed: an
  empty ``enum``, minimums above what llama.cpp's grammar can repeat, and patterns the
  validator cannot compile.

References are checked in ``schema_references``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, NoReturn

from thinkjson_edge.errors import SchemaError
from thinkjson_edge.schema_patterns import compiles
from thinkjson_edge.schema_walk import SchemaPosition, walk_schema

MAX_JSON_DEPTH = 160
"""Objects and arrays inside each other anywhere in the file, data values included."""
MAX_SCHEMA_DEPTH = 64
"""Subschemas inside each other, counted again through each ``$ref`` that is followed."""
MAX_PATTERN_NESTING = 64
"""Groups inside each other in one ``pattern`` (or ``patternProperties`` name)."""
MAX_REPEAT = 2000
"""The largest ``minLength`` or ``minItems``: llama.cpp refuses a longer repetition."""

_BOUNDED_MINIMUMS = ("minLength", "minItems")

Steps = tuple[str | int, ...]


def where(path: Steps) -> str:
    """A JSON Pointer for messages: printable, and shortened when very long."""
    if not path:
        return "(root)"
    shown = list(path)
    if len(shown) > 16:
        shown = [*shown[:8], f"... {len(path) - 12} steps ...", *shown[-4:]]
    text = "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in shown)
    return printable(text)


def printable(text: str) -> str:
    """``text`` with lone surrogates written as ``\\udXXX``, so it can be printed."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# -- the document as data -------------------------------------------------------------------


def check_document(document: Any, source: str) -> None:
    """Refuse JSON or subschemas that nest too deeply, NaN or Infinity, lone surrogates, and
    patterns that nest their groups too deeply."""
    pending: list[tuple[Any, Steps]] = [(document, ())]
    while pending:
        value, path = pending.pop()
        if isinstance(value, dict | list):
            if len(path) >= MAX_JSON_DEPTH:
                raise SchemaError(
                    f"{source}: the schema nests objects and arrays more than {MAX_JSON_DEPTH} "
                    f'levels deep at {where(path)} (under "{_keyword(path)}"); no usable '
                    "schema is that deep"
                )
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _check_text(key, path, source, name=True)
                pending.append((item, (*path, key)))
        elif isinstance(value, float) and not math.isfinite(value):
            written = "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
            raise SchemaError(
                f'{source}: "{_keyword(path)}" at {where(path)} is {written}; JSON has no NaN '
                "or Infinity, so write a number there"
            )
        elif isinstance(value, str):
            _check_text(value, path, source, name=False)
    for position in walk_schema(document):
        if position.depth > MAX_SCHEMA_DEPTH:
            too_deep(position.path, position.keyword, source)
        for path, pattern in _patterns(position):
            _check_pattern_nesting(pattern, path, source)


def _check_text(text: str, path: Steps, source: str, *, name: bool) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        what = f'the name "{printable(text)}" in' if name else "the string at"
        raise SchemaError(
            f'{source}: {what} {where(path)} (under "{_keyword(path)}") holds a lone '
            "surrogate escape, which is not a character: it cannot be written as UTF-8, "
            "nor by the grammar"
        ) from None


def _keyword(path: Steps) -> str:
    """The nearest name on the path: the keyword (or property name) a value sits under."""
    return next((str(step) for step in reversed(path) if isinstance(step, str)), "(root)")


def _patterns(position: SchemaPosition) -> Iterator[tuple[Steps, str]]:
    node = position.node
    if not isinstance(node, dict):
        return
    if isinstance(node.get("pattern"), str):
        yield (*position.path, "pattern"), node["pattern"]
    if isinstance(node.get("patternProperties"), dict):
        for name in node["patternProperties"]:
            yield (*position.path, "patternProperties", name), name


def _check_pattern_nesting(pattern: str, path: Steps, source: str) -> None:
    depth = deepest = 0
    class_start: int | None = None  # where the character class being read opened
    escaped = False
    for index, char in enumerate(pattern):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif class_start is not None:
            # "]" first in a class ("[]" or "[^]") is a literal, not its end
            first = index == class_start + 1 or (
                index == class_start + 2 and pattern[class_start + 1] == "^"
            )
            if char == "]" and not first:
                class_start = None
        elif char == "[":
            class_start = index
        elif char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth = max(depth - 1, 0)
    if deepest > MAX_PATTERN_NESTING:
        raise SchemaError(
            f"{source}: the pattern at {where(path)} nests groups {deepest} deep; at most "
            f"{MAX_PATTERN_NESTING} are allowed"
        )


# -- the schema's subschemas ----------------------------------------------------------------


def check_positions(document: dict[str, Any], source: str) -> None:
    """Refuse values at schema positions that the validator or llama.cpp would fail on."""
    for position in walk_schema(document):
        node = position.node
        if not isinstance(node, dict):
            continue
        for path, pattern in _patterns(position):
            if (why := compiles(pattern)) is not None:
                raise SchemaError(
                    f"{source}: the pattern at {where(path)} cannot be used for validation: "
                    f"{printable(why)}"
                )
        if node.get("enum") == []:
            raise SchemaError(
                f'{source}: "enum" at {where(position.path)} is empty, so no value can match; '
                "list the allowed values, or remove the keyword"
            )
        for keyword in _BOUNDED_MINIMUMS:
            value = node.get(keyword)
            if isinstance(value, int | float) and value > MAX_REPEAT:
                raise SchemaError(
                    f'{source}: "{keyword}": {value} at {where(position.path)} is above '
                    f"{MAX_REPEAT}, the longest repetition llama.cpp's grammar can hold"
                )


def too_deep(path: Steps, keyword: str | None, source: str, through_refs: bool = False) -> NoReturn:
    """Refuse a subschema nested deeper than ``MAX_SCHEMA_DEPTH``."""
    counted = ", counting each $ref followed on the way" if through_refs else ""
    raise SchemaError(
        f"{source}: subschemas nest more than {MAX_SCHEMA_DEPTH} levels deep at "
        f'{where(path)} (under "{keyword}"{counted}); no usable schema is that deep'
    )
