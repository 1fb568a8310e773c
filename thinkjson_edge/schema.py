"""Loading a JSON Schema: parse, check its limits and its metaschema, refuse remote references.

Also the small schema helpers every layer shares: local references, JSON Pointers, and
combining two subschemas that must both hold.

Nothing here ever touches the network: references must point inside the
schema itself (``#/$defs/...``), and the validator's registry refuses to
retrieve anything. What a schema must keep before the metaschema check, the compiler or a
model may run is in ``schema_limits`` (depth, finite numbers, valid text) and
``schema_references`` (references read alike by the compiler and the validator); the
validator matches patterns under a time bound (``schema_patterns``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema
import referencing
import referencing.exceptions
from jsonschema.protocols import Validator

from thinkjson_edge.errors import SchemaError
from thinkjson_edge.files import MB, ReadLimit, read_bounded, sha256_text
from thinkjson_edge.schema_limits import MAX_JSON_DEPTH, check_document, check_positions
from thinkjson_edge.schema_patterns import bounded_validator_class, time_budget
from thinkjson_edge.schema_references import REFERENCE_KEYWORDS, check_references
from thinkjson_edge.schema_walk import walk_schema


@dataclass(frozen=True)
class Schema:
    """A checked JSON Schema and the validator that enforces it, formats included."""

    schema: dict[str, Any]
    source: str = "<schema>"
    validator: Validator = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    @property
    def draft(self) -> str:
        """The draft the schema is checked against, e.g. "Draft202012"."""
        return _draft_name(type(self.validator))

    @functools.cached_property
    def text(self) -> str:
        """The schema as compact JSON, the form the prompt shows the model (serialised once)."""
        return json.dumps(self.schema, ensure_ascii=False, separators=(",", ":"))

    @functools.cached_property
    def sha256(self) -> str:
        """Hash of the schema as the model sees it (formatting changes do not count)."""
        return sha256_text(self.text)

    def errors(self, instance: Any) -> list[jsonschema.ValidationError]:
        """Every way ``instance`` breaks the schema, in a stable order.

        Pattern matching shares one time budget (``schema_patterns``); a value nested too
        deeply for the validator's recursion is one error, not a crash.
        """
        with time_budget():
            try:
                found = list(self.validator.iter_errors(instance))
            except RecursionError:
                return [jsonschema.ValidationError("the value nests too deeply to be checked")]
        return sorted(found, key=lambda e: list(e.absolute_path))


# Only a regular file is read, and no more of it than this (a pipe or a device is refused).
SCHEMA_FILE_LIMIT = ReadLimit("a schema file", "THINKJSON_MAX_SCHEMA_MB", 10 * MB)


def load_schema(source: str | Path | dict[str, Any]) -> Schema:
    """Load a schema from a path or a dict; raise SchemaError with the reason if it is unusable."""
    if isinstance(source, dict):
        return check_schema(source, "<schema>")
    path = Path(source)
    data = read_bounded(path, SCHEMA_FILE_LIMIT, error=SchemaError, noun="schema file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SchemaError(f"{path}: cannot read the schema ({exc})") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(
            f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    except RecursionError as exc:
        raise SchemaError(
            f"{path}: the schema nests objects and arrays more than {MAX_JSON_DEPTH} levels "
            "deep; no usable schema is that deep"
        ) from exc
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        reason = str(exc).split(";")[0]
        raise SchemaError(f"{path}: not usable JSON: {reason}") from exc
    return check_schema(document, str(path))


def check_schema(document: Any, source: str = "<schema>", *, object_root: bool = True) -> Schema:
    """Check a parsed schema and build its validator.

    ``object_root=False`` accepts any root type (for measuring the compiler on test suites);
    extraction always wants an object. Whether the root can only be an object, once
    references and combinations are followed, is decided on its grammar
    (``pipeline.schema_check``); here only a literal ``"type"`` is read.
    """
    if not isinstance(document, dict):
        raise SchemaError(
            f"{source}: a schema must be a JSON object, got {type(document).__name__}"
        )
    check_document(document, source)  # before anything below recurses into it
    root_type = document.get("type")
    if (
        object_root
        and root_type is not None
        and "object" not in (root_type if isinstance(root_type, list) else [root_type])
    ):
        raise SchemaError(
            f"{source}: the root schema has type {root_type!r}; extraction produces one JSON "
            'object, so the root needs "type": "object"'
        )
    validator_class = jsonschema.validators.validator_for(
        document, default=jsonschema.Draft202012Validator
    )
    try:
        validator_class.check_schema(document)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise SchemaError(
            f"{source}: breaks the {_draft_name(validator_class)} metaschema at {where}: "
            f"{exc.message}"
        ) from exc
    except RecursionError as exc:  # the limits keep well below this; a last line of defence
        raise SchemaError(f"{source}: the schema nests too deeply to be checked") from exc
    check_positions(document, source)
    check_references(document, validator_class, source, resolve_local_ref)
    bounded = bounded_validator_class(validator_class)
    registry: referencing.Registry = referencing.Registry(retrieve=_refuse_retrieval)
    validator = bounded(document, registry=registry, format_checker=bounded.FORMAT_CHECKER)
    return Schema(schema=document, source=source, validator=validator)


def iter_references(node: Any) -> Iterator[str]:
    """Every reference string at the schema positions of ``node``, in document order.

    Data (``enum``, ``const``, ``default``, ``examples``) is never read: a ``"$ref"`` key
    there is a value, while a subschema named ``default`` under ``$defs`` is read.
    """
    for position in walk_schema(node):
        if isinstance(position.node, dict):
            for keyword in REFERENCE_KEYWORDS:
                if isinstance(reference := position.node.get(keyword), str):
                    yield reference


def resolve_local_ref(root: Any, ref: str) -> Any:
    """The subschema a local reference names, or SchemaError.

    A reference is a JSON pointer (``#/$defs/item``, percent-encoded as URI fragments are)
    or a plain-name fragment (``#item``) naming a ``$anchor`` (or a draft-7 ``$id: "#item"``).
    """
    if not ref.startswith("#"):
        raise SchemaError(f"reference {ref!r} is not local to the schema")
    fragment = unquote(ref[1:])
    if fragment and not fragment.startswith("/"):
        return _find_anchor(root, fragment, ref)
    node: Any = root
    for part in pointer_parts(fragment):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise SchemaError(f"reference {ref!r} names nothing in the schema")
    return node


def pointer(parts: Iterable[str | int]) -> str:
    """The JSON Pointer (RFC 6901) of a path: ``["items", 0, "a/b"]`` -> ``/items/0/a~1b``."""
    return "".join("/" + escape_pointer_part(str(part)) for part in parts)


def escape_pointer_part(part: str) -> str:
    """One step of a JSON Pointer, with ``~`` and ``/`` escaped."""
    return part.replace("~", "~0").replace("/", "~1")


def pointer_parts(path: str) -> list[str]:
    """The steps of a JSON Pointer, unescaped: ``/a~1b/0`` -> ``["a/b", "0"]``."""
    if not path:
        return []
    return [part.replace("~1", "/").replace("~0", "~") for part in path.split("/")[1:]]


def merge_schemas(base: Any, extra: Any) -> Any:
    """Combine two schemas that must both hold (``allOf``), for the grammar's purposes."""
    if base is False or extra is False:
        return False  # nothing matches both
    if base is True or base == {}:
        return extra
    if extra is True or extra == {}:
        return base
    if not isinstance(base, dict) or not isinstance(extra, dict):
        return base
    merged = {**base, **extra}
    if "properties" in base and "properties" in extra:
        merged["properties"] = {**base["properties"], **extra["properties"]}
    if "required" in base and "required" in extra:
        merged["required"] = list(dict.fromkeys([*base["required"], *extra["required"]]))
    if "type" in base and "type" in extra:
        left = base["type"] if isinstance(base["type"], list) else [base["type"]]
        right = extra["type"] if isinstance(extra["type"], list) else [extra["type"]]
        common = [t for t in left if t in right or (t == "integer" and "number" in right)]
        common += [t for t in right if t == "integer" and "number" in left and t not in common]
        if not common:
            raise SchemaError(f"allOf asks for types {left} and {right} at once: nothing matches")
        merged["type"] = common
    return merged


def _find_anchor(root: Any, name: str, ref: str) -> Any:
    """The subschema carrying ``$anchor: name`` (or ``$id: "#name"``), searched depth first."""
    pending = [root]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if node.get("$anchor") == name or node.get("$id") == f"#{name}":
                return node
            pending.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            pending.extend(reversed(node))
    raise SchemaError(f"reference {ref!r} names no $anchor in the schema")


def _refuse_retrieval(uri: str) -> referencing.Resource:
    raise referencing.exceptions.NoSuchResource(ref=uri)


def _draft_name(validator_class: type) -> str:
    return validator_class.__name__.removesuffix("Validator")
