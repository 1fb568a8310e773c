"""Hostile schemas: every one is refused with exit 3 before any model work, never a traceback.

Each case is written as JSON text by the test (deep nesting, NaN, lone surrogates cannot
all come from ``json.dumps``) and goes through both ``schema check`` and ``extract``: both
must exit 3 with one error line that names the keyword or the place, quickly, without
loading the model (no output file, no "loaded" line), and without changing any input.
Schemas at the limits, and ordinary ones, still pass.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import assert_refused, file_hashes, run_cli

from thinkjson_edge.schema import load_schema
from thinkjson_edge.schema_limits import MAX_PATTERN_NESTING, MAX_REPEAT, MAX_SCHEMA_DEPTH
from thinkjson_edge.schema_patterns import BUDGET_SECONDS

EXIT_SCHEMA = 3
REFUSAL_SECONDS = 30  # a refusal takes about a second; a model run or a hang takes longer
OBJECT = '{"type": "object", "properties": {"a": %s}}'  # one property holding the case


def nested(opening: str, closing: str, depth: int, inner: str = '{"type": "string"}') -> str:
    return opening * depth + inner + closing * depth


def through_properties(depth: int) -> str:
    return nested('{"type": "object", "properties": {"a": ', "}}", depth)


def through_items(depth: int) -> str:
    return '{"type": "object", "properties": {"a": ' + nested('{"items": ', "}", depth) + "}}"


def through_all_of(depth: int) -> str:
    return nested('{"allOf": [', "]}", depth, '{"type": "object"}')


def reference_chain(length: int) -> str:
    """$defs d0 -> d1 -> ... each holding the next under a property: deep once followed."""
    defs = {
        f"d{i}": {"type": "object", "properties": {"x": {"$ref": f"#/$defs/d{i + 1}"}}}
        for i in range(length)
    }
    defs[f"d{length}"] = {"type": "string"}
    return json.dumps(
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/d0"}}, "$defs": defs}
    )


def pattern_groups(depth: int) -> str:
    return OBJECT % json.dumps({"type": "string", "pattern": "(" * depth + "a" + ")" * depth})


DEEP = {
    "properties-100": (through_properties(100), ["nest", "properties"]),
    "properties-1000": (through_properties(1000), ["nest"]),
    "properties-10000": (through_properties(10000), ["nest"]),
    "items-100": (through_items(100), ["nest", "items"]),
    "items-1000": (through_items(1000), ["nest"]),
    "items-10000": (through_items(10000), ["nest"]),
    "allOf-100": (through_all_of(100), ["nest", "allOf"]),
    "allOf-1000": (through_all_of(1000), ["nest"]),
    "allOf-10000": (through_all_of(10000), ["nest"]),
    "refs-followed-100": (reference_chain(100), ["nest", "$ref"]),
    "const-value-5000": (
        OBJECT % nested('{"const": ', "}", 1, nested("[", "]", 5000, "1")),
        ["nest"],
    ),
    "pattern-groups-100": (pattern_groups(100), ["pattern", "/properties/a/pattern"]),
    "pattern-groups-5000": (pattern_groups(5000), ["pattern", "/properties/a/pattern"]),
}

NOT_A_NUMBER = {
    "minimum-NaN": (OBJECT % '{"type": "number", "minimum": NaN}', ['"minimum"', "NaN"]),
    "maximum-Infinity": (OBJECT % '{"type": "integer", "maximum": Infinity}', ['"maximum"']),
    "exclusiveMinimum--Infinity": (
        OBJECT % '{"type": "number", "exclusiveMinimum": -Infinity}',
        ['"exclusiveMinimum"', "-Infinity"],
    ),
    "multipleOf-NaN": (OBJECT % '{"type": "number", "multipleOf": NaN}', ['"multipleOf"']),
    "maxLength-Infinity": (OBJECT % '{"type": "string", "maxLength": Infinity}', ['"maxLength"']),
    "enum-NaN": (OBJECT % '{"enum": [1, NaN]}', ['"enum"', "/properties/a/enum/1"]),
    "const-Infinity": (OBJECT % '{"const": Infinity}', ['"const"']),
    "overflowing-float": (OBJECT % '{"type": "number", "minimum": 1e400}', ['"minimum"']),
}

SURROGATES = {
    "property-name": (
        '{"type": "object", "properties": {"\\ud800": {"type": "string"}}}',
        ["surrogate", "/properties"],
    ),
    "required-name": ('{"type": "object", "required": ["\\udfff"]}', ["surrogate", "/required/0"]),
    "enum-value": (OBJECT % '{"enum": ["ok", "\\ud83d"]}', ["surrogate", "/properties/a/enum/1"]),
    "const-value": (OBJECT % '{"const": "x\\udc00y"}', ["surrogate", '"const"']),
    "pattern": (OBJECT % '{"type": "string", "pattern": "^\\ud800+$"}', ["surrogate", '"pattern"']),
}

NESTED_IDS = {
    "pointer-inside-nested-id": (
        json.dumps(
            {
                "type": "object",
                "properties": {
                    "a": {
                        "$id": "http://example.com/a",
                        "type": "object",
                        "properties": {"b": {"$ref": "#/$defs/x"}},
                    }
                },
                "$defs": {"x": {"type": "string"}},
            }
        ),
        ['"$id"', "/properties/a/properties/b"],
    ),
    "pointer-meaning-two-things": (
        json.dumps(
            {
                "type": "object",
                "properties": {
                    "a": {
                        "$id": "item.json",
                        "type": "object",
                        "properties": {"b": {"$ref": "#/$defs/y"}},
                        "$defs": {"y": {"type": "integer"}},
                    }
                },
                "$defs": {"y": {"type": "string"}},
            }
        ),
        ['"$id"', '"item.json"', "/properties/a"],
    ),
    "anchor-inside-nested-id": (
        json.dumps(
            {
                "type": "object",
                "properties": {"a": {"$ref": "#name"}},
                "$defs": {
                    "n": {"$id": "http://example.com/n", "$defs": {"f": {"$anchor": "name"}}}
                },
            }
        ),
        ['"#name"', "/properties/a"],
    ),
    "root-reference-inside-nested-id": (
        json.dumps(
            {
                "type": "object",
                "properties": {
                    "a": {
                        "$id": "http://example.com/a",
                        "type": "object",
                        "properties": {"b": {"$ref": "#"}},
                    }
                },
            }
        ),
        ['"$id"', "/properties/a/properties/b"],
    ),
}

LLAMA_REFUSES = {
    "minLength-3000": (
        OBJECT % '{"type": "string", "minLength": 3000}',
        ['"minLength"', str(MAX_REPEAT)],
    ),
    "minItems-100000": (
        OBJECT % '{"type": "array", "minItems": 100000}',
        ['"minItems"', "/properties/a"],
    ),
    "minItems-just-over": (
        OBJECT % f'{{"type": "array", "minItems": {MAX_REPEAT + 1}}}',
        ['"minItems"'],
    ),
    "enum-empty": (OBJECT % '{"enum": []}', ['"enum"', "/properties/a"]),
    "shortest-object-too-long": (
        '{"type": "object", "required": ["a"], "properties": {"a": {"type": "array", '
        '"minItems": 2000, "items": {"type": "string", "minLength": 2000}}}}',
        ["shortest object"],
    ),
}

CYCLES = {
    "ref-to-ref": (
        '{"type": "object", "properties": {"a": {"$ref": "#/$defs/x"}}, '
        '"$defs": {"x": {"$ref": "#/$defs/y"}, "y": {"$ref": "#/$defs/x"}}}',
        ["$ref", "/$defs/x", "loop"],
    ),
    "ref-to-itself": (
        '{"type": "object", "properties": {"a": {"$ref": "#/$defs/x"}}, '
        '"$defs": {"x": {"$ref": "#/$defs/x"}}}',
        ["$ref", "/$defs/x", "loop"],
    ),
    "anyOf-back-to-itself": (
        '{"type": "object", "properties": {"a": {"$ref": "#/$defs/x"}}, '
        '"$defs": {"x": {"anyOf": [{"$ref": "#/$defs/x"}, {"type": "string"}]}}}',
        ["$ref", "loop"],
    ),
    "allOf-back-to-the-root": (
        '{"type": "object", "allOf": [{"$ref": "#"}]}',
        ["$ref", "(root)", "loop"],
    ),
}

RECURSIVE_REQUIRED = {
    "property-refers-to-its-object": (
        '{"properties": {"child": {"$ref": "#"}}, "required": ["child"]}',
        ["finite", "/properties/child"],
    ),
    "through-defs": (
        json.dumps(
            {
                "type": "object",
                "required": ["head"],
                "properties": {"head": {"$ref": "#/$defs/node"}},
                "$defs": {
                    "node": {
                        "type": "object",
                        "required": ["next"],
                        "properties": {"next": {"$ref": "#/$defs/node"}},
                    }
                },
            }
        ),
        ["finite", "/$defs/node"],
    ),
    "through-a-non-empty-array": (
        '{"type": "object", "required": ["kids"], '
        '"properties": {"kids": {"type": "array", "minItems": 1, "items": {"$ref": "#"}}}}',
        ["finite", "/properties/kids"],
    ),
    "through-two-objects": (
        json.dumps(
            {
                "type": "object",
                "required": ["a"],
                "properties": {"a": {"$ref": "#/$defs/a"}},
                "$defs": {
                    "a": {
                        "type": "object",
                        "required": ["b"],
                        "properties": {"b": {"$ref": "#/$defs/b"}},
                    },
                    "b": {
                        "type": "object",
                        "required": ["a"],
                        "properties": {"a": {"$ref": "#/$defs/a"}},
                    },
                },
            }
        ),
        ["finite", "/$defs/a"],
    ),
}

NOT_AN_OBJECT = {
    "anyOf-string": ('{"anyOf": [{"type": "string"}]}', ["root", '"anyOf"']),
    "enum-numbers": ('{"enum": [1, 2]}', ["root", '"enum"']),
    "ref-to-a-string": (
        '{"$ref": "#/$defs/x", "$defs": {"x": {"type": "string"}}}',
        ["root", '"$ref"'],
    ),
    "const-string": ('{"const": "x"}', ["root", '"const"']),
    "object-or-string": (
        '{"oneOf": [{"type": "object"}, {"type": "string"}]}',
        ["root", '"oneOf"'],
    ),
    "no-type-at-all": ('{"description": "anything"}', ["root", '"type"']),
}


REMOTE_REF = '{"$ref": "https://example.com/s.json"}'
REMOTE = {
    **{
        f"under-$defs-named-{name}": (
            f'{{"type": "object", "$defs": {{"{name}": {REMOTE_REF}}}}}',
            ["outside", f"/$defs/{name}"],
        )
        for name in ("default", "enum", "const", "examples")
    },
    **{
        f"under-properties-named-{name}": (
            f'{{"type": "object", "properties": {{"{name}": {REMOTE_REF}}}}}',
            ["outside", f"/properties/{name}"],
        )
        for name in ("default", "enum", "const", "examples")
    },
    "under-patternProperties": (
        f'{{"type": "object", "patternProperties": {{"^x": {{"items": {REMOTE_REF}}}}}}}',
        ["outside", "/patternProperties/^x/items"],
    ),
    "in-not": (f'{{"type": "object", "not": {REMOTE_REF}}}', ["outside", "/not"]),
}


CASES = {
    f"{group}/{name}": case
    for group, cases in {
        "deep": DEEP,
        "nan": NOT_A_NUMBER,
        "surrogate": SURROGATES,
        "nested-id": NESTED_IDS,
        "llama-refuses": LLAMA_REFUSES,
        "cycle": CYCLES,
        "recursive-required": RECURSIVE_REQUIRED,
        "root": NOT_AN_OBJECT,
        "remote": REMOTE,
    }.items()
    for name, case in cases.items()
}


@pytest.fixture
def document(tmp_path: Path) -> Path:
    path = tmp_path / "receipt.txt"
    path.write_text("Total: 12.50 EUR\n", encoding="utf-8")
    return path


def _timed(*args: str | Path) -> tuple[object, float]:
    started = time.monotonic()
    result = run_cli(*args, timeout=REFUSAL_SECONDS)
    return result, time.monotonic() - started


@pytest.mark.parametrize("text, words", CASES.values(), ids=CASES.keys())
def test_refused_by_check_and_by_extract(
    tmp_path: Path, document: Path, text: str, words: list[str]
) -> None:
    schema = tmp_path / "hostile.schema.json"
    schema.write_text(text, encoding="utf-8")
    before = file_hashes(schema, document)

    checked, _ = _timed("schema", "check", schema)
    assert_refused(checked, EXIT_SCHEMA, *words)

    out = tmp_path / "out.json"
    extracted, _ = _timed("extract", document, "--schema", schema, "--out", out)
    assert_refused(extracted, EXIT_SCHEMA, *words)
    assert "loaded in" not in extracted.stderr  # refused before the model loaded
    assert not out.exists()
    assert file_hashes(schema, document) == before


# -- what still passes ---------------------------------------------------------------------

GOOD = {
    "properties-at-the-limit": through_properties(MAX_SCHEMA_DEPTH),
    "allOf-at-the-limit": through_all_of(MAX_SCHEMA_DEPTH - 1),
    "pattern-groups-at-the-limit": pattern_groups(MAX_PATTERN_NESTING),
    "minLength-at-the-limit": OBJECT % f'{{"type": "string", "minLength": {MAX_REPEAT}}}',
    "recursive-but-optional": json.dumps(
        {
            "type": "object",
            "properties": {"root": {"$ref": "#/$defs/node"}},
            "required": ["root"],
            "$defs": {
                "node": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                    },
                }
            },
        }
    ),
    "recursion-ending-in-null": (
        '{"type": "object", "required": ["head"], "properties": {"head": {"$ref": "#/$defs/n"}}, '
        '"$defs": {"n": {"type": ["object", "null"], "required": ["next"], '
        '"properties": {"next": {"$ref": "#/$defs/n"}}}}}'
    ),
    "recursive-and-optional-at-the-root": OBJECT % '{"$ref": "#"}',
    "objects-in-anyOf": json.dumps(
        {
            "anyOf": [
                {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"type": "object", "properties": {"b": {"type": "integer"}}, "required": ["b"]},
            ]
        }
    ),
    "ref-to-an-object": '{"$ref": "#/$defs/o", "$defs": {"o": {"type": "object"}}}',
    "properties-without-type": '{"properties": {"a": {"type": "string"}}}',
    "remote-looking-data": (
        '{"type": "object", "properties": {"a": {"type": "object", '
        '"default": {"$ref": "https://example.com"}, "examples": [{"$ref": "file:///etc/passwd"}], '
        '"enum": [{"$ref": "http://x"}], "const": {"$ref": "http://x"}}}}'
    ),
    "names-that-are-keywords": (
        '{"type": "object", "properties": {"$ref": {"type": "string"}, "$id": {"type": "string"}, '
        '"default": {"type": "string"}, "enum": {"type": "string"}}}'
    ),
    "draft7-fragment-id": json.dumps(
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"a": {"$ref": "#item"}},
            "definitions": {"item": {"$id": "#item", "type": "string"}},
        }
    ),
    "nested-id-without-references": json.dumps(
        {
            "type": "object",
            "properties": {"a": {"$id": "http://example.com/a", "type": "string"}},
        }
    ),
    "surrogate-pair": OBJECT % '{"enum": ["\\ud83d\\ude00"]}',
    "receipt-example": (Path(__file__).parents[2] / "examples" / "receipt.schema.json").read_text(
        encoding="utf-8"
    ),
}


@pytest.mark.parametrize("text", GOOD.values(), ids=GOOD.keys())
def test_usable_schemas_still_pass(tmp_path: Path, text: str) -> None:
    schema = tmp_path / "good.schema.json"
    schema.write_text(text, encoding="utf-8")
    result = run_cli("schema", "check", schema, timeout=REFUSAL_SECONDS)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "grammar rules" in result.stdout


# -- patterns the validator checks ---------------------------------------------------------

# A lookahead keeps these out of the grammar; each backtracks for minutes in Python's re.
BACKTRACKING = ["^(?!x)(a|a)*$", "^(?=a)(a+)+b$", "^(?=.)(a|aa)+$"]


@pytest.mark.parametrize("pattern", BACKTRACKING)
def test_a_backtracking_pattern_is_a_finding_not_a_hang(pattern: str) -> None:
    schema = load_schema(
        {
            "type": "object",
            "properties": {"a": {"type": "string", "pattern": pattern}},
            "patternProperties": {pattern: {"type": "string"}},
            "additionalProperties": False,
        }
    )
    hostile = "a" * 40 + "!"
    started = time.monotonic()
    errors = schema.errors({"a": hostile, hostile: "x"})
    elapsed = time.monotonic() - started
    assert elapsed < 2 * BUDGET_SECONDS + 2  # the budget, and the engine's late check of it
    assert errors
    assert all(pattern in error.message for error in errors)


def test_patterns_still_match_and_fail_as_before() -> None:
    schema = load_schema(
        {
            "type": "object",
            "properties": {"code": {"type": "string", "pattern": "^(?=[A-Z])[A-Z]{2}-\\d+$"}},
            "patternProperties": {"^x-": {"type": "integer"}},
            "additionalProperties": False,
        }
    )
    assert schema.errors({"code": "AB-12", "x-a": 1}) == []
    messages = [e.message for e in schema.errors({"code": "ab-12", "x-a": "1", "other": 1})]
    assert "'ab-12' does not match '^(?=[A-Z])[A-Z]{2}-\\\\d+$'" in messages
    assert "'1' is not of type 'integer'" in messages
    assert any("'other' does not match any of the regexes" in m for m in messages)


def test_a_value_too_deep_to_validate_is_one_error() -> None:
    schema = load_schema(
        {
            "type": "object",
            "properties": {"tree": {"$ref": "#/$defs/node"}},
            "$defs": {"node": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
        }
    )
    value: list = []
    for _ in range(5000):
        value = [value]
    errors = schema.errors({"tree": value})
    assert [e.message for e in errors] == ["the value nests too deeply to be checked"]


# -- llama.cpp's own word on a grammar -----------------------------------------------------


@pytest.mark.parametrize(
    "gbnf, reason",
    [
        ('root ::= x\nx ::= y\ny ::= x "a"\n', "left recursion"),
        ('root ::= "a"{3000}\n', "repetitions"),
        ('root ::= "a" (\n', "expecting"),
        ('root ::= "a"\x00 | "b"\n', "NUL"),
    ],
    ids=["left-recursion", "long-repetition", "unclosed-group", "nul"],
)
def test_llama_cpp_refusals_come_back_as_one_line(
    gbnf: str, reason: str, capfd: pytest.CaptureFixture[str]
) -> None:
    from thinkjson_edge.engine.grammar_check import grammar_refusal

    refusal = grammar_refusal(gbnf)
    assert refusal is not None and reason in refusal and "\n" not in refusal
    assert grammar_refusal('root ::= "a" [b-z]{0,5}\n') is None
    printed = capfd.readouterr()
    assert printed.err == "" and printed.out == ""  # llama.cpp's own printing is collected


# -- what the checker reads from a grammar -------------------------------------------------


def test_the_shortest_object_and_the_root_are_read_from_the_grammar() -> None:
    from thinkjson_edge.grammar.compiler import compile_schema
    from thinkjson_edge.grammar.shape import analyse

    def shape(schema: dict) -> tuple[float, bool]:
        found = analyse(compile_schema(schema).rules)
        return found.shortest("json"), found.may_start_otherwise("json", "{")

    text = {"type": "string", "minLength": 5}
    assert shape({"type": "object", "properties": {"a": text}, "required": ["a"]}) == (13, False)
    assert shape({"type": "object", "properties": {"a": text}}) == (2, False)  # {}
    items = {"type": "array", "minItems": 3, "items": {"type": "string", "minLength": 2}}
    assert shape({"type": "object", "properties": {"a": items}, "required": ["a"]}) == (22, False)
    assert shape({"anyOf": [{"type": "object"}, {"type": "null"}]})[1] is True
    endless = {"type": "object", "properties": {"c": {"$ref": "#"}}, "required": ["c"]}
    assert shape(endless)[0] == float("inf")
