"""How a schema's references are read: alike by the compiler and the validator, or refused.

Checked once the metaschema has passed, before the compiler or any model runs, each
refusal a ``SchemaError`` naming the keyword and the JSON Pointer of the place:

* a reference that points outside the schema (nothing is ever fetched);
* a reference the validator reads otherwise than the compiler: the validator reads
  ``#...`` inside a nested ``$id`` against that ``$id``, the compiler always against the
  root, and an ``$anchor`` under a nested ``$id`` belongs to that ``$id`` alone;
* subschemas nested deeper than ``MAX_SCHEMA_DEPTH`` once references are followed, as
  the compiler follows them;
* a loop of references and combinations (``allOf``, ``anyOf``, ``not``...) that comes back
  to where it started before any value is written: llama.cpp refuses its grammar as left
  recursion, and the validator would recurse until Python stops it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import referencing
import referencing.exceptions
import referencing.jsonschema

from thinkjson_edge.errors import RemoteReferenceError, SchemaError
from thinkjson_edge.schema_limits import MAX_SCHEMA_DEPTH, Steps, printable, too_deep, where
from thinkjson_edge.schema_walk import find_loop, subschemas, walk_schema

REFERENCE_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
_UNRESOLVABLE = (
    referencing.exceptions.Unresolvable,
    referencing.exceptions.NoSuchResource,
    referencing.exceptions.Unretrievable,
)


def check_references(
    document: dict[str, Any],
    validator_class: type,
    source: str,
    resolve_local: Callable[[Any, str], Any],
) -> None:
    """Refuse references that would fail, or mean two things, after the model ran.

    ``resolve_local`` is how the compiler reads a local reference (``schema.resolve_local_ref``).
    """
    for position in walk_schema(document):
        if isinstance(position.node, dict):
            _check_remote(position.node, position.path, source)
    _check_resolution(document, validator_class, source, resolve_local)
    _check_depth_through_references(document, source, resolve_local)
    _check_cycles_in_place(document, source, resolve_local)


def _check_remote(node: dict[str, Any], path: Steps, source: str) -> None:
    for keyword in REFERENCE_KEYWORDS:
        reference = node.get(keyword)
        if isinstance(reference, str) and not reference.startswith("#"):
            raise RemoteReferenceError(
                f'{source}: "{keyword}" "{printable(reference)}" at {where(path)} points '
                "outside the schema; nothing is fetched at run time, so copy the referenced "
                'definition into "$defs" and refer to it as "#/$defs/NAME"'
            )


def _check_resolution(
    document: dict[str, Any],
    validator_class: type,
    source: str,
    resolve_local: Callable[[Any, str], Any],
) -> None:
    """Each reference names the same subschema for the validator as for the compiler.

    The validator reads ``#...`` inside a nested ``$id`` against that ``$id``; the compiler
    always reads it against the root. Where the two differ, or the validator finds nothing,
    the schema is refused here instead of failing after generation.
    """
    dialect = getattr(validator_class, "META_SCHEMA", {})
    specification = referencing.jsonschema.specification_with(
        dialect.get("$id") or dialect.get("id") or "", default=referencing.Specification.OPAQUE
    )
    registry: referencing.Registry = referencing.Registry(retrieve=_refuse_retrieval)
    root = registry.resolver_with_root(specification.create_resource(document))
    # (node, path, the validator's resolver there, the nearest nested $id and its path)
    pending: list[tuple[Any, Steps, referencing.Resolver, _Scope | None]] = [
        (document, (), root, None)
    ]
    while pending:
        node, path, resolver, scope = pending.pop()
        if not isinstance(node, dict):
            continue
        identifier = specification.id_of(node)
        if path and identifier is not None:
            resolver = resolver.in_subresource(specification.create_resource(node))
            scope = _Scope(path, identifier)
        for keyword in REFERENCE_KEYWORDS:
            reference = node.get(keyword)
            if isinstance(reference, str):
                for_validator = _lookup(_contents, resolver, reference)
                for_compiler = _lookup(resolve_local, document, reference)
                _Reference(keyword, reference, path, scope).check(
                    for_validator, for_compiler, source
                )
        for steps, sub in subschemas(node):
            pending.append((sub, path + steps, resolver, scope))


@dataclass(frozen=True)
class _Scope:
    path: Steps
    identifier: str


@dataclass(frozen=True)
class _Reference:
    keyword: str
    value: str
    path: Steps
    scope: _Scope | None

    def check(self, for_validator: Any, for_compiler: Any, source: str) -> None:
        """Refuse a reference the validator cannot follow, or reads unlike the compiler."""
        at = f'"{self.keyword}" "{printable(self.value)}" at {where(self.path)}'
        # The compiler follows "$ref" only; the dynamic references are the validator's.
        differs = self.keyword == "$ref" and for_compiler is not for_validator
        if differs and self.scope is not None:
            raise SchemaError(
                f'{source}: {at} lies inside the nested "$id" '
                f'"{printable(self.scope.identifier)}" (at {where(self.scope.path)}), against '
                "which the validator reads it, while the grammar reads it against the root; "
                'remove the nested "$id", or refer from the root (e.g. "#/$defs/NAME")'
            )
        if for_validator is _NOTHING and for_compiler is not _NOTHING:
            raise SchemaError(
                f"{source}: {at} names nothing the validator can find: an anchor inside a "
                'nested "$id" belongs to that "$id" alone; refer to it by JSON Pointer'
            )
        if for_validator is _NOTHING:
            raise SchemaError(f"{source}: {at} names nothing in the schema")
        if differs:
            raise SchemaError(
                f"{source}: {at} names one subschema for the validator and another (or none) "
                'for the grammar; use a JSON Pointer ("#/$defs/NAME") or a unique "$anchor"'
            )
        if not isinstance(for_validator, dict | bool):
            kind = type(for_validator).__name__
            raise SchemaError(f"{source}: {at} names a {kind}, not a schema")


_NOTHING = object()


def _lookup(find: Callable[[Any, str], Any], where_from: Any, reference: str) -> Any:
    """What ``find`` makes of ``reference``, or ``_NOTHING`` where it finds nothing."""
    try:
        return find(where_from, reference)
    except (*_UNRESOLVABLE, SchemaError):
        return _NOTHING


def _contents(resolver: referencing.Resolver, reference: str) -> Any:
    return resolver.lookup(reference).contents


def _check_depth_through_references(
    document: dict[str, Any], source: str, resolve_local: Callable[[Any, str], Any]
) -> None:
    """Nesting as the compiler meets it: from the root, each ``$ref`` followed once.

    Definitions are reached only through references, in document order, as the compiler
    reaches them; the compiler recurses once per level counted here.
    """
    followed: set[int] = set()
    pending: list[tuple[Any, Steps, int, str | None]] = [(document, (), 0, None)]
    while pending:
        node, path, depth, keyword = pending.pop()
        if depth > MAX_SCHEMA_DEPTH:
            too_deep(path, keyword, source, through_refs=True)
        if not isinstance(node, dict):
            continue
        children = [
            (sub, path + steps, depth + 1, str(steps[0]))
            for steps, sub in subschemas(node)
            if steps[0] not in ("$defs", "definitions")
        ]
        reference = node.get("$ref")
        if isinstance(reference, str):
            target = resolve_local(document, reference)  # resolvable: checked before
            if id(target) not in followed:
                followed.add(id(target))
                children.insert(0, (target, path, depth + 1, "$ref"))
        pending.extend(reversed(children))


# Keywords whose subschemas apply to the same value as their parent: a loop through these
# alone never writes anything (llama.cpp refuses it as left recursion; the validator recurses
# until Python stops it).
_IN_PLACE_LISTS = ("allOf", "anyOf", "oneOf")
_IN_PLACE = ("not", "if", "then", "else")


def _check_cycles_in_place(
    document: dict[str, Any], source: str, resolve_local: Callable[[Any, str], Any]
) -> None:
    """Refuse a subschema that comes back to itself through references and combinations."""
    starts = ((start.node, start.path) for start in walk_schema(document))
    loop = find_loop(starts, lambda node, path: _in_place(document, node, path, resolve_local))
    if loop is not None:
        raise SchemaError(
            f"{source}: {loop.how} at {where(loop.start)} leads back to {where(loop.chain[-1])} "
            "before any value is written, a loop with no way out; break the loop, "
            "or move the reference under a property or an array's items"
        )


def _in_place(
    document: dict[str, Any], node: Any, path: Steps, resolve_local: Callable[[Any, str], Any]
) -> Iterator[tuple[Any, Steps, str]]:
    """The subschemas that apply to the same value as ``node``, and how each is reached."""
    if not isinstance(node, dict):
        return
    for keyword in REFERENCE_KEYWORDS:
        reference = node.get(keyword)
        if isinstance(reference, str) and reference.startswith("#"):
            target = _lookup(resolve_local, document, reference)
            if target is not _NOTHING:
                yield target, _pointer_steps(reference), f'"{keyword}" "{printable(reference)}"'
    for keyword in _IN_PLACE_LISTS:
        if isinstance(node.get(keyword), list):
            for index, sub in enumerate(node[keyword]):
                yield sub, (*path, keyword, index), f'"{keyword}"'
    for keyword in _IN_PLACE:
        if isinstance(node.get(keyword), dict):
            yield node[keyword], (*path, keyword), f'"{keyword}"'


def _pointer_steps(reference: str) -> Steps:
    """The steps a local JSON Pointer reference names (an anchor is shown as its name)."""
    fragment = reference[1:]
    if not fragment.startswith("/"):
        return (fragment,) if fragment else ()
    return tuple(part.replace("~1", "/").replace("~0", "~") for part in fragment.split("/")[1:])


def _refuse_retrieval(uri: str) -> referencing.Resource:
    raise referencing.exceptions.NoSuchResource(ref=uri)
