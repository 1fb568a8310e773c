"""Labelled folders as training examples: a gold folder, or a batch folder with reviews.

Two layouts are read:

* a gold folder, the layout ``thinkjson-edge eval`` reads: ``schema.json``, the
  documents, and ``NAME.json`` gold beside them or in ``gold/``;
* a batch output folder (it has the batch manifest): a result counts only once a
  reviewer saved it, and its gold is the object of the latest save in the review record.

Documents are read with the runtime's own reader, so the text a model is trained on is
the text it is given at run time. A document or gold that cannot be used is skipped
with its reason, never dropped silently: every file of the folder is either an example
or a skipped row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thinkjson_edge.train.data import Example

from thinkjson_edge.batch.layout import (
    MANIFEST_NAME,
    RESULT_SUFFIX,
    REVIEW_RECORD_SUFFIX,
    review_record_path,
)
from thinkjson_edge.batch.manifest import read_manifest
from thinkjson_edge.errors import InputError, ThinkJsonError
from thinkjson_edge.evaluation.dataset import SCHEMA_FILE, find_dataset, load_gold
from thinkjson_edge.pipeline.documents import read_document
from thinkjson_edge.schema import Schema, check_schema, load_schema

GOLD_FOLDER_LAYOUT = "gold folder"
BATCH_FOLDER_LAYOUT = "reviewed batch folder"


@dataclass(frozen=True)
class SkippedRow:
    """A file of the folder that gives no example, and why."""

    name: str
    reason: str


@dataclass
class FolderExamples:
    """The examples of a labelled folder, its schema, and the rows that were skipped."""

    layout: str
    schema: Schema
    documents_root: Path  # the folder the documents' paths are shown relative to
    examples: list[Example] = field(default_factory=list)
    skipped: list[SkippedRow] = field(default_factory=list)
    documents: dict[str, Path] = field(default_factory=dict)  # example id -> its document


def is_labelled_folder(path: Path) -> bool:
    return path.is_dir() and (
        (path / MANIFEST_NAME).is_file() or (path / SCHEMA_FILE).is_file()
    )


def read_labelled_folder(folder: Path) -> FolderExamples:
    """Every usable example of ``folder``; InputError when it is neither layout."""
    if (folder / MANIFEST_NAME).is_file():
        return _read_batch_folder(folder)
    if (folder / SCHEMA_FILE).is_file():
        return _read_gold_folder(folder)
    raise InputError(
        f"{folder}: not a labelled folder: it has neither schema.json (a gold folder, "
        f"documents with NAME.json gold) nor {MANIFEST_NAME} (a batch output folder)"
    )


def _read_gold_folder(folder: Path) -> FolderExamples:
    dataset = find_dataset(folder)
    schema = load_schema(dataset.schema_path)
    found = FolderExamples(GOLD_FOLDER_LAYOUT, schema, folder)
    found.skipped += [SkippedRow(item.path, item.reason) for item in dataset.skipped]
    for case in dataset.cases:
        try:
            gold = load_gold(case)
        except InputError as exc:
            found.skipped.append(SkippedRow(case.name, str(exc)))
            continue
        _add(found, case.name, case.document, gold)
    return found


def _read_batch_folder(folder: Path) -> FolderExamples:
    manifest = read_manifest(folder)
    schema = check_schema(manifest["schema"], manifest["schema_source"])
    input_dir = Path(manifest["input_dir"])
    found = FolderExamples(BATCH_FOLDER_LAYOUT, schema, input_dir)
    for result in sorted(folder.rglob(f"*{RESULT_SUFFIX}")):
        if _is_hidden(result.relative_to(folder)) or result.name.endswith(REVIEW_RECORD_SUFFIX):
            continue
        rel = str(result.relative_to(folder)).removesuffix(RESULT_SUFFIX)
        record_path = review_record_path(result)
        if not record_path.is_file():
            found.skipped.append(SkippedRow(rel, "not reviewed (no review record)"))
            continue
        try:
            gold = _latest_saved(record_path)
        except InputError as exc:
            found.skipped.append(SkippedRow(rel, str(exc)))
            continue
        _add(found, rel, input_dir / rel, gold)
    return found


def _latest_saved(record_path: Path) -> Any:
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        return record["reviews"][-1]["saved"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise InputError(f"the review record {record_path.name} cannot be read ({exc})") from exc


def _add(found: FolderExamples, name: str, document: Path, gold: Any) -> None:
    """Add one example, or a skipped row saying what is wrong with it."""
    if not isinstance(gold, dict):
        found.skipped.append(SkippedRow(name, "the gold is not a JSON object"))
        return
    errors = found.schema.errors(gold)
    if errors:
        found.skipped.append(SkippedRow(name, f"the gold breaks the schema: {errors[0].message}"))
        return
    try:
        text = read_document(document).text
    except ThinkJsonError as exc:
        found.skipped.append(SkippedRow(name, f"the document cannot be read: {exc}"))
        return
    found.examples.append(Example(id=name, schema=found.schema.schema, text=text, gold=gold))
    found.documents[name] = document


def _is_hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)
