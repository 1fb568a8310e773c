"""Splitting long documents into chunks and merging the chunks' objects (no model).

Token counts here are words (whitespace-separated), or characters per four for the
check that a chunk is counted whole; the rules do not depend on the tokenizer.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from thinkjson_edge.engine.generation import Generation
from thinkjson_edge.errors import DocumentTooLongError
from thinkjson_edge.pipeline.chunk_merge import ChunkValue, merge_chunk_values
from thinkjson_edge.pipeline.chunking import Chunk, split_document
from thinkjson_edge.pipeline.findings import CONFLICT, SCHEMA, Finding
from thinkjson_edge.pipeline.result import Attempt


def words(text: str) -> int:
    return len(text.split())


def paragraphs(count: int, size: int = 9) -> list[str]:
    return [f"P{i} " + " ".join(f"w{i}.{j}" for j in range(size - 1)) for i in range(count)]


def check_chunks(text: str, chunks: list[Chunk], budget: int, count=words) -> None:
    """The invariants every split keeps."""
    assert [c.number for c in chunks] == list(range(1, len(chunks) + 1))
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.tokens == count(chunk.text) <= budget
        assert chunk.text == chunk.text.strip()
    for before, after in pairwise(chunks):
        assert before.start < after.start and before.end < after.end  # progress
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.end))
    assert all(index in covered for index, char in enumerate(text) if not char.isspace())


# -- splitting -------------------------------------------------------------------------


def test_chunks_end_on_paragraphs_and_neighbours_share_whole_paragraphs() -> None:
    paras = paragraphs(20)
    text = "\n\n".join(paras)
    chunks = split_document(text, 30, words, overlap=10)
    check_chunks(text, chunks, 30)
    assert len(chunks) > 3
    starts = {text.index(p) for p in paras}
    ends = {text.index(p) + len(p) for p in paras}
    for chunk in chunks:
        assert chunk.start in starts and chunk.end in ends
    for before, after in pairwise(chunks):
        shared = text[after.start : before.end]
        assert shared in paras  # exactly one 9-word paragraph fits in a 10-token overlap


def test_no_overlap_when_asked_for_none() -> None:
    text = "\n\n".join(paragraphs(12))
    chunks = split_document(text, 30, words, overlap=0)
    check_chunks(text, chunks, 30)
    for before, after in pairwise(chunks):
        assert after.start > before.end


def test_overlap_is_at_most_half_a_chunk() -> None:
    text = "\n\n".join(paragraphs(30, size=3))
    chunks = split_document(text, 12, words, overlap=100)
    check_chunks(text, chunks, 12)
    for before, after in pairwise(chunks):
        assert words(text[after.start : before.end]) <= 6


def test_a_long_paragraph_is_split_on_lines_then_sentences() -> None:
    lines = [f"Line {i} has five words." for i in range(12)]
    sentences = " ".join(f"Sentence {i} is here now." for i in range(12))
    text = "Intro paragraph.\n\n" + "\n".join(lines) + "\n\n" + sentences
    chunks = split_document(text, 16, words, overlap=0)
    check_chunks(text, chunks, 16)
    line_ends = {text.index(line) + len(line) for line in lines}
    sentence_ends = {m + len("now.") for m in _find_all(text, "now.")}
    for chunk in chunks[:-1]:
        assert chunk.end in line_ends | sentence_ends | {len("Intro paragraph.")}
    assert any(chunk.end in line_ends for chunk in chunks)
    assert any(chunk.end in sentence_ends for chunk in chunks)


def test_text_without_boundaries_is_cut_by_tokens_between_words() -> None:
    text = " ".join(f"x{i}" for i in range(100))
    chunks = split_document(text, 30, words, overlap=5)
    check_chunks(text, chunks, 30)
    for chunk in chunks:
        assert chunk.text.startswith("x") and not chunk.text.endswith(" ")
        assert chunk.start == 0 or text[chunk.start - 1] == " "  # never inside a word
    for before, after in pairwise(chunks):
        assert words(text[after.start : before.end]) == 5  # the overlap falls back to words


def test_a_chunk_is_counted_whole() -> None:
    """With a tokenizer whose counts do not add up over pieces, every chunk still fits."""

    def quarter_chars(text: str) -> int:
        return -(-len(text) // 4)

    text = "\n\n".join(paragraphs(40, size=5))
    chunks = split_document(text, 40, quarter_chars, overlap=8)
    check_chunks(text, chunks, 40, count=quarter_chars)


def test_offsets_are_document_wide_in_unicode_text() -> None:
    paras = [f"Æble {i}: ünïcödé wörds ✓ here" for i in range(10)]
    text = "\n\n\n".join(paras)
    chunks = split_document(text, 14, words, overlap=6)
    check_chunks(text, chunks, 14)
    assert chunks[-1].text.endswith(paras[-1])


def test_too_many_chunks_is_refused() -> None:
    text = "\n\n".join(paragraphs(50))
    with pytest.raises(DocumentTooLongError, match=r"more than 4 chunks"):
        split_document(text, 30, words, overlap=5, max_chunks=4)


def _find_all(text: str, needle: str) -> list[int]:
    found, at = [], text.find(needle)
    while at >= 0:
        found.append(at)
        at = text.find(needle, at + 1)
    return found


# -- merging ---------------------------------------------------------------------------

DOCUMENT = (
    "Batch BR-1001 of Aspirin. Equipment: blender BL-02, mixer MX-1.\n\n"
    "Test assay 99.1 pass. Operator Claire Dubois. Yield 48000 units.\n\n"
    "Batch BR-2002 was the rework. Equipment: press PR-7, Blender BL-02.\n\n"
    "Operator claire   DUBOIS signed. Test dissolution 87 pass."
)


def chunk(number: int, first: str, last: str) -> Chunk:
    """The chunk from the paragraph that starts with ``first`` to the end of ``last``."""
    start = DOCUMENT.index(first)
    end = DOCUMENT.index(last) + len(last)
    return Chunk(number, start, end, DOCUMENT[start:end], 0)


CHUNK_1 = chunk(1, "Batch BR-1001", "48000 units.")
CHUNK_2 = chunk(2, "Test assay", "PR-7, Blender BL-02.")  # shares the second paragraph
CHUNK_3 = chunk(3, "Operator claire", "87 pass.")

SCHEMA_ROOT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "batch": {"type": "string"},
        "units": {"type": "integer"},
        "equipment": {"type": "array", "items": {"type": "string"}},
        "tests": {"type": "array", "items": {"$ref": "#/$defs/test"}},
        "operator": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "signed": {"type": "boolean"}},
        },
    },
    "$defs": {
        "test": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "result": {"type": "string"}},
        }
    },
}


def merge(*parts: tuple[Chunk, dict[str, Any]]) -> tuple[Any, list[Finding]]:
    merged = merge_chunk_values(SCHEMA_ROOT, [ChunkValue(c, v) for c, v in parts])
    return merged.value, merged.conflicts


def test_arrays_are_concatenated_without_repeats_from_other_chunks() -> None:
    value, conflicts = merge(
        (CHUNK_1, {"equipment": ["BL-02", "MX-1", "MX-1"]}),
        (CHUNK_2, {"equipment": ["PR-7", "bl-02 ", "MX-1"]}),
        (CHUNK_3, {"equipment": []}),
    )
    # Repeats within one chunk stay as the model gave them; across chunks they go.
    assert value == {"equipment": ["BL-02", "MX-1", "MX-1", "PR-7"]}
    assert conflicts == []


def test_a_record_seen_twice_in_the_shared_text_becomes_one() -> None:
    value, _ = merge(
        (CHUNK_1, {"tests": [{"name": "assay"}]}),
        (CHUNK_2, {"tests": [{"name": "Assay", "result": "pass"}]}),
    )
    assert value == {"tests": [{"name": "assay", "result": "pass"}]}


def test_partial_records_outside_the_shared_text_stay_apart() -> None:
    value, _ = merge(
        (CHUNK_2, {"tests": [{"name": "assay", "result": "pass"}]}),
        (CHUNK_3, {"tests": [{"name": "dissolution"}, {"result": "pass"}]}),
    )
    assert value == {
        "tests": [{"name": "assay", "result": "pass"}, {"name": "dissolution"}, {"result": "pass"}]
    }


def test_records_that_disagree_are_not_merged_even_in_the_shared_text() -> None:
    value, _ = merge(
        (CHUNK_1, {"tests": [{"name": "assay", "result": "99.1"}]}),
        (CHUNK_2, {"tests": [{"name": "assay", "result": "pass"}]}),
    )
    assert len(value["tests"]) == 2


def test_a_scalar_takes_the_first_grounded_value() -> None:
    value, conflicts = merge(
        (CHUNK_1, {"batch": "BR-9999"}),  # not in its chunk
        (CHUNK_2, {"batch": "BR-2002"}),
        (CHUNK_3, {"batch": "BR-1001"}),  # in the document, but not in its chunk
    )
    assert value == {"batch": "BR-2002"}
    assert conflicts == []


def test_without_a_grounded_value_the_first_present_one_is_kept() -> None:
    value, _ = merge(
        (CHUNK_1, {"batch": None, "operator": {"signed": True}}),
        (CHUNK_2, {"batch": "  "}),
        (CHUNK_3, {"batch": "B-7", "operator": {"signed": False}}),
    )
    assert value == {"batch": "B-7", "operator": {"signed": True}}
    value, _ = merge((CHUNK_1, {"batch": None}), (CHUNK_2, {"batch": None}))
    assert value == {"batch": None}


def test_numbers_are_grounded_by_their_digits() -> None:
    value, conflicts = merge((CHUNK_3, {"units": 12}), (CHUNK_1, {"units": 48000}))
    assert value == {"units": 48000}
    assert conflicts == []


def test_two_grounded_values_are_a_conflict() -> None:
    value, conflicts = merge(
        (CHUNK_1, {"batch": "BR-1001"}),
        (CHUNK_2, {"batch": "BR-2002"}),
    )
    assert value == {"batch": "BR-1001"}
    assert [(c.kind, c.path) for c in conflicts] == [(CONFLICT, "/batch")]
    assert "'BR-1001' (chunk 1)" in conflicts[0].message
    assert "'BR-2002' (chunk 2)" in conflicts[0].message


def test_values_equal_after_normalisation_are_no_conflict() -> None:
    value, conflicts = merge(
        (CHUNK_1, {"operator": {"name": "Claire Dubois"}}),
        (CHUNK_3, {"operator": {"name": "claire DUBOIS"}}),
    )
    assert value == {"operator": {"name": "Claire Dubois"}}
    assert conflicts == []


def test_objects_merge_property_by_property_in_schema_order() -> None:
    value, conflicts = merge(
        (CHUNK_1, {"operator": {"name": "Claire Dubois"}, "batch": "BR-1001"}),
        (CHUNK_3, {"operator": {"signed": True, "name": "Somebody Else"}, "extra": 1}),
    )
    assert value == {
        "batch": "BR-1001",
        "operator": {"name": "Claire Dubois", "signed": True},
        "extra": 1,
    }
    assert list(value) == ["batch", "operator", "extra"]
    assert list(value["operator"]) == ["name", "signed"]
    assert conflicts == []  # "Somebody Else" is not in the document


def test_a_nested_conflict_names_its_path() -> None:
    _, conflicts = merge(
        (CHUNK_1, {"operator": {"name": "Claire Dubois"}}),
        (CHUNK_2, {"operator": {"name": "press PR-7"}}),  # wrong, but its chunk has it
        (CHUNK_3, {"operator": {"name": "Aspirin"}}),  # not in chunk 3
    )
    assert [c.path for c in conflicts] == ["/operator/name"]
    assert "chunk 3" not in conflicts[0].message


def test_positional_arrays_are_taken_whole() -> None:
    schema = {"type": "object", "properties": {"pair": {"prefixItems": [{}, {}]}}}
    merged = merge_chunk_values(
        schema,
        [
            ChunkValue(CHUNK_1, {"pair": ["BR-1001", "BL-02"]}),
            ChunkValue(CHUNK_2, {"pair": ["BR-2002", "PR-7"]}),
        ],
    )
    assert merged.value == {"pair": ["BR-1001", "BL-02"]}


def test_nothing_to_merge() -> None:
    merged = merge_chunk_values(SCHEMA_ROOT, [])
    assert merged.value is None and merged.conflicts == []


def test_a_conflict_is_not_a_schema_error() -> None:
    generation = Generation("{}", None, "{}", "merged", None, 0, 0, 0, 0, 0.0, 0.0, 0.0)
    conflict = Finding(CONFLICT, "/batch", "different values")
    attempt = Attempt(1, generation, {}, [conflict], [])
    assert attempt.valid
    assert attempt.rank() == (0, 0, 0)
    invalid = Attempt(2, generation, {}, [conflict, Finding(SCHEMA, "", "x")], [])
    assert invalid.rank() == (1, 1, 0)
