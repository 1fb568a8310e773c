"""The eval cache keys a scan by how OCR reads it, so a change of reading is not hidden by a
result read the old way (the real OCR and the real model, on the real receipt scan)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from scan_material import FIXTURES, RECEIPT, SCHEMA, TRANSCRIPT

from thinkjson_edge.evaluation.dataset import find_dataset
from thinkjson_edge.evaluation.run import EvalSettings, run_evaluation
from thinkjson_edge.pipeline import ocr_lines
from thinkjson_edge.pipeline.extractor import ExtractOptions


@pytest.mark.model
def test_a_scan_is_read_again_when_the_reading_changes_and_a_text_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "receipts"
    folder.mkdir()
    shutil.copy(SCHEMA, folder / "schema.json")
    for name, document in (("scan", RECEIPT), ("text", TRANSCRIPT)):
        shutil.copy(document, folder / f"{name}{document.suffix}")
        shutil.copy(FIXTURES / "006.json", folder / f"{name}.json")
    settings = EvalSettings(device="cpu", options=ExtractOptions(think=False, self_correct=False))

    def computed() -> list[str]:
        outcome = run_evaluation(find_dataset(folder), tmp_path / "report", settings)
        return sorted(record.name for record in outcome.records if not record.cached)

    assert computed() == ["scan", "text"]
    assert computed() == []  # both from the cache
    monkeypatch.setattr(ocr_lines, "BOX_GAP", " ")  # boxes of a line joined by a space
    assert computed() == ["scan"]
