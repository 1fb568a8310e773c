"""The one check a schema passes before any model work: usable, or refused with exit 3.

``schema check``, ``extract``, ``batch``, ``eval`` and ``tui`` all load their schema with
``load_usable_schema``, and the extractor takes its grammar from ``usable_grammar``. A
schema is usable when:

* ``load_schema`` accepts it: its limits (``schema_limits``), its metaschema, references
  that the compiler and the validator read alike;
* it compiles to a grammar whose root is always an object, that has a finite text at all
  (a required property that refers back to its own object has none), and whose shortest
  object is at most ``MAX_SHORTEST_OBJECT`` characters;
* llama.cpp loads that grammar exactly as generation will (``engine.grammar_check``).

Each refusal is a ``SchemaError`` naming the keyword and the place in the schema.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from thinkjson_edge.engine.grammar_check import grammar_refusal
from thinkjson_edge.errors import SchemaError
from thinkjson_edge.grammar.compiler import CompiledGrammar, GrammarLimits, compile_schema
from thinkjson_edge.grammar.shape import analyse
from thinkjson_edge.schema import Schema, load_schema, pointer, resolve_local_ref
from thinkjson_edge.schema_walk import find_loop

MAX_SHORTEST_OBJECT = 32_768
"""Characters in the shortest object a schema admits: more never fits an 8,192-token context."""

_ROOT_KEYWORDS = ("$ref", "allOf", "anyOf", "oneOf", "const", "enum", "type")
_CACHED = 16
_usable: OrderedDict[tuple[str, GrammarLimits], CompiledGrammar] = OrderedDict()
_usable_lock = threading.Lock()  # the interface extracts in a worker thread


def load_usable_schema(
    source: str | Path | dict[str, Any] | Schema, limits: GrammarLimits | None = None
) -> Schema:
    """Load and check a schema for extraction; SchemaError says why one is unusable."""
    schema = source if isinstance(source, Schema) else load_schema(source)
    usable_grammar(schema, limits)
    return schema


def usable_grammar(schema: Schema, limits: GrammarLimits | None = None) -> CompiledGrammar:
    """The schema's grammar, once it is known that llama.cpp loads it and it can finish."""
    key = (schema.text, limits or GrammarLimits())
    with _usable_lock:
        if key in _usable:
            _usable.move_to_end(key)
            return _usable[key]
    compiled = compile_schema(schema.schema, key[1])
    _check_shape(schema, compiled)
    refusal = grammar_refusal(compiled.gbnf(think=True))
    if refusal is not None:
        raise SchemaError(
            f"{schema.source}: llama.cpp cannot load the grammar compiled from the schema: "
            f"{refusal}"
        )
    with _usable_lock:
        _usable[key] = compiled
        if len(_usable) > _CACHED:
            _usable.popitem(last=False)
    return compiled


def _check_shape(schema: Schema, compiled: CompiledGrammar) -> None:
    shape = analyse(compiled.rules)
    shortest = shape.shortest("json")
    if shortest == math.inf:
        raise SchemaError(
            f"{schema.source}: no finite object matches the schema: "
            f"{_endless_requirement(schema.schema)}; make a property on that loop optional, "
            'or let it be null ("anyOf" with {"type": "null"})'
        )
    if shape.may_start_otherwise("json", "{"):
        used = [f'"{k}"' for k in _ROOT_KEYWORDS if k in schema.schema]
        through = f"through its {', '.join(used)}" if used else 'it names no "type"'
        raise SchemaError(
            f"{schema.source}: the root schema admits values that are not objects ({through}); "
            'extraction produces one JSON object, so give the root "type": "object"'
        )
    if shortest > MAX_SHORTEST_OBJECT:
        raise SchemaError(
            f"{schema.source}: the shortest object the schema admits has {shortest:,} "
            f"characters, more than the {MAX_SHORTEST_OBJECT:,} any extraction can write; "
            'lower its "minItems" or "minLength"'
        )


def _endless_requirement(root: dict[str, Any]) -> str:
    """Where the schema requires itself again, as a chain of places, for the message."""
    loop = find_loop([(root, "")], lambda node, place: _required_parts(root, node, place))
    if loop is None:
        return "a required property refers back to an object that requires it"
    chain = [place or "(root)" for place in loop.chain]
    return (
        f"{loop.how} at {loop.start or '(root)'} requires {chain[-1]} again ({' -> '.join(chain)})"
    )


def _required_parts(root: dict[str, Any], node: Any, where: str) -> Iterator[tuple[Any, str, str]]:
    """The subschemas every value of ``node`` must contain a value of (or is itself)."""
    if not isinstance(node, dict):
        return
    reference = node.get("$ref")
    if isinstance(reference, str):
        try:
            target = resolve_local_ref(root, reference)
        except SchemaError:
            target = None
        if target is not None:
            yield target, reference.removeprefix("#"), f'"$ref" "{reference}"'
    for index, part in enumerate(node.get("allOf") or []):
        yield part, f"{where}/allOf/{index}", '"allOf"'
    for keyword in ("anyOf", "oneOf"):
        branches = node.get(keyword) or []
        if len(branches) == 1:
            yield branches[0], f"{where}/{keyword}/0", f'"{keyword}"'
    properties = node.get("properties") or {}
    for name in node.get("required") or []:
        if name in properties:
            place = where + pointer(["properties", name])
            yield properties[name], place, f'required "{name}"'
        elif isinstance(node.get("additionalProperties"), dict):
            yield (
                node["additionalProperties"],
                f"{where}/additionalProperties",
                f'required "{name}"',
            )
    least = node.get("minItems", 0)
    if isinstance(least, int | float) and least >= 1:
        prefix = node.get("prefixItems") or []
        for index, part in enumerate(prefix[: int(least)]):
            yield part, f"{where}/prefixItems/{index}", '"minItems"'
        if least > len(prefix) and isinstance(node.get("items"), dict):
            yield node["items"], f"{where}/items", '"minItems"'
