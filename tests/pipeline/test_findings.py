"""Findings on hand-made outputs: schema violations and grounding, with known answers."""

from __future__ import annotations

from thinkjson_edge.pipeline.findings import (
    NOT_GROUNDED,
    SCHEMA,
    ground_values,
    grounding_findings,
    iter_groundable_strings,
    schema_findings,
)
from thinkjson_edge.pipeline.grounding import NormalisedText
from thinkjson_edge.schema import load_schema

DOCUMENT = "SOON HUAT MACHINERY\nNO.53 JALAN PUTRA 1,\n  TAMAN SRIPUTRA\nTOTAL : 327.00"


def test_exact_match_gives_offsets() -> None:
    span = NormalisedText(DOCUMENT).find("327.00")
    assert span is not None and span.match == "exact"
    assert DOCUMENT[span.start : span.end] == "327.00"


def test_normalised_match_spans_the_original_text() -> None:
    span = NormalisedText(DOCUMENT).find("no.53 jalan putra 1, taman sriputra")
    assert span is not None and span.match == "normalised"
    assert DOCUMENT[span.start : span.end] == "NO.53 JALAN PUTRA 1,\n  TAMAN SRIPUTRA"


def test_absent_value_is_not_found() -> None:
    assert NormalisedText(DOCUMENT).find("TAMAN SRI PUTRA") is None


SCHEMA_DOC = {
    "type": "object",
    "properties": {
        "company": {"type": "string"},
        "status": {"enum": ["open", "closed"]},
        "day": {"type": "string", "format": "date"},
        "lines": {"type": "array", "items": {"$ref": "#/$defs/line"}},
        "note": {"anyOf": [{"type": "null"}, {"type": "string"}]},
    },
    "required": ["company"],
    "$defs": {
        "line": {
            "type": "object",
            "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
        }
    },
}


def test_groundable_strings_skip_enum_and_format_and_follow_refs() -> None:
    value = {
        "company": "SOON HUAT",
        "status": "open",
        "day": "2019-01-11",
        "lines": [{"sku": "1072", "qty": 1}, {"sku": "", "qty": 2}],
        "note": "paid",
    }
    assert list(iter_groundable_strings(value, SCHEMA_DOC)) == [
        ("/company", "SOON HUAT"),
        ("/lines/0/sku", "1072"),
        ("/note", "paid"),
    ]


def test_findings_combine_schema_errors_and_ungrounded_values() -> None:
    schema = load_schema(SCHEMA_DOC)
    value = {"company": "ACME LTD", "lines": [{"sku": "327.00", "qty": "two"}]}
    errors = schema_findings(schema, value)
    assert [(f.kind, f.path) for f in errors] == [(SCHEMA, "/lines/0/qty")]
    assert "'two' is not of type 'integer'" in errors[0].message
    grounded = ground_values(schema, value, NormalisedText(DOCUMENT))
    # A string where the schema wants a number is still looked up: it came from somewhere.
    assert [(g.path, g.span is not None) for g in grounded] == [
        ("/company", False),
        ("/lines/0/sku", True),
        ("/lines/0/qty", False),
    ]
    missing = grounding_findings(grounded)
    assert [(f.kind, f.path) for f in missing] == [
        (NOT_GROUNDED, "/company"),
        (NOT_GROUNDED, "/lines/0/qty"),
    ]
    assert missing[0].describe() == "/company: 'ACME LTD' does not occur in the document"


def test_missing_required_property_is_a_root_finding() -> None:
    findings = schema_findings(load_schema(SCHEMA_DOC), {})
    assert [(f.path, f.message) for f in findings] == [("", "'company' is a required property")]
    assert findings[0].describe() == "(root): 'company' is a required property"


def test_a_key_written_twice_is_a_schema_finding() -> None:
    from thinkjson_edge.pipeline.assessment import duplicate_key_findings

    findings = duplicate_key_findings('{"a":1,"b":{"x":1,"x":2},"a":3}')
    assert sorted(f.message for f in findings) == [
        "the key 'a' is written twice",
        "the key 'x' is written twice",
    ]
    assert {f.kind for f in findings} == {"schema"}
    assert duplicate_key_findings('{"a":1,"b":{"a":2}}') == []
