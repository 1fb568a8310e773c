"""How well per-field confidences tell right fields from wrong ones.

Pure Python and cheap to import: no numpy, no matplotlib.

Inputs
======
Every function takes two parallel sequences over the same predicted fields (leaves):
``confidences[i]`` in [0, 1] is the confidence given to field ``i`` and ``correct[i]``
says whether its value equals the gold. A field is *right* when ``correct[i]`` is true
and *wrong* otherwise. Sequences of different lengths, or a confidence outside
[0, 1] (NaN included), raise ``ValueError`` naming the first offending index.

Definitions
===========

AUROC
-----
The area under the ROC curve of the confidence as a score for "right": the chance
that a right field drawn at random has a higher confidence than a wrong field drawn
at random, a tie counting one half. With ``R`` right and ``W`` wrong fields,
``AUROC = U / (R * W)`` where ``U`` counts the (right, wrong) pairs in which the
right field has the higher confidence, plus 0.5 for each pair with equal
confidences (the Mann-Whitney U statistic). 1.0: every right field above every
wrong one; 0.0: the reverse; 0.5: no better than chance (all ties give exactly
0.5). ``None`` when ``R`` or ``W`` is 0. Computed from mid-ranks after one sort,
in ``O(n log n)``, and exactly: the rank sums are kept as integers.

Reliability bins
----------------
``[0, 1]`` is cut into ``B`` equal-width bins (10 by default). Bin ``i`` (from 0)
has the edges ``lower = i / B`` and ``upper = (i + 1) / B``, as floating-point
quotients, and holds the confidences ``c`` with ``lower <= c < upper``; the last
bin also holds ``c == 1.0``. So with ``B = 10``, 0.0 is in bin 0, 0.1 in bin 1 and
1.0 in bin 9. Per bin: ``count``, ``mean_confidence`` (the mean confidence of its
fields) and ``accuracy`` (the share of its fields that are right); both means are
``None`` for an empty bin. Every bin is listed, empty ones included.

Expected calibration error (ECE)
--------------------------------
``ECE = sum over bins of (count / n) * |accuracy - mean_confidence|`` with ``n``
the number of fields; empty bins add nothing. 0.0 when, in every bin, the share
of right fields equals the mean confidence. ``None`` when there are no fields.

Review capture
--------------
What a reviewer catches by checking the least confident fields first. For a share
``X`` in [0, 1] of the ``n`` fields, the ``ceil(X * n)`` fields with the lowest
confidences are reviewed (``X`` taken at its shortest decimal form, so 0.07 of 100
fields is 7, not 8). Equal confidences are ordered by their position in the input
(a stable sort), earlier first. Reported: the share, the fields reviewed, the wrong
fields among them (``wrong_caught``), all wrong fields (``wrong_total``) and
``caught_fraction = wrong_caught / wrong_total``, ``None`` when there are no wrong
fields.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from itertools import accumulate
from typing import Any

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_SHARES",
    "ReliabilityBin",
    "ReviewCapture",
    "auroc",
    "expected_calibration_error",
    "reliability_bins",
    "review_capture",
    "summarise_calibration",
]

DEFAULT_BINS = 10
DEFAULT_SHARES = (0.05, 0.1, 0.2, 0.3, 0.5)


@dataclass(frozen=True)
class ReliabilityBin:
    """One equal-width confidence bin: its edges, its fields, and how right they were."""

    lower: float
    upper: float
    count: int
    mean_confidence: float | None
    accuracy: float | None


@dataclass(frozen=True)
class ReviewCapture:
    """What reviewing the least confident ``share`` of the fields catches."""

    share: float
    reviewed: int
    wrong_caught: int
    wrong_total: int
    caught_fraction: float | None


# --- input checks ------------------------------------------------------------------


def _checked(
    confidences: Sequence[float], correct: Sequence[bool]
) -> tuple[list[float], list[bool]]:
    """Both sequences as lists, refusing what would make every figure meaningless."""
    if len(confidences) != len(correct):
        raise ValueError(
            f"{len(confidences)} confidences but {len(correct)} correctness flags; "
            "they must pair up one to one"
        )
    scores = [float(c) for c in confidences]
    for index, value in enumerate(scores):
        if not 0.0 <= value <= 1.0:  # also false for NaN
            raise ValueError(f"confidence at index {index} is {value!r}, outside [0, 1]")
    return scores, [bool(flag) for flag in correct]


def _checked_bins(bins: int) -> int:
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive integer, not {bins!r}")
    return bins


# --- AUROC -------------------------------------------------------------------------


def _doubled_rank_sum(scores: Sequence[float], flags: Sequence[bool]) -> int:
    """Twice the sum of the 1-based mid-ranks of the flagged scores (an integer)."""
    order = sorted(range(len(scores)), key=scores.__getitem__)
    total = 0
    start = 0
    while start < len(order):
        end = start
        while end < len(order) and scores[order[end]] == scores[order[start]]:
            end += 1
        # Positions start+1 .. end share the mid-rank (start + 1 + end) / 2.
        flagged = sum(flags[i] for i in order[start:end])
        total += flagged * (start + 1 + end)
        start = end
    return total


def auroc(confidences: Sequence[float], correct: Sequence[bool]) -> float | None:
    """The chance a right field outscores a wrong one (ties 0.5); None without both kinds."""
    scores, flags = _checked(confidences, correct)
    right = sum(flags)
    wrong = len(flags) - right
    if right == 0 or wrong == 0:
        return None
    doubled_u = _doubled_rank_sum(scores, flags) - right * (right + 1)
    return doubled_u / (2 * right * wrong)


# --- reliability and ECE -----------------------------------------------------------


def _bin_index(value: float, bins: int) -> int:
    """The bin whose edges, as computed, hold ``value``; not just ``int(value * bins)``,
    which rounding can put one bin off (0.29 * 100 is 28.999…)."""
    index = min(int(value * bins), bins - 1)
    while index < bins - 1 and value >= (index + 1) / bins:
        index += 1
    while index > 0 and value < index / bins:
        index -= 1
    return index


def _bins_of(scores: Sequence[float], flags: Sequence[bool], bins: int) -> list[ReliabilityBin]:
    members: list[list[int]] = [[] for _ in range(bins)]
    for index, value in enumerate(scores):
        members[_bin_index(value, bins)].append(index)
    result = []
    for number, indices in enumerate(members):
        count = len(indices)
        mean = math.fsum(scores[i] for i in indices) / count if count else None
        accuracy = sum(flags[i] for i in indices) / count if count else None
        result.append(ReliabilityBin(number / bins, (number + 1) / bins, count, mean, accuracy))
    return result


def reliability_bins(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = DEFAULT_BINS
) -> list[ReliabilityBin]:
    """Accuracy against mean confidence per equal-width bin: the reliability diagram's data."""
    scores, flags = _checked(confidences, correct)
    return _bins_of(scores, flags, _checked_bins(bins))


def _ece_of(table: Sequence[ReliabilityBin], fields: int) -> float | None:
    if fields == 0:
        return None
    gaps = (
        b.count / fields * abs(b.accuracy - b.mean_confidence)
        for b in table
        if b.accuracy is not None and b.mean_confidence is not None
    )
    return math.fsum(gaps)


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = DEFAULT_BINS
) -> float | None:
    """How far confidence is from accuracy, averaged over the bins by field count."""
    return _ece_of(reliability_bins(confidences, correct, bins), len(confidences))


# --- review capture ----------------------------------------------------------------


def _reviewed_count(share: float, fields: int) -> int:
    """``ceil(share * fields)`` with ``share`` at its shortest decimal form, so that float
    rounding (0.07 * 100 is 7.000000000000001) does not add a field."""
    if not 0.0 <= share <= 1.0:  # also false for NaN
        raise ValueError(f"review share {share!r} is outside [0, 1]")
    return math.ceil(Fraction(repr(float(share))) * fields)


def review_capture(
    confidences: Sequence[float],
    correct: Sequence[bool],
    shares: Sequence[float] = DEFAULT_SHARES,
) -> list[ReviewCapture]:
    """For each share, the wrong fields caught by reviewing that share, least confident first."""
    scores, flags = _checked(confidences, correct)
    order = sorted(range(len(scores)), key=scores.__getitem__)  # stable: ties by position
    caught_within = [0, *accumulate(int(not flags[i]) for i in order)]
    wrong_total = caught_within[-1]
    result = []
    for share in shares:
        reviewed = _reviewed_count(share, len(scores))
        caught = caught_within[reviewed]
        fraction = caught / wrong_total if wrong_total else None
        result.append(ReviewCapture(float(share), reviewed, caught, wrong_total, fraction))
    return result


# --- summary -----------------------------------------------------------------------


def summarise_calibration(
    confidences: Sequence[float],
    correct: Sequence[bool],
    *,
    bins: int = DEFAULT_BINS,
    shares: Sequence[float] = DEFAULT_SHARES,
) -> dict[str, Any]:
    """Every calibration figure as plain JSON types, for ``report.json``."""
    scores, flags = _checked(confidences, correct)
    table = _bins_of(scores, flags, _checked_bins(bins))
    return {
        "fields": len(scores),
        "wrong": len(flags) - sum(flags),
        "auroc": auroc(scores, flags),
        "ece": _ece_of(table, len(scores)),
        "bins": [asdict(b) for b in table],
        "review": [asdict(r) for r in review_capture(scores, flags, shares)],
    }
