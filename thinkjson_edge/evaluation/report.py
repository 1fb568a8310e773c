"""Writing an evaluation report (``report.json``, ``report.md``, PNG charts) and comparing two.

matplotlib is imported only when charts are drawn, with the Agg backend (no display).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thinkjson_edge.files import atomic_target, write_atomically

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
CHART_FIELD_F1 = "field_f1.png"
CHART_TRANSITIONS = "transitions.png"
CHART_SECONDS = "seconds.png"
CHART_RELIABILITY = "reliability.png"
CHARTS_MISSING = (
    "matplotlib is not installed, so no charts were drawn; "
    "`pip install 'thinkjson-edge[eval]'` adds it"
)
VIEW_TITLES = {"attempt1": "attempt 1", "attempt2": "attempt 2", "kept": "kept (output)"}
DASH = "n/a"

Warn = Callable[[str], None]


# --- number formatting -------------------------------------------------------------


def pct(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f}"


def frac(value: float | None) -> str:
    return DASH if value is None else f"{value:.3f}"


def seconds(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f}"


# --- writing -----------------------------------------------------------------------


def write_report(report: dict[str, Any], report_dir: Path, warn: Warn) -> list[Path]:
    """Write report.json, the charts (when matplotlib is there) and report.md; their paths."""
    written = [report_dir / REPORT_JSON]
    write_atomically(written[0], json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    try:
        charts = draw_charts(report, report_dir)
    except ImportError:
        warn(CHARTS_MISSING)
        charts = None
    markdown = report_dir / REPORT_MD
    write_atomically(markdown, render_markdown(report, charts))
    return [*written, *(report_dir / c for c in charts or []), markdown]


# --- report.md ---------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _views(summary: dict[str, Any]) -> list[str]:
    return [view for view in VIEW_TITLES if view in summary]


def figure_rows(summary: dict[str, Any], views: Sequence[str]) -> list[list[str]]:
    """The headline figures of each view, one row per figure."""
    picks: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("documents", lambda v: str(v["documents"])),
        ("no JSON output (documents)", lambda v: str(v["no_json_output"])),
        ("JSON output (documents)", lambda v: str(v["json_output"])),
        ("mean field match %", lambda v: pct(v["mean_match_pct"])),
        ("mean noise %", lambda v: pct(v["mean_noise_pct"])),
        ("exact match %", lambda v: pct(v["exact_match_pct"])),
        ("micro precision", lambda v: frac(v["micro"]["precision"])),
        ("micro recall", lambda v: frac(v["micro"]["recall"])),
        ("micro F1", lambda v: frac(v["micro"]["f1"])),
        ("schema-valid %", lambda v: pct(v["schema_valid_pct"])),
        ("grounded strings %", lambda v: pct(v["grounding"]["rate_pct"])),
    ]
    return [[label, *(pick(summary[view]) for view in views)] for label, pick in picks]


def _settings_lines(report: dict[str, Any]) -> list[str]:
    s, data, run = report["settings"], report["dataset"], report["run"]
    rows = [
        *_model_rows(s),
        ["think", f"on, budget {s['max_think_tokens']} tokens" if s["think"] else "off"],
        ["self-correct", "on" if s["self_correct"] else "off"],
        ["ask for labelled keys", "on" if s.get("ask_labelled") else "off"],
        ["limit", str(s["limit"] or "none")],
        ["data", s["data_dir"]],
        ["documents evaluated", str(data["evaluated"])],
        ["skipped files", str(data["skipped"])],
        ["documents that failed", str(data["errors"])],
        ["computed / from cache", f"{run['computed']} / {run['cached']}"],
        ["device", s["device"]],
        ["date", s["date"]],
        ["thinkjson-edge", s["version"]],
    ]
    return _table(["setting", "value"], rows)


def _model_rows(settings: dict[str, Any]) -> list[list[str]]:
    """The model, or the LoRA adapter and the base it ran on (``model_sha256`` is the base's)."""
    adapter = settings.get("adapter")
    if not adapter:
        return [["model", f"{settings['model']} (sha256 {settings['model_sha256'][:12]}…)"]]
    return [
        ["model", f"{settings['model']}, a LoRA adapter (sha256 {adapter['sha256'][:12]}…)"],
        ["base model", f"{adapter['base']} (sha256 {settings['model_sha256'][:12]}…)"],
    ]


def _self_correction_lines(sc: dict[str, Any] | None) -> list[str]:
    if sc is None:
        return ["Self-correction was off: one attempt per document.", ""]
    lines = [
        f"Criterion: {sc['criterion']}. {sc['second_attempts']} of {sc['problems']} documents "
        f"had a second attempt; the second was kept for {sc['kept_second']}. Attempt 2 is "
        "attempt 1 carried over where no second attempt ran.",
        "",
    ]
    lines += _table(
        ["accuracy@t1 %", "accuracy@t2 %", "kept %", "Δ(t1,t2)", "Δ i→c", "Δ c→i"],
        [
            [
                pct(sc["accuracy_t1_pct"]),
                pct(sc["accuracy_t2_pct"]),
                pct(sc["accuracy_kept_pct"]),
                pct(sc["delta_pct"]),
                pct(sc["delta_i_to_c_pct"]),
                pct(sc["delta_c_to_i_pct"]),
            ]
        ],
    )
    lines += _table(
        ["attempt 1 → attempt 2", "right→right", "wrong→right", "right→wrong", "wrong→wrong"],
        [
            [what, *(str(sc[key][t]) for t in _TRANSITIONS)]
            for what, key in (("documents (exact match)", "documents"), ("gold fields", "fields"))
        ],
    )
    return lines


_TRANSITIONS = ("right_to_right", "wrong_to_right", "right_to_wrong", "wrong_to_wrong")


def _field_lines(summary: dict[str, Any]) -> list[str]:
    kept = summary["kept"]["per_field"]
    first = summary["attempt1"]["per_field"]
    rows = [
        [
            name,
            str(prf["tp"]),
            str(prf["fp"]),
            str(prf["fn"]),
            frac(prf["precision"]),
            frac(prf["recall"]),
            frac(prf["f1"]),
            frac(first.get(name, {}).get("f1")),
        ]
        for name, prf in kept.items()
    ]
    return _table(["field", "TP", "FP", "FN", "P", "R", "F1", "F1 attempt 1"], rows)


def _timing_lines(timing: dict[str, Any]) -> list[str]:
    rate = timing["tokens_per_second"]
    rows = [
        [
            str(timing["documents_timed"]),
            seconds(timing["seconds_mean"]),
            seconds(timing["seconds_median"]),
            seconds(timing["seconds_max"]),
            seconds(timing["seconds_total"]),
            DASH if rate is None else f"{rate:.1f}",
            str(timing["cached_documents"]),
        ]
    ]
    header = ["documents", "mean s", "median s", "max s", "total s", "tokens/s", "from cache"]
    return _table(header, rows)


def _calibration_lines(calibration: dict[str, Any]) -> list[str]:
    lines = [
        "The confidence of each predicted field against whether it equals the gold. "
        "AUROC: the chance that a right field has a higher confidence than a wrong one "
        "(0.5 is chance). ECE: the gap between confidence and accuracy over "
        f"{len(calibration['bins'])} equal-width bins, weighted by their fields.",
        "",
    ]
    rows = [
        ["fields", str(calibration["fields"])],
        ["wrong fields", str(calibration["wrong"])],
        ["AUROC", frac(calibration["auroc"])],
        ["ECE", frac(calibration["ece"])],
    ]
    lines += _table(["figure", "value"], rows)
    review = [
        [
            f"{100 * r['share']:g} %",
            str(r["reviewed"]),
            f"{r['wrong_caught']} of {r['wrong_total']}",
            DASH if r["caught_fraction"] is None else pct(100 * r["caught_fraction"]),
        ]
        for r in calibration["review"]
    ]
    header = ["review the lowest", "fields reviewed", "wrong fields caught", "caught %"]
    return lines + _table(header, review)


def _document_lines(documents: list[dict[str, Any]]) -> list[str]:
    rows = []
    for doc in documents:
        kept = doc["scores"]["kept"]
        chosen = doc["attempts"][doc["chosen_attempt"] - 1] if doc["attempts"] else None
        grounded = f"{chosen['strings_found']}/{chosen['strings_checked']}" if chosen else DASH
        rows.append(
            [
                doc["name"],
                "yes" if kept["has_output"] else "no",
                pct(100 * kept["match"]),
                DASH if kept["noise"] is None else pct(100 * kept["noise"]),
                "yes" if kept["exact_match"] else "no",
                "yes" if chosen and chosen["valid"] else "no",
                grounded,
                str(len(doc["attempts"])),
                str(doc["chosen_attempt"] or DASH),
                seconds(doc["seconds"]),
                "yes" if doc["cached"] else "no",
                doc["error"] or "",
            ]
        )
    header = [
        "document",
        "JSON",
        "match %",
        "noise %",
        "exact",
        "schema-valid",
        "grounded",
        "attempts",
        "kept",
        "seconds",
        "cached",
        "error",
    ]
    return _table(header, rows)


def render_markdown(report: dict[str, Any], charts: list[str] | None) -> str:
    """report.md: settings, figures, self-correction, per field, calibration (when there is
    one), timing, charts, documents."""
    summary = report["summary"]
    views = _views(summary)
    title = Path(report["settings"]["data_dir"]).name or "data"
    lines = [f"# Evaluation of {report['settings']['model']} on {title}", ""]
    lines += _settings_lines(report)
    lines += ["## Figures", ""]
    lines += _table(["figure", *(VIEW_TITLES[v] for v in views)], figure_rows(summary, views))
    lines += ["## Self-correction (SCoRe)", ""]
    lines += _self_correction_lines(summary["self_correction"])
    lines += ["## Per field (kept attempt)", ""]
    lines += _field_lines(summary)
    calibration = summary.get("calibration")
    if calibration is not None:
        lines += ["## Confidence and calibration", ""]
        lines += _calibration_lines(calibration)
    lines += ["## Time", "", "Seconds per document as measured when it was computed.", ""]
    lines += _timing_lines(summary["timing"])
    lines += ["## Charts", ""]
    if charts is None:
        lines += [CHARTS_MISSING + ".", ""]
    else:
        lines += [f"![{name}]({name})" for name in charts] + [""]
    lines += ["## Documents", ""]
    lines += _document_lines(report["documents"])
    skipped = report["dataset"]["skipped_files"]
    if skipped:
        lines += ["## Skipped files", ""]
        lines += [f"- `{s['path']}`: {s['reason']}" for s in skipped] + [""]
    lines += [
        "Definitions: README.md, section “Measuring quality”, and thinkjson_edge/metrics.py.",
        "",
    ]
    return "\n".join(lines)


# --- charts ------------------------------------------------------------------------


def draw_charts(report: dict[str, Any], report_dir: Path) -> list[str]:
    """Draw the PNG charts into ``report_dir``; their file names. ImportError without matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    summary = report["summary"]
    drawn = []
    for name, draw in (
        (CHART_FIELD_F1, _draw_field_f1),
        (CHART_TRANSITIONS, _draw_transitions),
        (CHART_SECONDS, _draw_seconds),
        (CHART_RELIABILITY, _draw_reliability),
    ):
        figure = draw(pyplot, summary, report["documents"])
        if figure is None:
            continue
        try:
            _save_atomically(figure, report_dir / name)
        finally:
            pyplot.close(figure)
        drawn.append(name)
    return drawn


def _save_atomically(figure: Any, path: Path) -> None:
    with atomic_target(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110)


def _draw_field_f1(pyplot: Any, summary: dict[str, Any], documents: list[Any]) -> Any:
    views = _views(summary)
    fields = sorted({name for view in views for name in summary[view]["per_field"]})
    if not fields:
        return None
    figure, axes = pyplot.subplots(figsize=(max(5.0, 1.2 * len(fields) + 2), 4))
    width = 0.8 / len(views)
    for i, view in enumerate(views):
        per_field = summary[view]["per_field"]
        values = [(per_field.get(name, {}).get("f1") or 0.0) for name in fields]
        positions = [x + (i - (len(views) - 1) / 2) * width for x in range(len(fields))]
        axes.bar(positions, values, width, label=VIEW_TITLES[view])
    axes.set_xticks(range(len(fields)), fields, rotation=30, ha="right")
    axes.set_ylim(0, 1)
    axes.set_ylabel("F1")
    axes.set_title("F1 per field")
    axes.legend()
    figure.tight_layout()
    return figure


def _draw_transitions(pyplot: Any, summary: dict[str, Any], documents: list[Any]) -> Any:
    sc = summary["self_correction"]
    if sc is None:
        return None
    labels = ["right→right", "wrong→right", "right→wrong", "wrong→wrong"]
    colours = ["#4c9a2a", "#1f77b4", "#d62728", "#999999"]
    figure, panes = pyplot.subplots(1, 2, figsize=(9, 3.8))
    for pane, (title, key) in zip(
        panes, (("documents (exact match)", "documents"), ("gold fields", "fields")), strict=True
    ):
        counts = [sc[key][t] for t in _TRANSITIONS]
        pane.bar(labels, counts, color=colours)
        pane.set_ylim(0, max(counts) * 1.15 + 1)  # room for the labels above the bars
        pane.yaxis.get_major_locator().set_params(integer=True)
        pane.set_title(title)
        pane.tick_params(axis="x", rotation=20)
        for x, count in enumerate(counts):
            pane.annotate(str(count), (x, count), ha="center", va="bottom")
    figure.suptitle("Attempt 1 → attempt 2")
    figure.tight_layout()
    return figure


def _draw_seconds(pyplot: Any, summary: dict[str, Any], documents: list[Any]) -> Any:
    if not documents:
        return None
    names = [d["name"] for d in documents]
    values = [d["seconds"] for d in documents]
    colours = ["#ff7f0e" if len(d["attempts"]) > 1 else "#1f77b4" for d in documents]
    figure, axes = pyplot.subplots(figsize=(max(5.0, 0.25 * len(names) + 2), 4))
    axes.bar(range(len(names)), values, color=colours)
    axes.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    axes.set_ylabel("seconds")
    axes.set_title("Time per document (orange: two attempts)")
    figure.tight_layout()
    return figure


def _draw_reliability(pyplot: Any, summary: dict[str, Any], documents: list[Any]) -> Any:
    calibration = summary.get("calibration")
    if calibration is None or not calibration["fields"]:
        return None
    bins = calibration["bins"]
    filled = [b for b in bins if b["count"]]
    figure, axes = pyplot.subplots(figsize=(5.5, 4.5))
    counts = axes.twinx()  # field counts behind, on their own scale
    centres = [(b["lower"] + b["upper"]) / 2 for b in bins]
    counts.bar(
        centres,
        [b["count"] for b in bins],
        bins[0]["upper"] - bins[0]["lower"],
        color="#cccccc",
        edgecolor="#999999",
    )
    counts.set_ylim(0, max(b["count"] for b in bins) * 1.15)  # the tallest bar below the top
    counts.set_ylabel("fields in bin")
    counts.yaxis.get_major_locator().set_params(integer=True)
    axes.set_zorder(counts.get_zorder() + 1)  # the curve over the bars
    axes.patch.set_visible(False)
    axes.plot([0, 1], [0, 1], linestyle="--", color="#777777", label="perfect calibration")
    axes.plot(
        [b["mean_confidence"] for b in filled],
        [b["accuracy"] for b in filled],
        marker="o",
        color="#1f77b4",
        label="accuracy per bin",
    )
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("mean confidence")
    axes.set_ylabel("accuracy (share of right fields)")
    axes.set_title(
        f"Reliability: ECE {frac(calibration['ece'])}, AUROC {frac(calibration['auroc'])}"
    )
    axes.legend(loc="upper left")
    figure.tight_layout()
    return figure


# --- compare -----------------------------------------------------------------------


@dataclass(frozen=True)
class CompareRow:
    figure: str
    a: float | None
    b: float | None
    kind: str  # "count", "pct", "frac", "seconds" or "rate": how to print it

    @property
    def difference(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a


def _get(report: dict[str, Any], *keys: str) -> float | None:
    node: Any = report["summary"]
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, int | float) else None


_COMPARED: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("documents", ("kept", "documents"), "count"),
    ("no JSON output (documents)", ("kept", "no_json_output"), "count"),
    ("JSON output (documents)", ("kept", "json_output"), "count"),
    ("mean field match %", ("kept", "mean_match_pct"), "pct"),
    ("mean noise %", ("kept", "mean_noise_pct"), "pct"),
    ("exact match %", ("kept", "exact_match_pct"), "pct"),
    ("micro precision", ("kept", "micro", "precision"), "frac"),
    ("micro recall", ("kept", "micro", "recall"), "frac"),
    ("micro F1", ("kept", "micro", "f1"), "frac"),
    ("schema-valid %", ("kept", "schema_valid_pct"), "pct"),
    ("grounded strings %", ("kept", "grounding", "rate_pct"), "pct"),
    ("SCoRe accuracy@t1 %", ("self_correction", "accuracy_t1_pct"), "pct"),
    ("SCoRe accuracy@t2 %", ("self_correction", "accuracy_t2_pct"), "pct"),
    ("SCoRe accuracy kept %", ("self_correction", "accuracy_kept_pct"), "pct"),
    ("SCoRe Δ(t1,t2) %", ("self_correction", "delta_pct"), "pct"),
    ("SCoRe Δ i→c %", ("self_correction", "delta_i_to_c_pct"), "pct"),
    ("SCoRe Δ c→i %", ("self_correction", "delta_c_to_i_pct"), "pct"),
    ("confidence AUROC", ("calibration", "auroc"), "frac"),
    ("confidence ECE", ("calibration", "ece"), "frac"),
    ("seconds per document", ("timing", "seconds_mean"), "seconds"),
    ("tokens/s", ("timing", "tokens_per_second"), "rate"),
)


def compare_rows(a: dict[str, Any], b: dict[str, Any]) -> list[CompareRow]:
    """The figures of two reports (kept attempt), then F1 of every field of either."""
    rows = [
        CompareRow(label, _get(a, *keys), _get(b, *keys), kind) for label, keys, kind in _COMPARED
    ]
    fields = sorted(set(a["summary"]["kept"]["per_field"]) | set(b["summary"]["kept"]["per_field"]))
    rows += [
        CompareRow(
            f"F1 {name}",
            _get(a, "kept", "per_field", name, "f1"),
            _get(b, "kept", "per_field", name, "f1"),
            "frac",
        )
        for name in fields
    ]
    return rows


def compare_notes(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Warnings a reader needs: the two reports cover different documents."""
    names_a = {d["name"] for d in a["documents"]}
    names_b = {d["name"] for d in b["documents"]}
    if names_a == names_b and a["settings"]["data_dir"] == b["settings"]["data_dir"]:
        return []
    if names_a == names_b:
        return ["the reports come from different data folders with the same document names"]
    return [
        f"the reports cover different documents (A: {len(names_a)}, B: {len(names_b)}, "
        f"{len(names_a & names_b)} in common), so their figures are not directly comparable"
    ]


def _describe(report: dict[str, Any]) -> str:
    s = report["settings"]
    think = "think" if s["think"] else "no-think"
    correct = "self-correct" if s["self_correct"] else "no-self-correct"
    return f"{s['model']}, {think}, {correct}, {report['dataset']['evaluated']} documents"


def _format(value: float | None, kind: str, signed: bool = False) -> str:
    if value is None:
        return DASH
    sign = "+" if signed and value > 0 else ""
    if kind == "count":
        return f"{sign}{value:.0f}"
    if kind == "frac":
        return f"{sign}{value:.3f}"
    return f"{sign}{value:.1f}"


def render_compare(
    rows: Sequence[CompareRow], a: tuple[str, dict[str, Any]], b: tuple[str, dict[str, Any]]
) -> str:
    """A plain-text table: figure, A, B, B - A."""
    lines = [f"A: {a[0]} ({_describe(a[1])})", f"B: {b[0]} ({_describe(b[1])})", ""]
    table = [["figure", "A", "B", "B - A"]] + [
        [
            row.figure,
            _format(row.a, row.kind),
            _format(row.b, row.kind),
            _format(row.difference, row.kind, signed=True),
        ]
        for row in rows
    ]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for index, cells in enumerate(table):
        first = cells[0].ljust(widths[0])
        rest = "  ".join(
            cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)
        )
        lines.append(f"{first}  {rest}".rstrip())
        if index == 0:
            lines.append("-" * (sum(widths) + 6))
    lines += [f"note: {note}" for note in compare_notes(a[1], b[1])]
    return "\n".join(lines) + "\n"


def compare_json(
    rows: Sequence[CompareRow], a: tuple[str, dict[str, Any]], b: tuple[str, dict[str, Any]]
) -> dict[str, Any]:
    return {
        "a": {"path": a[0], "settings": a[1]["settings"]},
        "b": {"path": b[0], "settings": b[1]["settings"]},
        "rows": [
            {"figure": r.figure, "a": r.a, "b": r.b, "difference": r.difference} for r in rows
        ],
        "notes": compare_notes(a[1], b[1]),
    }
