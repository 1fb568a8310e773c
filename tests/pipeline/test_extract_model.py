"""End-to-end extraction on the real default model through real llama.cpp (no mocks)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from thinkjson_edge import Document, ExtractionResult, Extractor
from thinkjson_edge.engine.generation import DecodeLimits
from thinkjson_edge.errors import Cancelled
from thinkjson_edge.grammar.compiler import GrammarLimits

pytestmark = pytest.mark.model

FIXTURES = Path(__file__).parent.parent / "fixtures"

BATCH_RECORD = Document(
    text=(
        "Batch record BR-7731 for Amoxicillin 500 mg capsules, site Lyon.\n"
        "Manufactured on 2024-03-02 by operator Claire Dubois. Yield 98.4 percent, "
        "48000 capsules. Status: released.\n"
        "Tests: assay 99.1 % (pass); dissolution 87 % (pass); water content 2.1 % (pass).\n"
        "Equipment: blender BL-02, encapsulator EN-11.\n"
    ),
    source="batch-record",
)

SCHEMAS: dict[str, dict[str, Any]] = {
    "flat-required-and-optional": {
        "type": "object",
        "properties": {
            "batch": {"type": "string"},
            "product": {"type": "string"},
            "site": {"type": "string"},
            "operator": {"type": "string"},
        },
        "required": ["batch", "operator"],
    },
    "numbers-integers-booleans-enum": {
        "type": "object",
        "properties": {
            "yield_percent": {"type": "number"},
            "units": {"type": "integer"},
            "released": {"type": "boolean"},
            "status": {"enum": ["released", "rejected", "quarantined"]},
        },
        "required": ["yield_percent", "units", "released", "status"],
        "additionalProperties": False,
    },
    "nested-object": {
        "type": "object",
        "properties": {
            "batch": {"type": "string"},
            "manufacture": {
                "type": "object",
                "properties": {
                    "date": {"type": "string", "format": "date"},
                    "site": {"type": "string"},
                },
                "required": ["date", "site"],
            },
        },
        "required": ["batch", "manufacture"],
    },
    "array-of-objects-via-defs": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {
            "tests": {
                "type": "array",
                "items": {"$ref": "#/definitions/test"},
                "minItems": 1,
                "maxItems": 5,
            },
            "equipment": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["tests"],
        "definitions": {
            "test": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "result": {"type": "string"},
                    "passed": {"type": "boolean"},
                },
                "required": ["name", "passed"],
            }
        },
    },
}


def _check(result: ExtractionResult, schema: dict[str, Any]) -> None:
    """The object is complete and valid by jsonschema itself, not only by our own verdict."""
    assert result.valid, result.to_json()
    assert isinstance(result.value, dict)
    jsonschema.validate(result.value, schema, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_valid_object_for_each_schema_shape(extractor: Extractor, name: str) -> None:
    result = extractor.extract(BATCH_RECORD, SCHEMAS[name], think=False, self_correct=False)
    _check(result, SCHEMAS[name])
    # This small model sometimes loops inside a value; closing mode then ends it.
    assert result.chosen.generation.stop_reason in ("complete", "closed-on-repetition")


def test_reasoning_block_then_json(extractor: Extractor) -> None:
    schema = SCHEMAS["flat-required-and-optional"]
    result = extractor.extract(
        BATCH_RECORD, schema, think=True, max_think_tokens=48, self_correct=False
    )
    _check(result, schema)
    generation = result.chosen.generation
    assert generation.text.startswith("<think>\n")
    assert "</think>\n{" in generation.text
    assert 0 < generation.think_tokens <= 48 + 8  # budget, plus the forced closing tag
    assert generation.reasoning is not None


def test_tiny_budgets_still_give_complete_valid_json(extractor: Extractor) -> None:
    schema = SCHEMAS["array-of-objects-via-defs"]
    result = extractor.extract(
        BATCH_RECORD, schema, think=True, max_think_tokens=2, max_json_tokens=8, self_correct=False
    )
    _check(result, schema)
    generation = result.chosen.generation
    assert generation.think_stop_reason == "budget"
    assert generation.stop_reason == "closed-at-budget"


def test_runaway_value_is_closed(base_extractor: Extractor) -> None:
    """A value the model repeats ("pass, pass, ...") is closed, not run to the limit.

    The document repeats one remark a hundred times, so copying it makes the model loop. The
    grammar's string bound is lifted far above the loop, so what ends the value is the
    repetition detector and closing mode, not the bound.
    """
    log = Document(
        text="Operator log, line check.\nRemarks: " + "pass, " * 120 + "\nEnd of log.\n",
        source="log",
    )
    schema = {
        "type": "object",
        "properties": {"remarks": {"type": "string"}},
        "required": ["remarks"],
    }
    result = base_extractor.extract(
        log,
        schema,
        think=False,
        self_correct=False,
        grammar_limits=GrammarLimits(max_string_length=4000),
    )
    _check(result, schema)
    generation = result.chosen.generation
    assert generation.stop_reason == "closed-on-repetition", generation.text
    assert generation.generated_tokens < 200


# The array of objects makes the model meet forced property names it would tokenise
# differently, so the fast path's ranked candidates are exercised, not just its first check.
@pytest.mark.parametrize("name", ["numbers-integers-booleans-enum", "array-of-objects-via-defs"])
def test_fast_grammar_path_equals_full_masking(extractor: Extractor, name: str) -> None:
    engine = extractor.engine
    schema = SCHEMAS[name]
    from thinkjson_edge.grammar.compiler import compile_schema
    from thinkjson_edge.pipeline.prompts import extraction_messages

    prompt = engine.tokenize(
        engine.render_chat(extraction_messages(json.dumps(schema), BATCH_RECORD.text, think=True))
    )
    grammar = compile_schema(schema).gbnf(think=True)
    # Both from a cold cache: llama.cpp's logits depend slightly on how the prompt was batched.
    engine.forget_prompt()
    fast = engine.generate(prompt, grammar, think=True, limits=DecodeLimits(max_think_tokens=40))
    engine.forget_prompt()
    full = engine.generate(
        prompt, grammar, think=True, limits=DecodeLimits(max_think_tokens=40, full_mask=True)
    )
    assert fast.text == full.text
    assert fast.generated_tokens == full.generated_tokens > 10


def test_second_attempt_reuses_the_shared_prompt_prefix(extractor: Extractor) -> None:
    # Unsatisfiable by construction: every attempt has a schema finding, so attempt 2 always runs.
    schema = {
        "type": "object",
        "properties": {"batch": {"type": "string"}},
        "required": ["batch"],
        "not": {"required": ["batch"]},
    }
    result = extractor.extract(BATCH_RECORD, schema, think=False)
    assert [a.number for a in result.attempts] == [1, 2]
    assert not result.valid
    first, second = (a.generation for a in result.attempts)
    assert second.cached_prompt_tokens > first.prompt_tokens // 2
    record = json.loads(result.to_json())
    assert record["attempts"][0]["findings"][0]["kind"] == "schema"
    assert "not" in " ".join(record["validation_only_keywords"])


def test_receipts_give_valid_objects(extractor: Extractor) -> None:
    schema_path = FIXTURES / "sroie" / "schema.json"
    schema = json.loads(schema_path.read_text())
    for receipt in sorted((FIXTURES / "sroie").glob("*.txt")):
        result = extractor.extract(receipt, schema_path, think=False)
        _check(result, schema)
        assert result.source == str(receipt)


def test_extraction_opens_no_network_connection(monkeypatch) -> None:
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError("network is forbidden in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    schema = SCHEMAS["nested-object"]
    with Extractor(device="cpu") as fresh:  # loading the model is covered too
        result = fresh.extract(BATCH_RECORD, schema, think=True, max_think_tokens=16)
    _check(result, schema)
    assert attempts == []


def test_sampling_is_valid_and_repeatable_by_seed(extractor: Extractor) -> None:
    schema = SCHEMAS["numbers-integers-booleans-enum"]
    options = {"think": False, "self_correct": False, "temperature": 0.8}
    # From a cold cache both times: llama.cpp's logits depend slightly on prompt batching.
    extractor.engine.forget_prompt()
    first = extractor.extract(BATCH_RECORD, schema, seed=7, **options)
    extractor.engine.forget_prompt()
    again = extractor.extract(BATCH_RECORD, schema, seed=7, **options)
    _check(first, schema)
    assert first.value == again.value


def test_output_is_streamed_as_written_and_a_listener_can_cancel(extractor: Extractor) -> None:
    schema = SCHEMAS["flat-required-and-optional"]
    pieces: list[tuple[int, str, bool]] = []
    result = extractor.extract(
        BATCH_RECORD,
        schema,
        on_text=lambda attempt, text, reasoning: pieces.append((attempt, text, reasoning)),
        think=True,
        max_think_tokens=32,
        self_correct=False,
    )
    generation = result.chosen.generation
    streamed = "".join(text for _, text, _ in pieces)
    assert streamed.rstrip() == generation.text.rstrip()
    reasoning = "".join(text for _, text, in_think in pieces if in_think)
    assert reasoning.startswith("<think>\n") and reasoning.endswith("</think>\n")
    assert {attempt for attempt, _, _ in pieces} == {1}

    def stop_after_ten(attempt: int, text: str, reasoning: bool) -> None:
        pieces.append((attempt, text, reasoning))
        if len(pieces) >= 10:
            raise Cancelled("stop")

    pieces.clear()
    with pytest.raises(Cancelled):
        extractor.extract(BATCH_RECORD, schema, on_text=stop_after_ten, self_correct=False)
    assert len(pieces) == 10
    # The engine is left usable: the same extraction again gives the same greedy output.
    again = extractor.extract(
        BATCH_RECORD, schema, think=True, max_think_tokens=32, self_correct=False
    )
    assert again.chosen.generation.text == generation.text
