"""The compiler benchmark runs on any folder of either layout and counts correctly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.model

BENCH = Path(__file__).resolve().parents[2] / "bench" / "schemas.py"
SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer"}, "s": {"type": "string"}},
    "required": ["n"],
}


def test_both_layouts_side_by_side(tmp_path: Path) -> None:
    maskbench = tmp_path / "maskbench" / "subset-a"
    maskbench.mkdir(parents=True)
    (maskbench / "one.json").write_text(
        json.dumps(
            {
                "schema": SCHEMA,
                "tests": [
                    {"valid": True, "data": {"n": 1}},
                    # Undeclared properties: admitted by the permissive grammar measured here.
                    {"valid": True, "data": {"n": 1, "x": {"deep": [1]}, "y": 2}},
                    # Keys out of declared order: admitted once put in declared order.
                    {"valid": True, "data": {"s": "a", "n": 1}},
                    {"valid": False, "data": {"n": "1"}},
                    {"valid": False, "data": {"n": 1.5}},
                ],
            }
        )
    )
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "minimum.json").write_text(
        json.dumps(
            [
                {
                    "description": "minimum 5",
                    "schema": {"type": "integer", "minimum": 5},
                    "tests": [
                        {"description": "ok", "data": 6, "valid": True},
                        {"description": "low", "data": 4, "valid": False},
                    ],
                }
            ]
        )
    )
    done = subprocess.run(
        [sys.executable, str(BENCH), str(tmp_path / "maskbench"), str(suite), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(done.stdout)
    ours = report["ours"]["subsets"]
    assert ours["subset-a"]["compiled"] == 1.0
    assert ours["subset-a"]["valid_accepted"] == pytest.approx(2 / 3, abs=1e-3)
    assert ours["subset-a"]["valid_accepted_in_order"] == 1.0
    assert ours["subset-a"]["check_ms_p50"] is not None
    assert ours["subset-a"]["invalid_rejected_with_validator"] == 1.0
    assert ours["minimum"]["valid_accepted"] == 1.0
    assert ours["minimum"]["invalid_rejected_by_grammar"] == 1.0  # integer bounds: grammar
    assert ours["subset-a"]["invalid_rejected_by_grammar"] == 1.0
    assert report["ours"]["total"]["schemas"] == 2
    assert set(report) == {"ours", "stock"}
