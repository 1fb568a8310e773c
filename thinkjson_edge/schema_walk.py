"""Where a JSON Schema holds subschemas, and a walk over exactly those places.

A keyword's value is either a schema (``items``), a list of schemas (``allOf``), a map of
names to schemas (``properties``), or data (``enum``, ``const``, ``default``, ``examples``
and every keyword not named here). Checks that look for references, identifiers or
patterns walk only schema positions: a ``"$ref"`` key inside ``default`` is data, while a
subschema named ``default`` under ``$defs`` is a schema like any other.

The walk is iterative, so a schema nested deeper than Python's recursion limit is walked
(and refused by its caller) rather than crashing the walker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

# Every draft's keywords, from draft 4 to 2020-12: one walker for all of them.
ONE_SCHEMA = (
    "additionalItems",
    "additionalProperties",
    "contains",
    "contentSchema",
    "else",
    "if",
    "items",  # a schema, or in drafts before 2020-12 also a list of schemas
    "not",
    "propertyNames",
    "then",
    "unevaluatedItems",
    "unevaluatedProperties",
)
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
SCHEMA_MAPS = ("$defs", "definitions", "dependentSchemas", "patternProperties", "properties")
# Draft 4-7 "dependencies": a name maps to a schema or to a list of property names.
MIXED_MAPS = ("dependencies",)

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class SchemaPosition:
    """One subschema: where it is (JSON Pointer steps from the root) and how deep."""

    path: Path
    node: Any  # a dict or a bool where the schema is well formed
    depth: int  # subschemas above it; the root is 0
    keyword: str | None = None  # the keyword it sits under; None for the root


def subschemas(schema: Any) -> Iterator[tuple[Path, Any]]:
    """The direct subschemas of one schema, with their steps below it, in document order."""
    if not isinstance(schema, dict):
        return
    for keyword, value in schema.items():
        if keyword in SCHEMA_MAPS or keyword in MIXED_MAPS:
            if isinstance(value, dict):
                for name, sub in value.items():
                    if keyword in SCHEMA_MAPS or isinstance(sub, dict | bool):
                        yield (keyword, name), sub
        elif keyword in SCHEMA_LISTS and isinstance(value, list):
            for index, sub in enumerate(value):
                yield (keyword, index), sub
        elif keyword in ONE_SCHEMA and isinstance(value, dict | bool):
            yield (keyword,), value


def walk_schema(root: Any) -> Iterator[SchemaPosition]:
    """Every subschema of ``root`` (``root`` first), depth first in document order."""
    pending = [SchemaPosition((), root, 0)]
    while pending:
        position = pending.pop()
        yield position
        children = [
            SchemaPosition(position.path + steps, sub, position.depth + 1, str(steps[0]))
            for steps, sub in subschemas(position.node)
        ]
        pending.extend(reversed(children))


P = TypeVar("P")  # how a caller names a place: a JSON Pointer string, or a list of steps
Edge = tuple[Any, P, str]  # the subschema reached, its place, and how (for messages)


@dataclass(frozen=True)
class Loop(Generic[P]):
    """A way from a subschema back to itself: the places on it, and the edge that closes it."""

    chain: list[P]  # from the subschema met again to where the closing edge starts, then it
    start: P  # where the closing edge starts
    how: str  # what the closing edge is ('"$ref" "#"', 'required "child"', ...)


def find_loop(
    starts: Iterable[tuple[Any, P]], edges: Callable[[Any, P], Iterator[Edge[P]]]
) -> Loop[P] | None:
    """The first loop of ``edges`` met from ``starts`` (depth first), or None when none.

    Iterative, so a chain deeper than Python's recursion limit is followed to its end.
    Nodes are told apart by identity, as the same subschema may be reached by many places.
    """
    state: dict[int, str] = {}  # id -> "open" while on the current chain, "done" after
    for node, place in starts:
        if id(node) in state:
            continue
        state[id(node)] = "open"
        trail = [(node, place, edges(node, place))]  # each with its edges not yet followed
        while trail:
            node, place, pending = trail[-1]
            step = next(pending, None)
            if step is None:
                state[id(node)] = "done"
                trail.pop()
                continue
            target, target_place, how = step
            if state.get(id(target)) == "open":
                first = next(i for i, entry in enumerate(trail) if entry[0] is target)
                chain = [entry[1] for entry in trail[first:]] + [target_place]
                return Loop(chain, place, how)
            if id(target) not in state:
                state[id(target)] = "open"
                trail.append((target, target_place, edges(target, target_place)))
    return None
