"""Loading schemas: metaschema checks, local references only, clear reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from thinkjson_edge.errors import RemoteReferenceError, SchemaError
from thinkjson_edge.schema import load_schema, resolve_local_ref

OBJECT = {"type": "object", "properties": {"a": {"type": "string"}}}


def test_loads_and_validates_with_formats(write_json) -> None:
    schema = load_schema(
        write_json(
            "s.json",
            {
                "type": "object",
                "properties": {"day": {"type": "string", "format": "date"}},
            },
        )
    )
    assert schema.errors({"day": "2024-09-17"}) == []
    assert [e.message for e in schema.errors({"day": "17/09/2024"})] == [
        "'17/09/2024' is not a 'date'"
    ]


def test_malformed_json_names_the_position(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"type": "object",\n "properties": {', encoding="utf-8")
    with pytest.raises(SchemaError, match="not valid JSON at line 2"):
        load_schema(path)


def test_metaschema_violation_names_the_draft_and_place(write_json) -> None:
    path = write_json("s.json", {"type": "object", "properties": {"a": {"type": "strng"}}})
    with pytest.raises(SchemaError, match=r"Draft202012 metaschema at properties/a/type"):
        load_schema(path)


def test_draft7_is_checked_against_draft7(write_json) -> None:
    path = write_json(
        "s.json",
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"a": {"type": "string", "minLength": -1}},
        },
    )
    with pytest.raises(SchemaError, match="Draft7 metaschema"):
        load_schema(path)


@pytest.mark.parametrize(
    "ref", ["https://example.com/item.json", "item.json#/defs/x", "file:///etc/passwd"]
)
def test_remote_references_are_refused(write_json, ref: str) -> None:
    path = write_json("s.json", {"type": "object", "properties": {"a": {"$ref": ref}}})
    with pytest.raises(RemoteReferenceError, match="points outside the schema"):
        load_schema(path)


def test_ref_inside_enum_is_data_not_a_reference() -> None:
    schema = load_schema({"type": "object", "properties": {"a": {"enum": [{"$ref": "https://x"}]}}})
    assert schema.errors({"a": {"$ref": "https://x"}}) == []


def test_root_must_be_an_object(write_json) -> None:
    with pytest.raises(SchemaError, match='needs "type": "object"'):
        load_schema(write_json("s.json", {"type": "array"}))
    with pytest.raises(SchemaError, match="must be a JSON object"):
        load_schema(write_json("s.json", ["not", "a", "schema"]))


def test_missing_schema_file(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="no such schema file"):
        load_schema(tmp_path / "absent.json")


def test_resolve_local_ref_follows_pointers_with_escapes() -> None:
    root = {"$defs": {"a/b": {"type": "integer"}, "list": [{"type": "null"}]}}
    assert resolve_local_ref(root, "#/$defs/a~1b") == {"type": "integer"}
    assert resolve_local_ref(root, "#/$defs/list/0") == {"type": "null"}
    assert resolve_local_ref(root, "#") == root
    with pytest.raises(SchemaError, match="names nothing"):
        resolve_local_ref(root, "#/$defs/missing")
