"""Training bounded by wall-clock time, with checkpoints to resume from.

A site asks for "an hour on this machine", not for a number of steps, and a step's time
depends on the machine and the documents. So the learning rate follows the larger of two
fractions, steps done and time spent: it warms up, then decays linearly to zero when
either runs out, and the run stops (and is saved) when the time is spent. Time spent
before a resume counts, so a killed and resumed run ends when an uninterrupted one would.

Every checkpoint gets a mark file written after the trainer has finished writing it; a
checkpoint without the mark (a kill during the save) is never resumed from.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARK_FILE = "thinkjson-budget.json"
_CHECKPOINT = re.compile(r"checkpoint-(\d+)$")


@dataclass
class TimeBudget:
    """Seconds allowed (0: no bound) and the seconds spent, this run and before it."""

    seconds: float
    spent_before: float = 0.0
    started: float = field(default_factory=time.monotonic)

    def spent(self) -> float:
        return self.spent_before + time.monotonic() - self.started

    def used_up(self) -> bool:
        return self.seconds > 0 and self.spent() >= self.seconds

    def progress(self, step: int, max_steps: int) -> float:
        """How far the run is, in [0, 1]: the larger of the step and the time fractions."""
        done = step / max_steps if max_steps > 0 else 0.0
        if self.seconds > 0:
            done = max(done, self.spent() / self.seconds)
        return min(done, 1.0)


def learning_rate_factor(progress: float, step: int, warmup_steps: int) -> float:
    """Linear warm-up over the first steps, then linear decay to zero at progress 1."""
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    return warm * max(0.0, 1.0 - progress)


def last_complete_checkpoint(checkpoints: Path) -> tuple[Path, float] | None:
    """The latest checkpoint whose save finished, with the seconds spent when it was made."""
    found = []
    for folder in checkpoints.glob("checkpoint-*") if checkpoints.is_dir() else ():
        match = _CHECKPOINT.search(folder.name)
        mark = folder / MARK_FILE
        if match and mark.is_file():
            try:
                spent = float(json.loads(mark.read_text(encoding="utf-8"))["spent_seconds"])
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a mark cut short: the checkpoint is not trusted either
            found.append((int(match.group(1)), folder, spent))
    if not found:
        return None
    _, folder, spent = max(found)
    return folder, spent


def budget_callback(
    budget: TimeBudget,
    peak_learning_rate: float,
    warmup_steps: int,
    say: Callable[[str], None],
) -> Any:
    """A TrainerCallback that sets the learning rate, stops on time, marks checkpoints and
    reports progress with the time left. Use it with a constant scheduler: the rate it
    sets before each step is the one the optimizer uses."""
    from transformers import TrainerCallback

    class _Budget(TrainerCallback):
        def __init__(self) -> None:
            self.rate = 0.0

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            progress = budget.progress(state.global_step, state.max_steps)
            self.rate = peak_learning_rate * learning_rate_factor(
                progress, state.global_step, warmup_steps
            )
            for group in kwargs["optimizer"].param_groups:
                group["lr"] = self.rate

        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            if budget.used_up():
                control.should_training_stop = True
                control.should_save = True

        def on_save(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir() and state.is_world_process_zero:
                mark = {"spent_seconds": budget.spent(), "step": state.global_step}
                (folder / MARK_FILE).write_text(json.dumps(mark) + "\n", encoding="utf-8")

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
            if logs is not None and "loss" in logs:
                logs["learning_rate"] = self.rate  # the scheduler's own figure is constant
                say(_progress_line(budget, state, logs))

    return _Budget()


def _progress_line(budget: TimeBudget, state: Any, logs: dict[str, Any]) -> str:
    step, total = state.global_step, state.max_steps
    spent = budget.spent()
    left_by_steps = spent / max(step, 1) * (total - step)
    left = min(left_by_steps, budget.seconds - spent) if budget.seconds > 0 else left_by_steps
    return (
        f"step {step}/{total}, loss {float(logs['loss']):.3f}, "
        f"{spent / 60:.1f} min spent, about {max(left, 0.0) / 60:.1f} min left"
    )
