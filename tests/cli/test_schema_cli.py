"""`thinkjson-edge schema check`: the compiler's verdict, and the exact grammar generation uses."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from thinkjson_edge.cli import main
from thinkjson_edge.cli.exit_codes import EXIT_OK, EXIT_SCHEMA
from thinkjson_edge.grammar.compiler import compile_schema
from thinkjson_edge.pipeline.extractor import ExtractOptions
from thinkjson_edge.schema import load_schema

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "batch-record.schema.json"


def check(*args: str | Path):
    return CliRunner().invoke(main, ["schema", "check", *map(str, args)])


def test_summary_splits_grammar_and_validator_keywords(write_json) -> None:
    path = write_json(
        "s.json",
        {
            "type": "object",
            "properties": {
                "units": {"type": "integer", "minimum": 0},
                "yield": {"type": "number", "minimum": 0},
                "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            },
        },
    )
    result = check(path)
    assert result.exit_code == EXIT_OK, result.output
    grammar_part, validator_part = result.stdout.split("enforced by the validator")
    assert "/properties/units: minimum" in grammar_part  # integer bounds are in the grammar
    assert "/properties/yield: minimum" in validator_part  # number bounds are not
    assert "/properties/tags: uniqueItems" in validator_part
    assert "uniqueItems" not in grammar_part


def test_gbnf_is_the_grammar_extraction_uses() -> None:
    for flag, think in (("--think", True), ("--no-think", False)):
        result = check(EXAMPLE, "--gbnf", flag)
        assert result.exit_code == EXIT_OK
        limits = ExtractOptions().grammar_limits
        expected = compile_schema(load_schema(EXAMPLE).schema, limits).gbnf(think=think)
        assert result.stdout == expected
        assert result.stdout.startswith("root ::= think json\n" if think else "root ::= json\n")


def test_bad_schema_exits_3(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"type": "object", "required": "name"}', encoding="utf-8")
    result = check(path)
    assert result.exit_code == EXIT_SCHEMA
    assert "metaschema" in result.stderr
