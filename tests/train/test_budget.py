"""The time budget of a training run: its learning-rate curve and the checkpoints it trusts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from thinkjson_edge.train.budget import (
    MARK_FILE,
    TimeBudget,
    last_complete_checkpoint,
    learning_rate_factor,
)


def test_the_rate_warms_up_then_decays_to_zero_when_the_run_is_done() -> None:
    assert learning_rate_factor(0.0, 0, warmup_steps=4) == pytest.approx(0.25)
    assert learning_rate_factor(0.0, 3, warmup_steps=4) == pytest.approx(1.0)
    assert learning_rate_factor(0.5, 10, warmup_steps=4) == pytest.approx(0.5)
    assert learning_rate_factor(1.0, 10, warmup_steps=4) == 0.0
    assert learning_rate_factor(0.25, 0, warmup_steps=0) == pytest.approx(0.75)


def test_progress_is_the_larger_of_steps_and_time_and_counts_time_before_a_resume() -> None:
    started = time.monotonic()
    budget = TimeBudget(seconds=100.0, spent_before=60.0, started=started)
    assert budget.progress(step=1, max_steps=10) == pytest.approx(0.6, abs=0.01)
    assert budget.progress(step=9, max_steps=10) == pytest.approx(0.9)
    assert not budget.used_up()
    assert TimeBudget(seconds=100.0, spent_before=100.0).used_up()
    unbounded = TimeBudget(seconds=0.0, spent_before=1e6)
    assert unbounded.progress(step=5, max_steps=10) == pytest.approx(0.5)
    assert not unbounded.used_up()


def test_only_checkpoints_whose_save_finished_are_resumed_from(tmp_path: Path) -> None:
    assert last_complete_checkpoint(tmp_path / "none yet") is None
    for step, mark in ((10, {"spent_seconds": 50.0}), (20, {"spent_seconds": 99.5}), (30, None)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if mark is not None:
            (folder / MARK_FILE).write_text(json.dumps(mark))
    (tmp_path / "checkpoint-40").mkdir()
    (tmp_path / "checkpoint-40" / MARK_FILE).write_text('{"spent_sec')  # cut short by a kill
    assert last_complete_checkpoint(tmp_path) == (tmp_path / "checkpoint-20", 99.5)
