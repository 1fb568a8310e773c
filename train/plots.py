"""A PNG of a stage's reward components (and loss) over steps, from its metrics rows.

Needs matplotlib (the ``eval`` or ``train`` extra); without it the plot is skipped
with a message and the CSV still holds every figure.
"""

from __future__ import annotations

import warnings
from pathlib import Path

_COMPONENT_ORDER = ("format", "json", "schema", "field_match", "noise", "grounding")


def reward_columns(rows: list[dict[str, float]]) -> list[str]:
    """The per-component reward columns of a stage's rows, in a stable order.

    GRPO logs ``rewards/<component>_reward/mean``; SCoRe logs ``attempt1/<component>`` and
    ``attempt2/<component>``.
    """
    names = {k for row in rows for k in row}
    picked = [k for k in names if k.startswith("rewards/") and k.endswith("/mean")]
    picked += [k for k in names if k.startswith(("attempt1/", "attempt2/"))]
    return sorted(picked)


def plot_rewards(rows: list[dict[str, float]], title: str, path: Path) -> Path | None:
    """Reward components (top) and loss and KL (bottom) against the step; None if not drawn."""
    columns = reward_columns(rows) or [
        k for k in ("mean_token_accuracy",) if any(k in row for row in rows)
    ]  # SFT logs no rewards: its token accuracy instead
    if not rows or not columns:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only; no display
        import matplotlib.pyplot as plt
    except ImportError:
        warnings.warn("matplotlib is not installed, so no plot was drawn", stacklevel=2)
        return None
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    colours = plt.get_cmap("tab10").colors
    for column in columns:
        steps = [row["step"] for row in rows if column in row]
        values = [row[column] for row in rows if column in row]
        label = column.removeprefix("rewards/").removesuffix("/mean").removesuffix("_reward")
        component = label.rpartition("/")[2]
        # One colour per component; attempt 2 of SCoRe dashed beside attempt 1.
        colour = (
            colours[_COMPONENT_ORDER.index(component) % 10]
            if component in _COMPONENT_ORDER
            else None
        )
        style = "--" if label.startswith("attempt2/") else "-"
        top.plot(steps, values, style, color=colour, marker="o", markersize=3, label=label)
    top.set_ylabel("reward / accuracy (0-1)")
    top.set_title(title)
    top.legend(fontsize=8, ncol=2)
    top.grid(alpha=0.3)
    for column in ("loss", "kl", "kl/attempt1", "kl/attempt2"):
        points = [(row["step"], row[column]) for row in rows if column in row]
        if points:
            bottom.plot(*zip(*points, strict=True), marker="o", markersize=3, label=column)
    bottom.set_xlabel("step")
    bottom.set_ylabel("loss / KL")
    bottom.legend(fontsize=8)
    bottom.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
