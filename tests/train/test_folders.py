"""Labelled folders read as training examples: gold folders, reviewed batch folders, bad rows.

Real files throughout: SROIE receipts copied from the fixtures, a batch output folder made by
a real ``Batch`` (manifest) with a review saved by the review screen's own ``Review.save``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from thinkjson_edge.train.folders import (
    BATCH_FOLDER_LAYOUT,
    GOLD_FOLDER_LAYOUT,
    read_labelled_folder,
)
from thinkjson_edge.train.sources import folder_split

from thinkjson_edge.batch.layout import result_path
from thinkjson_edge.batch.runner import Batch
from thinkjson_edge.errors import InputError
from thinkjson_edge.pipeline.documents import read_document
from thinkjson_edge.schema import load_schema
from thinkjson_edge.tui.review import Review

SROIE = Path(__file__).resolve().parent.parent / "fixtures" / "sroie"


def sroie_names(count: int) -> list[str]:
    return sorted(path.stem for path in SROIE.glob("*.txt"))[:count]


def gold_folder(root: Path, count: int = 3, *, split: bool = False) -> Path:
    """SROIE receipts with their gold, flat or in documents/ + gold/."""
    folder = root / "gold-folder"
    documents = folder / "documents" if split else folder
    gold = folder / "gold" if split else folder
    documents.mkdir(parents=True)
    gold.mkdir(exist_ok=True)
    shutil.copy(SROIE / "schema.json", folder / "schema.json")
    for name in sroie_names(count):
        shutil.copy(SROIE / f"{name}.txt", documents / f"{name}.txt")
        shutil.copy(SROIE / f"{name}.json", gold / f"{name}.json")
    return folder


@pytest.mark.parametrize("split", [False, True])
def test_a_gold_folder_gives_one_example_per_document_read_as_the_runtime_reads_it(
    tmp_path: Path, split: bool
) -> None:
    folder = gold_folder(tmp_path, split=split)
    found = read_labelled_folder(folder)
    assert found.layout == GOLD_FOLDER_LAYOUT
    assert [example.id for example in found.examples] == sroie_names(3)
    assert found.skipped == []
    for example in found.examples:
        document = found.documents[example.id]
        assert example.text == read_document(document).text
        assert example.gold == json.loads((SROIE / f"{example.id}.json").read_text())
        assert example.schema == load_schema(folder / "schema.json").schema


def test_bad_rows_are_skipped_with_their_reason_and_none_is_lost(tmp_path: Path) -> None:
    folder = gold_folder(tmp_path, count=3)
    first, second, third = sroie_names(3)
    (folder / f"{first}.json").write_text("{ not json", encoding="utf-8")
    (folder / f"{second}.json").write_text(json.dumps({"company": 5}), encoding="utf-8")
    (folder / f"{third}.txt").write_bytes(b"\x00\x01\x02 binary \xff" * 50)
    (folder / "lonely.txt").write_text("a receipt without gold\n", encoding="utf-8")
    (folder / "orphan.json").write_text(json.dumps({"company": "X"}), encoding="utf-8")
    (folder / "array.txt").write_text("TOTAL 1.00\n", encoding="utf-8")
    (folder / "array.json").write_text("[1, 2]", encoding="utf-8")
    (folder / "fine.txt").write_text("SHOP A\nTOTAL 1.00\n", encoding="utf-8")
    gold = {"company": "SHOP A", "date": "", "address": "", "total": "1.00"}
    (folder / "fine.json").write_text(json.dumps(gold), encoding="utf-8")

    found = read_labelled_folder(folder)

    assert [example.id for example in found.examples] == ["fine"]
    reasons = {row.name: row.reason for row in found.skipped}
    assert "not valid JSON" in reasons[first]
    assert "breaks the schema" in reasons[second]
    assert "cannot be read" in reasons[third]
    assert "not a JSON object" in reasons["array"]
    assert "no gold file" in reasons["lonely.txt"]
    assert "without a document" in reasons["orphan.json"]
    assert len(found.examples) + len(found.skipped) == 7  # every document or gold, once


def test_a_folder_of_neither_layout_is_refused_saying_what_it_lacks(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("text\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"neither schema\.json"):
        read_labelled_folder(tmp_path)


def test_a_batch_folder_gives_only_the_reviewed_results_with_the_latest_save(
    tmp_path: Path,
) -> None:
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    names = sroie_names(3)
    (in_dir / "sub").mkdir(parents=True)
    rels = [f"{names[0]}.txt", f"sub/{names[1]}.txt", f"{names[2]}.txt"]
    for name, rel in zip(names, rels, strict=True):
        shutil.copy(SROIE / f"{name}.txt", in_dir / rel)
    schema = load_schema(SROIE / "schema.json")

    def no_model():
        raise AssertionError("the folder is made without the model")

    with Batch(in_dir, out_dir, schema, no_model):
        pass  # writes the manifest, as every run does
    extracted = {"company": "WRONG", "date": "", "address": "", "total": "0.00"}
    for rel in rels:
        result_path(out_dir, rel).parent.mkdir(parents=True, exist_ok=True)
        result_path(out_dir, rel).write_text(json.dumps(extracted), encoding="utf-8")
    for name, rel in zip(names[:2], rels[:2], strict=True):
        review = Review.from_report(
            read_document(in_dir / rel), schema, {"value": extracted}, result_path(out_dir, rel)
        )
        review.set_value("/company", "FIRST FIX")
        review.save("tester")
        for key, value in json.loads((SROIE / f"{name}.json").read_text()).items():
            review.set_value(f"/{key}", value)
        review.save("tester")  # the latest save is the gold

    found = read_labelled_folder(out_dir)

    assert found.layout == BATCH_FOLDER_LAYOUT
    assert [example.id for example in found.examples] == [rels[0], rels[1]]
    for name, example in zip(names, found.examples, strict=False):
        assert example.gold == json.loads((SROIE / f"{name}.json").read_text())
        assert example.text == read_document(in_dir / example.id).text
    assert [(row.name, row.reason) for row in found.skipped] == [
        (rels[2], "not reviewed (no review record)")
    ]


def test_the_held_out_part_is_drawn_by_the_seed_and_never_trained_on(tmp_path: Path) -> None:
    shutil.copy(SROIE / "schema.json", tmp_path / "schema.json")
    for index in range(8):
        (tmp_path / f"r{index}.txt").write_text(f"SHOP {index}\nTOTAL {index}.00\n")
        gold = {"company": f"SHOP {index}", "date": "", "address": "", "total": f"{index}.00"}
        (tmp_path / f"r{index}.json").write_text(json.dumps(gold))
    examples = read_labelled_folder(tmp_path).examples
    split = folder_split(examples, train=100, heldout=3, seed=0)
    again = folder_split(examples, train=100, heldout=3, seed=0)
    other = folder_split(examples, train=100, heldout=3, seed=1)
    held = [example.id for example in split.heldout]
    assert held == [example.id for example in again.heldout]
    assert held != [example.id for example in other.heldout]
    assert len(held) == 3 and len(split.train) == 5
    assert not set(held) & {example.id for example in split.train}


def test_train_data_from_a_folder_writes_its_examples_in_the_published_columns(
    tmp_path: Path,
) -> None:
    from click.testing import CliRunner
    from thinkjson_edge.train.datasets_io import read_examples

    from thinkjson_edge.cli import main

    folder = gold_folder(tmp_path)
    out = tmp_path / "rows.jsonl"
    args = ["train", "data", "-c", "cpu-smoke", "--from", str(folder), "--out", str(out),
            "--set", "data.heldout_examples=0"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    rows = read_examples(out)
    assert [row.gold for row in rows] == [
        json.loads((SROIE / f"{name}.json").read_text()) for name in sroie_names(3)
    ]
    assert rows[0].text == read_document(folder / f"{sroie_names(1)[0]}.txt").text


def test_mixed_in_folders_add_every_example_to_training_and_leave_the_held_out_set(
    tmp_path: Path,
) -> None:
    from thinkjson_edge.train.config import config_from_dict
    from thinkjson_edge.train.sources import load_split

    folder = gold_folder(tmp_path / "gold", count=3)
    settings = {"data": {"source": "synthetic", "train_examples": 4, "heldout_examples": 2}}
    alone = load_split(config_from_dict(settings))
    settings["data"]["mixed_in"] = [str(folder)]
    mixed = load_split(config_from_dict(settings))
    assert mixed.heldout == alone.heldout
    assert len(mixed.train) == 4 + 3
    gold_texts = {e.text for e in read_labelled_folder(folder).examples}
    assert gold_texts <= {e.text for e in mixed.train}
    assert {e.text for e in alone.train} <= {e.text for e in mixed.train}


def test_ocr_habits_rewrite_only_the_mixed_in_examples(tmp_path: Path) -> None:
    from thinkjson_edge.train.config import config_from_dict
    from thinkjson_edge.train.sources import load_split

    folder = gold_folder(tmp_path / "gold", count=3)
    settings: dict = {"data": {"train_examples": 4, "heldout_examples": 2}}
    settings["data"]["mixed_in"] = [str(folder)]
    plain = load_split(config_from_dict(settings))
    settings["data"]["ocr_habits_share"] = 1.0
    styled = load_split(config_from_dict(settings))
    assert styled.heldout == plain.heldout
    by_id = {example.id: example for example in plain.train}
    changed = [e.id for e in styled.train if e != by_id[e.id]]
    gold_ids = {example.id for example in read_labelled_folder(folder).examples}
    assert changed and set(changed) <= gold_ids  # synthetic examples untouched
