"""Metrics of a training stage, logged to ``metrics.csv`` and to TensorBoard.

The CSV has one row per logged step, a ``step`` column first and one column per
metric (new metrics add columns; the file is rewritten, so it is always whole).
TensorBoard event files go to ``<stage>/tensorboard`` when the ``tensorboard``
package is installed and the config asks for it.
"""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import Any


class MetricsLog:
    """Rows of ``{metric: value}`` by step, mirrored to CSV and optionally TensorBoard."""

    def __init__(self, folder: Path, *, tensorboard: bool) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.csv_path = folder / "metrics.csv"
        self.rows: list[dict[str, Any]] = []
        self._writer: Any = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(folder / "tensorboard"))
            except ImportError:
                warnings.warn(
                    "tensorboard is not installed, so metrics go to metrics.csv only "
                    "(pip install tensorboard)",
                    stacklevel=2,
                )

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        numbers = {k: float(v) for k, v in metrics.items() if _is_number(v)}
        if not numbers:
            return
        self.rows.append({"step": step, **numbers})
        self._write_csv()
        if self._writer is not None:
            for name, value in numbers.items():
                self._writer.add_scalar(name, value, step)
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def last(self, name: str) -> float | None:
        for row in reversed(self.rows):
            if name in row:
                return row[name]
        return None

    def _write_csv(self) -> None:
        columns = ["step", *sorted({k for row in self.rows for k in row} - {"step"})]
        with self.csv_path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.rows)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def read_metrics(path: Path) -> list[dict[str, float]]:
    """The rows of a ``metrics.csv`` (empty cells left out)."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [
            {k: float(v) for k, v in row.items() if v not in ("", None)}
            for row in csv.DictReader(handle)
        ]


def all_finite(rows: list[dict[str, float]], names: list[str]) -> bool:
    return all(math.isfinite(row[name]) for row in rows for name in names if name in row)


def trainer_callback(log: MetricsLog) -> Any:
    """A transformers TrainerCallback that sends every ``on_log`` to ``log``."""
    from transformers import TrainerCallback

    class _ToMetricsLog(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
            if logs and state.is_world_process_zero:  # one writer under accelerate
                log.log(state.global_step, logs)

    return _ToMetricsLog()
