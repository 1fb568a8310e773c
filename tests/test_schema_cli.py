"""`thinkjson-edge schema check`: the compiler's verdict, and the exact grammar generation uses."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from thinkjson_edge.cli import main
from thinkjson_edge.exit_codes import EXIT_OK, EXIT_SCHEMA
from thinkjson_edge.extract import ExtractOptions
from thinkjson_edge.grammar import compile_schema
from thinkjson_edge.schema import load_schema

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "batch-record.schema.json"


def check(*args: str | Path):
    return CliRunner().invoke(main, ["schema", "check", *map(str, args)])


def test_summary_splits_grammar_and_validator_keywords() -> None:
    result = check(EXAMPLE)
    assert result.exit_code == EXIT_OK, result.output
    grammar_part, validator_part = result.stdout.split("enforced by the validator")
    assert "/properties/date_of_manufacture: format date" in grammar_part
    assert "/properties/batch_size_units: minimum" in validator_part
    assert "minimum" not in grammar_part


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
