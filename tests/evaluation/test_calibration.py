"""Per-field confidence figures: AUROC, reliability bins, ECE, review capture, and the report."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_eval import PNG_MAGIC, hand_made_records, outcome_of

from thinkjson_edge.evaluation.calibration import (
    ReliabilityBin,
    ReviewCapture,
    auroc,
    expected_calibration_error,
    reliability_bins,
    review_capture,
    summarise_calibration,
)
from thinkjson_edge.evaluation.report import (
    CHART_RELIABILITY,
    compare_rows,
    draw_charts,
    render_markdown,
)
from thinkjson_edge.evaluation.summary import build_report

T, F = True, False

# The worked example used for ECE, AUROC and the report (8 fields, 4 of them wrong):
#   bin 9 [0.9, 1.0]: 0.9 T, 1.0 T, 0.95 T, 0.95 F -> mean 0.95, accuracy 0.75, gap 0.20
#   bin 5 [0.5, 0.6): 0.5 T, 0.58 F                 -> mean 0.54, accuracy 0.50, gap 0.04
#   bin 2 [0.2, 0.3): 0.2 F, 0.2 F                  -> mean 0.20, accuracy 0.00, gap 0.20
#   ECE = 4/8 * 0.20 + 2/8 * 0.04 + 2/8 * 0.20 = 0.10 + 0.01 + 0.05 = 0.16
# AUROC, right {0.9, 1.0, 0.95, 0.5} against wrong {0.95, 0.58, 0.2, 0.2}, 16 pairs:
#   0.9 beats 0.58, 0.2, 0.2 (3); 1.0 beats all four (4); 0.95 ties 0.95 and beats
#   the other three (3.5); 0.5 beats 0.2, 0.2 (2) -> 12.5 / 16 = 0.78125
WORKED = [0.9, 1.0, 0.95, 0.95, 0.5, 0.58, 0.2, 0.2]
WORKED_RIGHT = [T, T, T, F, T, F, F, F]


# --- AUROC -------------------------------------------------------------------------


def test_perfect_separation_is_1() -> None:
    assert auroc([0.9, 0.8, 0.3, 0.1], [T, T, F, F]) == 1.0  # all 4 pairs right > wrong


def test_reversed_order_is_0() -> None:
    assert auroc([0.1, 0.2, 0.8, 0.9], [T, T, F, F]) == 0.0  # all 4 pairs wrong > right


def test_all_ties_is_one_half() -> None:
    assert auroc([0.5] * 4, [T, F, T, F]) == 0.5  # 4 tied pairs at 0.5 each: 2 / 4


def test_a_tie_counts_one_half() -> None:
    # Right {0.9, 0.5}, wrong {0.5, 0.2}: 1 + 1 + 0.5 + 1 = 3.5 of 4 pairs.
    assert auroc([0.9, 0.5, 0.5, 0.2], [T, T, F, F]) == 0.875


def test_worked_example_auroc() -> None:
    assert auroc(WORKED, WORKED_RIGHT) == 0.78125


@pytest.mark.parametrize(
    ("confidences", "correct"),
    [([0.2, 0.9], [T, T]), ([0.2, 0.9], [F, F]), ([], [])],
    ids=["all right", "all wrong", "no fields"],
)
def test_auroc_without_both_classes_is_none(confidences: list[float], correct: list[bool]) -> None:
    assert auroc(confidences, correct) is None


def brute_force_auroc(confidences: list[float], correct: list[bool]) -> float | None:
    """Every (right, wrong) pair compared: the definition, in O(n²)."""
    right = [c for c, ok in zip(confidences, correct, strict=True) if ok]
    wrong = [c for c, ok in zip(confidences, correct, strict=True) if not ok]
    if not right or not wrong:
        return None
    wins = sum(1.0 if r > w else 0.5 if r == w else 0.0 for r in right for w in wrong)
    return wins / (len(right) * len(wrong))


# Confidences from a small grid as well as anywhere in [0, 1], so that ties are common.
confidence = st.one_of(
    st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), st.floats(min_value=0.0, max_value=1.0)
)
fields = st.lists(st.tuples(confidence, st.booleans()), max_size=60)


@given(fields)
def test_auroc_equals_the_pair_count(pairs: list[tuple[float, bool]]) -> None:
    confidences = [c for c, _ in pairs]
    correct = [ok for _, ok in pairs]
    assert auroc(confidences, correct) == brute_force_auroc(confidences, correct)


# --- reliability bins and ECE ------------------------------------------------------


def test_worked_example_bins() -> None:
    bins = reliability_bins(WORKED, WORKED_RIGHT)
    assert len(bins) == 10
    assert [b.count for b in bins] == [0, 0, 2, 0, 0, 2, 0, 0, 0, 4]
    assert bins[9].mean_confidence == pytest.approx(0.95)
    assert bins[9].accuracy == 0.75
    assert bins[5].mean_confidence == pytest.approx(0.54)
    assert bins[5].accuracy == 0.5
    assert (bins[2].mean_confidence, bins[2].accuracy) == (pytest.approx(0.2), 0.0)
    assert bins[0] == ReliabilityBin(0.0, 0.1, 0, None, None)  # empty bins are listed


def test_worked_example_ece() -> None:
    assert expected_calibration_error(WORKED, WORKED_RIGHT) == pytest.approx(0.16)


def test_bin_edges() -> None:
    below_tenth = math.nextafter(0.1, 0.0)
    bins = reliability_bins([0.0, below_tenth, 0.1, 0.9, 1.0], [T, T, F, F, T])
    assert [b.count for b in bins] == [2, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert bins[1].accuracy == 0.0  # 0.1 exactly starts bin 1
    assert (bins[1].lower, bins[1].upper) == (0.1, 0.2)
    assert (bins[9].lower, bins[9].upper) == (0.9, 1.0)
    assert bins[9].mean_confidence == pytest.approx(0.95)  # 0.9 and 1.0 in the last bin


def test_a_confidence_on_an_edge_is_not_put_one_bin_low_by_rounding() -> None:
    # 0.29 * 100 is 28.999999999999996 in floating point, but 0.29 == 29 / 100.
    bins = reliability_bins([0.29], [T], bins=100)
    assert bins[29].count == 1 and bins[28].count == 0


def test_one_bin_ece_is_the_overall_gap() -> None:
    # Mean confidence 0.8, accuracy 1/4: ECE = |0.25 - 0.8| = 0.55.
    assert expected_calibration_error([0.8] * 4, [T, F, F, F], bins=1) == pytest.approx(0.55)


def test_a_perfectly_calibrated_set_has_ece_0() -> None:
    # Bin 5 holds four fields at 0.5, two of them right: accuracy equals confidence.
    assert expected_calibration_error([0.5] * 4, [T, F, T, F]) == 0.0


def test_ece_of_no_fields_is_none_and_its_bins_are_empty() -> None:
    assert expected_calibration_error([], []) is None
    assert all(b.count == 0 and b.accuracy is None for b in reliability_bins([], []))


@given(fields, st.integers(min_value=1, max_value=20))
def test_every_field_lands_in_the_bin_whose_edges_hold_it(
    pairs: list[tuple[float, bool]], count: int
) -> None:
    confidences = [c for c, _ in pairs]
    bins = reliability_bins(confidences, [ok for _, ok in pairs], bins=count)
    assert sum(b.count for b in bins) == len(pairs)
    for b in bins:
        inside = [c for c in confidences if b.lower <= c < b.upper or (c == 1.0 == b.upper)]
        assert b.count == len(inside)
    ece = expected_calibration_error(confidences, [ok for _, ok in pairs], bins=count)
    assert ece is None if not pairs else 0.0 <= ece <= 1.0


# --- review capture ----------------------------------------------------------------

# Ten fields; lowest confidence first, equal ones in input order (index: confidence, right?):
#   5: 0.1 T | 0: 0.2 F | 2: 0.2 T | 8: 0.3 F | 1: 0.5 T | 4: 0.5 F | 7: 0.5 F | 6: 0.7 T |
#   9: 0.8 T | 3: 0.9 F            -> 5 wrong fields: 0, 3, 4, 7, 8
REVIEW = [0.2, 0.5, 0.2, 0.9, 0.5, 0.1, 0.7, 0.5, 0.3, 0.8]
REVIEW_RIGHT = [F, T, T, F, F, T, T, F, F, T]


def test_review_capture_with_ties() -> None:
    captured = review_capture(REVIEW, REVIEW_RIGHT, shares=(0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0))
    assert captured == [
        ReviewCapture(0.0, 0, 0, 5, 0.0),
        ReviewCapture(0.05, 1, 0, 5, 0.0),  # ceil(0.5) = 1: field 5, right
        ReviewCapture(0.1, 1, 0, 5, 0.0),
        # Field 0 (wrong) precedes field 2 (right) at 0.2, being first in the input.
        ReviewCapture(0.2, 2, 1, 5, 0.2),
        ReviewCapture(0.3, 3, 1, 5, 0.2),  # field 2, right
        # Fields 8 (wrong) and 1 (right); 4 and 7, tied with 1 at 0.5, come after it.
        ReviewCapture(0.5, 5, 2, 5, 0.4),
        ReviewCapture(1.0, 10, 5, 5, 1.0),
    ]


def test_the_reviewed_count_is_not_raised_by_float_rounding() -> None:
    # 0.07 * 100 is 7.000000000000001 in floating point, whose ceiling is 8; 7 % of 100
    # fields is 7 fields.
    (captured,) = review_capture([0.5] * 100, [F] * 100, shares=(0.07,))
    assert (captured.reviewed, captured.wrong_caught) == (7, 7)


def test_review_capture_without_wrong_fields() -> None:
    captured = review_capture([0.3, 0.7], [T, T])
    assert [c.reviewed for c in captured] == [1, 1, 1, 1, 1]  # ceil(X * 2) for X up to 0.5
    assert all(c.wrong_caught == 0 and c.wrong_total == 0 for c in captured)
    assert all(c.caught_fraction is None for c in captured)


def test_review_capture_of_no_fields_reviews_nothing() -> None:
    assert review_capture([], [], shares=(0.5,)) == [ReviewCapture(0.5, 0, 0, 0, None)]


# --- summary and errors ------------------------------------------------------------


def test_summary_is_plain_json_with_every_figure() -> None:
    summary = summarise_calibration(WORKED, WORKED_RIGHT)
    assert json.loads(json.dumps(summary, allow_nan=False)) == summary
    assert set(summary) == {"fields", "wrong", "auroc", "ece", "bins", "review"}
    assert (summary["fields"], summary["wrong"], summary["auroc"]) == (8, 4, 0.78125)
    assert summary["ece"] == pytest.approx(0.16)
    assert summary["bins"][9] == {
        "lower": 0.9,
        "upper": 1.0,
        "count": 4,
        "mean_confidence": pytest.approx(0.95),
        "accuracy": 0.75,
    }
    # Lowest first: 0.2 F, 0.2 F, 0.5 T, 0.58 F, ...; ceil(0.5 * 8) = 4 reviewed, 3 caught.
    assert summary["review"][-1] == {
        "share": 0.5,
        "reviewed": 4,
        "wrong_caught": 3,
        "wrong_total": 4,
        "caught_fraction": 0.75,
    }
    assert [r["reviewed"] for r in summary["review"]] == [1, 1, 2, 3, 4]


def test_summary_of_no_fields() -> None:
    summary = summarise_calibration([], [])
    assert (summary["fields"], summary["wrong"], summary["auroc"], summary["ece"]) == (
        0,
        0,
        None,
        None,
    )
    assert len(summary["bins"]) == 10 and summary["review"][0]["caught_fraction"] is None


FUNCTIONS = [auroc, reliability_bins, expected_calibration_error, review_capture]


@pytest.mark.parametrize("function", [*FUNCTIONS, summarise_calibration])
def test_sequences_of_different_lengths_are_refused(function: Any) -> None:
    with pytest.raises(ValueError, match="3 confidences but 2 correctness flags"):
        function([0.1, 0.2, 0.3], [T, F])


@pytest.mark.parametrize("function", [*FUNCTIONS, summarise_calibration])
@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan])
def test_a_confidence_outside_0_1_is_refused_with_its_index(function: Any, bad: float) -> None:
    with pytest.raises(ValueError, match=r"confidence at index 2 is .*outside \[0, 1\]"):
        function([0.1, 1.0, bad], [T, F, T])


@pytest.mark.parametrize("bins", [0, -3, 2.5, True])
def test_a_bin_count_that_is_not_a_positive_integer_is_refused(bins: Any) -> None:
    with pytest.raises(ValueError, match="bins must be a positive integer"):
        reliability_bins([0.5], [T], bins=bins)


@pytest.mark.parametrize("share", [-0.01, 1.01, math.nan])
def test_a_review_share_outside_0_1_is_refused(share: float) -> None:
    with pytest.raises(ValueError, match="review share"):
        review_capture([0.5], [T], shares=(0.1, share))


# --- the report --------------------------------------------------------------------


def report_with_calibration(tmp_path: Path, calibration: dict[str, Any] | None) -> dict[str, Any]:
    report = build_report(outcome_of(hand_made_records()), tmp_path)
    report["summary"]["calibration"] = calibration
    return report


def test_markdown_has_the_calibration_section(tmp_path: Path) -> None:
    calibration = summarise_calibration(WORKED, WORKED_RIGHT)
    markdown = render_markdown(report_with_calibration(tmp_path, calibration), [])
    section = markdown.split("## Confidence and calibration\n", 1)[1].split("\n## ", 1)[0]
    assert "| fields | 8 |" in section
    assert "| wrong fields | 4 |" in section
    assert "| AUROC | 0.781 |" in section
    assert "| ECE | 0.160 |" in section
    assert "over 10 equal-width bins" in section
    assert "| review the lowest | fields reviewed | wrong fields caught | caught % |" in section
    assert "| 5 % | 1 | 1 of 4 | 25.0 |" in section  # 0.2 F first
    assert "| 50 % | 4 | 3 of 4 | 75.0 |" in section


def test_markdown_without_wrong_fields_prints_dashes(tmp_path: Path) -> None:
    calibration = summarise_calibration([0.3, 0.7], [T, T])
    markdown = render_markdown(report_with_calibration(tmp_path, calibration), [])
    assert "| AUROC | n/a |" in markdown
    assert "| 5 % | 1 | 0 of 0 | n/a |" in markdown


def test_markdown_without_calibration_has_no_section(tmp_path: Path) -> None:
    report = report_with_calibration(tmp_path, None)
    assert "Confidence and calibration" not in render_markdown(report, [])
    del report["summary"]["calibration"]  # a report from before calibration existed
    assert "Confidence and calibration" not in render_markdown(report, [])


def test_the_reliability_chart_is_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    calibration = summarise_calibration(WORKED, WORKED_RIGHT)
    drawn = draw_charts(report_with_calibration(tmp_path, calibration), tmp_path)
    assert CHART_RELIABILITY in drawn
    data = (tmp_path / CHART_RELIABILITY).read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000


@pytest.mark.parametrize(
    "calibration",
    [None, summarise_calibration([], [])],
    ids=["no calibration", "no fields"],
)
def test_no_reliability_chart_without_fields(
    tmp_path: Path, calibration: dict[str, Any] | None
) -> None:
    pytest.importorskip("matplotlib")
    drawn = draw_charts(report_with_calibration(tmp_path, calibration), tmp_path)
    assert CHART_RELIABILITY not in drawn
    assert not (tmp_path / CHART_RELIABILITY).exists()


def test_compare_shows_auroc_and_ece(tmp_path: Path) -> None:
    a = report_with_calibration(tmp_path, summarise_calibration(WORKED, WORKED_RIGHT))
    b = report_with_calibration(tmp_path, None)
    rows = {row.figure: row for row in compare_rows(a, b)}
    assert (rows["confidence AUROC"].a, rows["confidence AUROC"].b) == (0.78125, None)
    assert rows["confidence ECE"].a == pytest.approx(0.16)
    assert rows["confidence ECE"].difference is None
