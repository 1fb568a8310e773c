"""Labelled examples rewritten in OCR's habits: real SROIE receipts, values kept as copies."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from thinkjson_edge.train.config import ConfigError, config_from_dict
from thinkjson_edge.train.data import Example
from thinkjson_edge.train.folders import read_labelled_folder
from thinkjson_edge.train.ocr_habits import ocr_styled, with_ocr_habits

SROIE = Path(__file__).resolve().parent.parent / "fixtures" / "sroie"


def receipts() -> list[Example]:
    return read_labelled_folder(SROIE).examples


def test_at_share_zero_the_examples_come_back_unchanged() -> None:
    examples = receipts()
    assert with_ocr_habits(examples, 0.0, seed=0) == examples


def test_values_stay_copies_and_change_only_in_case_and_spacing() -> None:
    for seed in range(20):
        for before, after in zip(receipts(), with_ocr_habits(receipts(), 1.0, seed), strict=True):
            assert after.id == before.id and after.schema == before.schema
            for key, value in before.gold.items():
                if value in before.text:
                    assert after.gold[key] in after.text, (seed, before.id, key)
                # The rewrite changes only case, spacing and currency spacing.
                assert _bare(after.gold[key]) == _bare(value)


def test_the_habits_show_up_in_the_text() -> None:
    texts = [
        example.text for seed in range(20) for example in with_ocr_habits(receipts(), 1.0, seed)
    ]
    original = "\n".join(example.text for example in receipts())
    assert " : " in original and any(" : " not in text for text in texts)
    assert original.upper() == original  # SROIE's transcripts are typed in capitals
    assert any(text != text.upper() for text in texts)  # ...OCR reads the printed case
    assert len({text for text in texts}) > len(receipts())


def test_an_amount_joins_or_leaves_its_currency_in_text_and_gold_alike() -> None:
    example = Example(id="x", schema={}, text="TOTAL RM 8.20\nPAID $5", gold={"total": "RM 8.20"})
    seen = set()
    for seed in range(60):
        styled = ocr_styled(example, random.Random(seed))
        assert styled.gold["total"] in styled.text
        seen.add(styled.gold["total"].lower())
    assert {"rm 8.20", "rm8.20"} <= seen


def test_a_value_that_would_stop_being_a_copy_keeps_the_example_as_it_was() -> None:
    # The gold ends in the space before a colon: once the colon rule takes that space out
    # of the text, the value is no longer in it, so the example must stay as it was.
    example = Example(id="x", schema={}, text="TOTAL : 12.00\nSHOP", gold={"label": "TOTAL "})
    kept = styled = 0
    for seed in range(50):
        result = ocr_styled(example, random.Random(seed))
        if result is example:
            kept += 1
        else:
            styled += 1
            assert result.gold["label"] in result.text
            assert "TOTAL :" in result.text or "Total :" in result.text  # no colon rule
    assert kept and styled


def test_the_share_is_a_checked_setting() -> None:
    with pytest.raises(ConfigError, match=r"data.ocr_habits_share must be between 0 and 1"):
        config_from_dict({"data": {"ocr_habits_share": 1.5}})


def _bare(value: str) -> str:
    return "".join(value.lower().split())
