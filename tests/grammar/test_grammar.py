"""What the compiled grammar admits, checked through llama.cpp's own grammar engine.

``Engine.grammar_accepts`` feeds a JSON text's tokens through the same grammar sampler
generation uses; no text is generated, so these tests are fast and exact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from thinkjson_edge import Extractor
from thinkjson_edge.grammar.compiler import GrammarLimits, compile_schema

pytestmark = pytest.mark.model

SROIE = Path(__file__).parent.parent / "fixtures" / "sroie"

ITEM = {"type": "object", "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
        "required": ["sku"]}  # fmt: skip

# (name, schema, JSON texts that must be accepted, JSON texts that must be rejected)
CASES: list[tuple[str, dict[str, Any], list[Any], list[Any]]] = [
    (
        "optional properties stay in declared order",
        {
            "type": "object",
            "properties": {
                "a": {"type": "string"},
                "b": {"type": "integer"},
                "c": {"type": "boolean"},
            },
            "required": ["b"],
        },
        ['{"a":"x","b":1,"c":true}', '{"b":1}', '{"a":"x","b":1}', '{"b":1,"c":false}'],
        ['{"b":1,"a":"x"}', '{"a":"x"}', "{}", '{"a":"x","b":1,"c":true,"d":1}', '{"b":1,}'],
    ),
    (
        "all optional: the empty object too",
        {"type": "object", "properties": {"a": {"type": "null"}, "b": {"type": "number"}}},
        ["{}", '{"a":null}', '{"b":-1.5e3}', '{"a":null,"b":0}'],
        ['{"b":01}', '{"b":1.}', '{"a":null,}'],
    ),
    (
        "enum and const of any JSON value",
        {
            "type": "object",
            "properties": {"e": {"enum": ["red", 2, None, {"k": [1]}]}, "c": {"const": "fixed"}},
            "required": ["e", "c"],
        },
        [
            '{"e":"red","c":"fixed"}',
            '{"e":2,"c":"fixed"}',
            '{"e":null,"c":"fixed"}',
            '{"e":{"k":[1]},"c":"fixed"}',
        ],
        ['{"e":"blue","c":"fixed"}', '{"e":"red","c":"other"}'],
    ),
    (
        "arrays: items, bounds, arrays of objects through $defs",
        {
            "type": "object",
            "properties": {
                "tags": {
                    "type": "array",
                    "items": {"type": "string"},
                    "minItems": 1,
                    "maxItems": 3,
                },
                "lines": {"type": "array", "items": {"$ref": "#/$defs/item"}},
            },
            "required": ["tags"],
            "$defs": {"item": ITEM},
        },
        [
            '{"tags":["a"]}',
            '{"tags":["a","b","c"]}',
            '{"tags":["a"],"lines":[]}',
            '{"tags":["a"],"lines":[{"sku":"1"},{"sku":"2","qty":3}]}',
        ],
        ['{"tags":[]}', '{"tags":["a","b","c","d"]}', '{"tags":["a"],"lines":[{"qty":3}]}'],
    ),
    (
        "prefixItems as a tuple",
        {
            "type": "object",
            "properties": {
                "p": {
                    "type": "array",
                    "prefixItems": [{"type": "string"}, {"type": "integer"}],
                    "items": False,
                }
            },
            "required": ["p"],
        },
        ['{"p":["a",1]}'],
        ['{"p":[1,"a"]}', '{"p":["a",1,2]}'],
    ),
    (
        "recursive references",
        {
            "type": "object",
            "properties": {"root": {"$ref": "#/definitions/node"}},
            "required": ["root"],
            "definitions": {
                "node": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "children": {"type": "array", "items": {"$ref": "#/definitions/node"}},
                    },
                    "required": ["name"],
                }
            },
        },
        ['{"root":{"name":"a"}}', '{"root":{"name":"a","children":[{"name":"b","children":[]}]}}'],
        ['{"root":{"children":[]}}', '{"root":{"name":"a","children":[{}]}}'],
    ),
    (
        "anyOf and oneOf mixed with properties, type lists",
        {
            "type": "object",
            "properties": {"kind": {"type": "string"}},
            "required": ["kind"],
            "anyOf": [
                {"properties": {"n": {"type": "integer"}}, "required": ["n"]},
                {"properties": {"s": {"type": ["string", "null"]}}, "required": ["s"]},
            ],
        },
        ['{"kind":"x","n":1}', '{"kind":"x","s":"t"}', '{"kind":"x","s":null}'],
        ['{"kind":"x"}', '{"kind":"x","n":"1"}', '{"n":1}'],
    ),
    (
        "allOf merged",
        {
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"properties": {"b": {"type": "integer"}}, "required": ["b"]},
            ]
        },
        ['{"a":"x","b":1}'],
        ['{"a":"x"}', '{"b":1}'],
    ),
    (
        "string lengths, formats and escapes",
        {
            "type": "object",
            "properties": {
                "code": {"type": "string", "minLength": 2, "maxLength": 3},
                "day": {"type": "string", "format": "date"},
                "id": {"type": "string", "format": "uuid"},
                "text": {"type": "string"},
            },
            "required": ["code"],
        },
        [
            '{"code":"ab"}',
            '{"code":"abc","day":"2024-02-29"}',
            '{"code":"ab","id":"123e4567-e89b-12d3-a456-426614174000"}',
            '{"code":"ab","text":"line\\nbreak \\"quoted\\" \\u00e9 é"}',
        ],
        [
            '{"code":"a"}',
            '{"code":"abcd"}',
            '{"code":"ab","day":"2024-13-01"}',
            '{"code":"ab","text":"raw\nnewline"}',
            '{"code":"ab","text":"bad \\x escape"}',
        ],
    ),
    (
        "integer bounds, exclusive bounds and negative ranges",
        {
            "type": "object",
            "properties": {
                "n": {"type": "integer", "minimum": -20, "exclusiveMaximum": 300},
                "m": {"type": "integer", "exclusiveMinimum": 0},
            },
            "required": ["n"],
        },
        ['{"n":-20}', '{"n":0}', '{"n":299}', '{"n":7,"m":1}', '{"n":7,"m":123456789}'],
        ['{"n":-21}', '{"n":300}', '{"n":07}', '{"n":-0}', '{"n":1,"m":0}', '{"n":1,"m":-3}'],
    ),
    (
        "formats: ipv4, ipv6, email, uri",
        {
            "type": "object",
            "properties": {
                "v4": {"type": "string", "format": "ipv4"},
                "v6": {"type": "string", "format": "ipv6"},
                "mail": {"type": "string", "format": "email"},
                "link": {"type": "string", "format": "uri"},
            },
        },
        [
            '{"v4":"192.168.0.1"}',
            '{"v6":"fe80::1:2"}',
            '{"v6":"::ffff:10.0.0.1"}',
            '{"mail":"qa.lead@site.example"}',
            '{"link":"https://example.com/a?b=1#c"}',
        ],
        [
            '{"v4":"256.1.1.1"}',
            '{"v4":"01.2.3.4"}',
            '{"v6":"1::2::3"}',
            '{"mail":"no-at-sign"}',
            '{"link":"no scheme"}',
            '{"link":"https://a b"}',
        ],
    ),
    (
        "patterns in the grammar, and a pattern beyond it left to the validator",
        {
            "type": "object",
            "properties": {
                "batch": {"type": "string", "pattern": "^[A-Z]{3}-\\d{2}-\\d{4}$"},
                "note": {"type": "string", "pattern": "(?=x)x"},
            },
            "required": ["batch"],
        },
        ['{"batch":"SAL-24-0917"}', '{"batch":"SAL-24-0917","note":"anything"}'],
        ['{"batch":"sal-24-0917"}', '{"batch":"SAL-24-917"}', '{"batch":"SAL-24-09170"}'],
    ),
    (
        "patternProperties and an additionalProperties schema: undeclared keys after declared",
        {
            "type": "object",
            "properties": {"lot": {"type": "string"}},
            "patternProperties": {"^temp_[0-9]+$": {"type": "number"}},
            "additionalProperties": {"type": "boolean"},
            "required": ["lot"],
        },
        [
            '{"lot":"A"}',
            '{"lot":"A","temp_1":36.6}',
            '{"lot":"A","temp_1":36.6,"passed":true,"temp_22":-4}',
        ],
        ['{"lot":"A","temp_x":1.5}', '{"lot":"A","temp_1":"hot"}', '{"temp_1":1,"lot":"A"}'],
    ),
    (
        "patternProperties alone: only matching keys, all optional",
        {
            "type": "object",
            "patternProperties": {"^[A-Z]{2}$": {"type": "integer"}},
            "additionalProperties": False,
        },
        ["{}", '{"DE":1}', '{"DE":1,"FR":2}'],
        ['{"de":1}', '{"DE":"1"}', '{"DEU":1}'],
    ),
    (
        "an object naming no property is a free map; one naming some writes only those",
        {
            "type": "object",
            "properties": {"meta": {"type": "object"}, "id": {"type": "string"}},
        },
        ['{"meta":{"any":[1,{"x":null}]},"id":"7"}', '{"meta":{}}', "{}"],
        ['{"id":"7","extra":1}', '{"meta":{"a":1},"id":"7","more":true}'],
    ),
    (
        "a subschema without type takes the type its keywords imply",
        {
            "type": "object",
            "properties": {"code": {"minLength": 2}, "n": {"minimum": 1}},
        },
        ['{"code":"AB"}', '{"n":3}', '{"n":2.5}'],
        ['{"code":12}', '{"n":"3"}', '{"code":"A"}'],
    ),
]

PERMISSIVE_CASES: list[tuple[str, dict[str, Any], list[Any], list[Any]]] = [
    (
        "permissive: undeclared properties where additionalProperties is absent or true",
        {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
        ['{"a":1}', '{"a":1,"b":"x","c":[true]}'],
        ['{"b":"x"}', '{"a":"1"}'],
    ),
    (
        "permissive: a subschema without type admits every type, each with its own keywords",
        {"type": "object", "properties": {"code": {"minLength": 2}}, "required": ["code"]},
        ['{"code":"AB"}', '{"code":12}', '{"code":null}', '{"code":[1]}'],
        ['{"code":"A"}'],
    ),
]


@pytest.mark.parametrize(("name", "schema", "valid", "invalid"), CASES, ids=[c[0] for c in CASES])
def test_grammar_admits_valid_and_refuses_invalid(
    extractor: Extractor, name: str, schema: dict[str, Any], valid: list[str], invalid: list[str]
) -> None:
    engine = extractor.engine
    gbnf = compile_schema(schema).gbnf(think=False)
    assert [t for t in valid if not engine.grammar_accepts(gbnf, t)] == []
    assert [t for t in invalid if engine.grammar_accepts(gbnf, t)] == []


@pytest.mark.parametrize(
    ("name", "schema", "valid", "invalid"), PERMISSIVE_CASES, ids=[c[0] for c in PERMISSIVE_CASES]
)
def test_permissive_grammar_admits_what_json_schema_admits(
    extractor: Extractor, name: str, schema: dict[str, Any], valid: list[str], invalid: list[str]
) -> None:
    engine = extractor.engine
    gbnf = compile_schema(schema, GrammarLimits(permissive=True)).gbnf(think=False)
    assert [t for t in valid if not engine.grammar_accepts(gbnf, t)] == []
    assert [t for t in invalid if engine.grammar_accepts(gbnf, t)] == []


def test_default_bounds_cut_runaway_values(extractor: Extractor) -> None:
    schema = {"type": "object", "properties": {"s": {"type": "string"}}, "required": ["s"]}
    gbnf = compile_schema(schema, GrammarLimits(max_string_length=8)).gbnf(think=False)
    assert extractor.engine.grammar_accepts(gbnf, '{"s":"12345678"}')
    assert not extractor.engine.grammar_accepts(gbnf, '{"s":"123456789"}')


def test_gold_receipts_are_admitted_with_and_without_reasoning(extractor: Extractor) -> None:
    compiled = compile_schema(json.loads((SROIE / "schema.json").read_text()))
    for gold in sorted(SROIE.glob("[0-9]*.json")):
        text = json.dumps(json.loads(gold.read_text()), ensure_ascii=False)
        assert extractor.engine.grammar_accepts(compiled.gbnf(think=False), text), gold.name
        reasoned = f"<think>\nThe company is on the first line.</think>\n{text}"
        assert extractor.engine.grammar_accepts(compiled.gbnf(think=True), reasoned), gold.name
