"""Decoding cannot outgrow its budget: a per-attempt token limit and a wall-clock limit.

A grammar that can never close (a required property holding its own object) used to
decode until the context was full, minutes per attempt. The schema checker refuses that
schema before the model runs; these tests hold the second line of defence, the decoder's
own limits, with the real default model and limits small enough to be quick.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import run_cli

from thinkjson_edge import Extractor
from thinkjson_edge.engine.generation import STOP_TIME_LIMIT, STOP_TOKEN_LIMIT, DecodeLimits
from thinkjson_edge.grammar.compiler import compile_schema
from thinkjson_edge.pipeline.extractor import DEFAULT_ATTEMPT_SECONDS, ExtractOptions
from thinkjson_edge.pipeline.findings import BUDGET, budget_findings

EXIT_INVALID_OUTPUT = 6
SELF_REQUIRED = {"type": "object", "properties": {"child": {"$ref": "#"}}, "required": ["child"]}


def _prompt(extractor: Extractor) -> list[int]:
    engine = extractor.engine
    return engine.tokenize(engine.render_chat([{"role": "user", "content": "Write the JSON."}]))


@pytest.mark.model
def test_a_grammar_that_never_closes_stops_at_the_token_budget(extractor: Extractor) -> None:
    grammar = compile_schema(SELF_REQUIRED).gbnf(think=False)
    limits = DecodeLimits(max_json_tokens=24, closing_reserve=8)
    generation = extractor.engine.generate(_prompt(extractor), grammar, think=False, limits=limits)
    assert generation.stop_reason == STOP_TOKEN_LIMIT
    # four times the budget and the closing reserve, no more (room for a slow close)
    assert generation.generated_tokens == 4 * (24 + 8)
    assert generation.json_text.replace(" ", "").startswith('{"child":{"child"')


@pytest.mark.model
def test_a_grammar_that_never_closes_stops_at_the_time_limit(extractor: Extractor) -> None:
    grammar = compile_schema(SELF_REQUIRED).gbnf(think=False)
    limits = DecodeLimits(max_json_tokens=1_000_000, max_seconds=0.5)
    started = time.perf_counter()
    generation = extractor.engine.generate(_prompt(extractor), grammar, think=False, limits=limits)
    assert generation.stop_reason == STOP_TIME_LIMIT
    assert time.perf_counter() - started < 5  # one token past the limit at most, not minutes


@pytest.mark.model
def test_extract_reports_the_time_limit_as_a_finding(tmp_path: Path) -> None:
    """A legitimate but long object under a tiny limit: one attempt, a budget finding, exit 6."""
    document = tmp_path / "doc.txt"
    document.write_text("Batch BR-7731 released on 2024-03-02.\n", encoding="utf-8")
    schema = tmp_path / "schema.json"
    long_note = {"note": {"type": "string", "minLength": 1000}}
    schema.write_text(
        json.dumps({"type": "object", "properties": long_note, "required": ["note"]}),
        encoding="utf-8",
    )
    started = time.perf_counter()
    result = run_cli(
        "extract", document, "-s", schema, "--attempt-timeout", "0.5", "--no-think", "--no-copy"
    )
    assert time.perf_counter() - started < 60
    assert result.returncode == EXIT_INVALID_OUTPUT, result.stderr
    assert "Traceback" not in result.stderr
    assert "stop: time-limit" in result.stderr
    assert "time limit of 0.5 s" in result.stderr and "--attempt-timeout" in result.stderr
    assert "attempt 2" not in result.stderr  # a second attempt would run out the same way
    assert json.loads(result.stdout) is None


def test_budget_findings_name_the_limit() -> None:
    (timed,) = budget_findings(STOP_TIME_LIMIT, max_json_tokens=2048, max_seconds=300.0)
    assert timed.kind == BUDGET and "300 s" in timed.message
    (counted,) = budget_findings(STOP_TOKEN_LIMIT, max_json_tokens=2048, max_seconds=None)
    assert counted.kind == BUDGET and "2048 JSON tokens" in counted.message
    for stop in ("complete", "closed-at-budget", "truncated"):
        assert budget_findings(stop, max_json_tokens=2048, max_seconds=1.0) == []


def test_the_attempt_time_limit_has_a_default_and_can_be_lifted() -> None:
    assert ExtractOptions().decode_limits().max_seconds == DEFAULT_ATTEMPT_SECONDS
    assert ExtractOptions(attempt_seconds=0).decode_limits().max_seconds is None
    assert ExtractOptions(attempt_seconds=2.5).decode_limits().max_seconds == 2.5
