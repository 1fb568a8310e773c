"""Which strings are copied, by the schema."""

from __future__ import annotations

from thinkjson_edge.pipeline.copy_policy import copy_policy
from thinkjson_edge.schema import load_schema

SCHEMA = {
    "type": "object",
    "$defs": {"party": {"type": "object", "properties": {"name": {"type": "string"}}}},
    "properties": {
        "company": {"type": "string"},
        "status": {"type": "string", "enum": ["open", "closed"]},
        "kind": {"const": "receipt"},
        "date": {"type": "string", "format": "date"},
        "code": {"type": "string", "pattern": "^[A-Z]+$"},
        "note": {"type": "string", "x-thinkjson-copy": False},
        "written": {"type": "string", "format": "date", "x-thinkjson-copy": True},
        "buyer": {"$ref": "#/$defs/party"},
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"text": {"type": "string"}, "unit": {"type": ["string", "null"]}},
            },
        },
        "private": {
            "type": "object",
            "x-thinkjson-copy": False,
            "properties": {"text": {"type": "string"}},
        },
        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def test_default_and_opt_outs() -> None:
    copies = copy_policy(load_schema(SCHEMA))
    assert copies(("company",))
    assert copies(("code",))  # a pattern and the copy hold together
    assert not copies(("status",))
    assert not copies(("kind",))
    assert not copies(("date",))
    assert not copies(("note",))
    assert copies(("written",))
    assert copies(("buyer", "name"))
    assert copies(("lines", 3, "text"))
    assert copies(("lines", 0, "unit"))
    assert not copies(("private", "text"))  # off for everything below the property
    assert copies(("tags", "anything"))
