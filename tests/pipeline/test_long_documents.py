"""Documents longer than the model's context: chunked, extracted per chunk, merged (real model).

A small context (1,024 tokens) makes a document of a few paragraphs need chunks, so this
runs in seconds per chunk. The default model is weak, so the tests check structure
(validity, offsets, merging, conflicts), not the quality of what it extracts.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import jsonschema
import pytest

from thinkjson_edge import Document, ExtractionResult, Extractor
from thinkjson_edge.errors import DocumentTooLongError
from thinkjson_edge.pipeline.findings import CONFLICT, GroundedValue
from thinkjson_edge.pipeline.findings import SCHEMA as SCHEMA_FINDING
from thinkjson_edge.pipeline.grounding import normalise
from thinkjson_edge.pipeline.result import Attempt

pytestmark = pytest.mark.model

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "batch": {"type": "string", "pattern": "^BR-[0-9]{4}$"},
        "equipment": {
            "type": "array",
            "items": {"type": "string", "pattern": "^EQ-[0-9]{2}$"},
        },
    },
    "required": ["batch", "equipment"],
}

FILLER = (
    "Shift {i}: the cleaning log was reviewed by the quality unit and no deviations were "
    "noted. Room temperature stayed within the validated range for the whole shift."
)
# Two batch numbers far apart: each chunk sees one of them, so the merge finds a conflict.
LONG = Document(
    text="\n\n".join(
        [
            "Batch record BR-1001. Equipment used: EQ-01 and EQ-02.",
            *(FILLER.format(i=i) for i in range(1, 24)),
            "Batch record BR-3003. Equipment used: EQ-03.",
        ]
    )
    + "\n",
    source="long-batch-record",
)


@pytest.fixture(scope="module")
def small() -> Iterator[Extractor]:
    """The default model with a context small enough that LONG does not fit it."""
    with Extractor(device="cpu", n_ctx=1024) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def chunked(small: Extractor) -> ExtractionResult:
    return small.extract(LONG, SCHEMA, think=False)


def test_a_long_document_is_chunked_and_the_merged_object_is_valid(
    chunked: ExtractionResult,
) -> None:
    assert chunked.chunks == len(chunked.chunk_results) > 1
    assert chunked.valid, chunked.to_json()
    jsonschema.validate(chunked.value, SCHEMA)
    assert [a.generation.stop_reason for a in chunked.attempts] == ["merged"]
    record = chunked.to_dict()
    assert record["chunks"] == chunked.chunks
    assert [c["number"] for c in record["chunk_results"]] == list(range(1, chunked.chunks + 1))
    generated = sum(
        a.generation.generated_tokens for c in chunked.chunk_results for a in c.attempts
    )
    assert chunked.chosen.generation.generated_tokens == generated


def test_chunks_cover_the_document_and_overlap(small: Extractor, chunked: ExtractionResult) -> None:
    chunks = chunked.chunk_results
    assert chunks[0].start == 0
    assert chunks[-1].end == len(LONG.text.rstrip())
    for before, after in pairwise(chunks):
        assert before.start < after.start < before.end < after.end
    from thinkjson_edge.pipeline.extractor import ExtractOptions
    from thinkjson_edge.schema import load_schema

    budget = small.chunk_budget(load_schema(SCHEMA), ExtractOptions(think=False))
    for chunk in chunks:
        assert 0 < chunk.tokens <= budget
        first = chunk.attempts[0].generation
        assert first.prompt_tokens + first.generated_tokens <= small.engine.n_ctx


def _check_spans(grounding: list[GroundedValue], start: int = 0, end: int | None = None) -> int:
    end = len(LONG.text) if end is None else end
    found = 0
    for item in grounding:
        if item.span is None:
            continue
        found += 1
        assert start <= item.span.start < item.span.end <= end
        text = LONG.text[item.span.start : item.span.end]
        if item.span.match == "exact":
            assert text == item.value
        else:
            assert normalise(text) == normalise(item.value)
    return found


def test_grounding_offsets_are_in_the_whole_document(chunked: ExtractionResult) -> None:
    found = _check_spans(chunked.chosen.grounding)
    for chunk in chunked.chunk_results:
        for attempt in chunk.attempts:
            found += _check_spans(attempt.grounding, chunk.start, chunk.end)
    assert found > 0
    record = chunked.to_dict()
    for chunk in record["chunk_results"]:
        for attempt in chunk["attempts"]:
            for item in attempt["grounding"]:
                if item["found"] and item["match"] == "exact":
                    assert LONG.text[item["start"] : item["end"]] == item["value"]


def test_arrays_from_the_chunks_are_concatenated_without_repeats(
    chunked: ExtractionResult,
) -> None:
    values = [c.chosen.value for c in chunked.chunk_results if c.chosen.value is not None]
    expected: list[str] = []
    origin: dict[str, int] = {}
    for number, value in enumerate(values):
        for item in value.get("equipment", []):
            key = normalise(item)
            if origin.get(key, number) == number:
                expected.append(item)
                origin[key] = number
    assert chunked.value is not None
    assert chunked.value["equipment"] == expected
    # Every chunk's items are in the merged array, however the chunks overlap in them.
    every = {normalise(item) for value in values for item in value.get("equipment", [])}
    assert {normalise(item) for item in chunked.value["equipment"]} == every
    assert sum(bool(value.get("equipment")) for value in values) > 1


def test_two_values_the_document_states_are_a_conflict(chunked: ExtractionResult) -> None:
    conflicts = [f for f in chunked.findings if f.kind == CONFLICT]
    assert [f.path for f in conflicts] == ["/batch"], chunked.to_json()
    assert "BR-1001" in conflicts[0].message and "BR-3003" in conflicts[0].message
    assert chunked.value is not None and chunked.value["batch"] == "BR-1001"
    assert chunked.valid  # a conflict is not a schema error


@pytest.fixture(scope="module")
def reasoned(small: Extractor) -> ExtractionResult:
    """With reasoning, and at most one item per array: each chunk keeps to it, the merge may not."""
    schema = {**SCHEMA, "properties": {**SCHEMA["properties"]}}
    schema["properties"]["equipment"] = {**SCHEMA["properties"]["equipment"], "maxItems": 1}
    return small.extract(LONG, schema, think=True, max_think_tokens=24, self_correct=False)


def test_chunks_leave_room_for_reasoning(reasoned: ExtractionResult) -> None:
    assert reasoned.chunks > 1
    for chunk in reasoned.chunk_results:
        generation = chunk.chosen.generation
        assert generation.text.startswith("<think>")
        assert generation.stop_reason in ("complete", "closed-on-repetition", "closed-at-budget")
        assert chunk.chosen.valid


def test_the_merged_object_is_checked_against_the_schema(reasoned: ExtractionResult) -> None:
    merged: Attempt = reasoned.chosen
    assert merged.value is not None
    too_many = len(merged.value["equipment"]) > 1
    assert reasoned.valid is not too_many
    assert (
        any(f.path == "/equipment" and f.kind == SCHEMA_FINDING for f in merged.findings)
        is too_many
    )


def test_a_document_that_fits_is_not_chunked(small: Extractor) -> None:
    document = Document(text="Batch record BR-1001. Equipment used: EQ-01 and EQ-02.")
    result = small.extract(document, SCHEMA, think=False, self_correct=False)
    assert result.chunks == 1 and result.chunk_results == []
    record = result.to_dict()
    assert record["chunks"] == 1 and "chunk_results" not in record
    assert result.chosen.generation.stop_reason != "merged"


def test_too_many_chunks_is_refused_before_any_generation(small: Extractor) -> None:
    with pytest.raises(DocumentTooLongError, match=r"more than 1 chunks.*max_chunks"):
        small.extract(LONG, SCHEMA, think=False, max_chunks=1)


def test_a_schema_that_leaves_no_room_for_a_chunk_is_refused(small: Extractor) -> None:
    schema = {**SCHEMA, "description": " ".join(f"note{i}" for i in range(400))}
    with pytest.raises(DocumentTooLongError, match="cannot be split"):
        small.extract(LONG, schema, think=False)


def test_a_correction_that_cannot_fit_is_skipped_not_failed(small: Extractor) -> None:
    """A document that just fits: its second prompt (holding the first answer) does not."""
    from thinkjson_edge.pipeline.prompts import extraction_messages
    from thinkjson_edge.schema import load_schema

    # Unsatisfiable by construction, so attempt 2 is always due.
    schema = load_schema(
        {
            "type": "object",
            "properties": {"batch": {"type": "string"}},
            "required": ["batch"],
            "not": {"required": ["batch"]},
        }
    )
    room = small.engine.n_ctx - 64  # the closing reserve; no reasoning budget below

    def prompt_tokens(text: str) -> int:
        messages = extraction_messages(schema.text, text, think=False)
        return len(small.engine.tokenize(small.engine.render_chat(messages)))

    words = ["Batch record BR-1001."]
    while prompt_tokens(" ".join([*words, "filler"])) <= room - 8:
        words.append("filler")
    document = Document(text=" ".join(words), source="just-fits")
    assert room - 16 < prompt_tokens(document.text) <= room  # the first prompt just fits

    result = small.extract(document, schema, think=False)
    assert result.chunks == 1
    assert result.correction_skipped
    assert [a.number for a in result.attempts] == [1]
    assert result.to_dict()["correction_skipped"] is True
