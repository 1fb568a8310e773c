"""Finding optional properties left out while the document prints their label and a value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from thinkjson_edge import Extractor
from thinkjson_edge.pipeline.documents import read_document
from thinkjson_edge.pipeline.labelled_keys import labelled_omissions, with_required

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCHEMA = {
    "type": "object",
    "properties": {
        "batch_number": {"type": "string"},
        "qa_reviewer": {"type": "string"},
        "approvedBy": {"type": "string"},
        "site": {"type": "string", "title": "Manufacturing plant"},
        "deviations": {"type": "array", "items": {"type": "string"}},
        "id": {"type": "string"},
    },
    "required": ["batch_number"],
}


def test_the_readme_example_asks_for_its_reviewer() -> None:
    schema = json.loads((EXAMPLES / "batch-record.schema.json").read_text())
    text = (EXAMPLES / "batch-record.txt").read_text()
    closed_early = {
        "product": "Sterile Saline Solution 0.9% w/v, 500 mL bag",
        "batch_number": "SAL-24-0917",
        "date_of_manufacture": "2024-09-17",
        "released": True,
    }
    # "Deviations: one minor deviation ..." labels an array, which is not asked for.
    assert labelled_omissions(schema, closed_early, text) == ["qa_reviewer"]
    assert labelled_omissions(schema, {**closed_early, "qa_reviewer": "x"}, text) == []


def test_labels_are_read_from_keys_and_titles_in_any_case() -> None:
    text = (
        "QA REVIEWER: Dr. Helen Okafor\nApproved by ....... Tom Okafor\nManufacturing plant\tLyon"
    )
    assert labelled_omissions(SCHEMA, {}, text) == ["qa_reviewer", "approvedBy", "site"]
    assert labelled_omissions(SCHEMA, {"site": "Lyon"}, text) == ["qa_reviewer", "approvedBy"]


def test_a_label_needs_a_separator_and_a_value() -> None:
    unasked = [
        "QA reviewer:",  # nothing after it
        "QA reviewer: n/a",
        "QA reviewer: ______",
        "QA reviewer: -",
        "QA reviewer: pending",
        "The QA reviewer signed it",  # prose, no separator
        "Senior-QA reviewers: Tom",  # another word
        "id: 7",  # too short a name to tell a label
        "Deviations: DEV-1",  # not a scalar
        "Batch number: B-1",  # required: the grammar already asks for it
    ]
    for line in unasked:
        assert labelled_omissions(SCHEMA, {}, line) == [], line


def test_with_required_adds_keys_once_and_leaves_the_schema_alone() -> None:
    asking = with_required(SCHEMA, ["qa_reviewer", "batch_number"])
    assert asking["required"] == ["batch_number", "qa_reviewer"]
    assert SCHEMA["required"] == ["batch_number"]
    assert asking["properties"] is SCHEMA["properties"]


@pytest.mark.model
def test_an_omitted_labelled_key_is_asked_for_and_reported(extractor: Extractor) -> None:
    schema = json.loads((EXAMPLES / "batch-record.schema.json").read_text())
    document = read_document(EXAMPLES / "batch-record.txt")
    plain = extractor.extract(document, schema, ask_labelled=False)
    assert plain.value is not None and "qa_reviewer" not in plain.value  # what is asked for
    asked = extractor.extract(document, schema)
    first = asked.attempts[0]
    assert first.asked_keys == ("qa_reviewer",)
    assert first.asked_kept
    assert asked.value == {**plain.value, "qa_reviewer": "Dr. Helen Okafor"}
    record = json.loads(asked.to_json())["attempts"][0]
    assert (record["asked_keys"], record["asked_kept"]) == (["qa_reviewer"], True)
    reviewer = next(v for v in record["values"] if v["path"] == "/qa_reviewer")
    assert reviewer["copied"] and reviewer["confidence"] >= 0.5
