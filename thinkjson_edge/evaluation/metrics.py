"""Extraction-quality metrics, shared by the ``eval`` command and the training rewards.

Pure Python and cheap to import: no model, no numpy.

Definitions
===========

Leaves and paths
----------------
A JSON value is flattened into *leaves*: every scalar (string, number, boolean, null)
and every empty object ``{}`` or empty array ``[]`` below the root is one leaf, keyed
by its path. Object keys are joined with ``.`` and array elements are written
``[i]``: ``buyer.name``, ``items[0].price``, ``tags[2]``. A key that is empty, is
``$``, or contains ``.``, ``[``, ``]`` or ``"`` is written as a JSON string in
brackets (``["unit.price"]``), so every path is unambiguous. A scalar root is one
leaf with path ``$``. An empty object or array at the root has no leaves: it
extracts nothing.

Arrays are compared element by element, by index: ``items[0]`` of the prediction is
compared with ``items[0]`` of the gold only. Elements beyond the gold's length are
extra leaves; gold elements beyond the prediction's length are missing leaves.
Reordered arrays are therefore not matched.

A leaf of one side meets a leaf of the other only at the same path. A path that is
a scalar on one side and an object or array on the other is a missing leaf on the
gold side and extra leaves on the predicted side.

The *field* of a leaf is its path with every array index replaced by ``[]``
(``items[]``.``price``), so per-field figures aggregate over array elements.

Value normalisation
-------------------
Two leaves are equal when their normalised values are equal:

* ``null`` equals only ``null``.
* Booleans equal only booleans of the same value: ``true`` is not ``1`` and not
  the string ``"true"``.
* Numbers (ints and floats, never booleans) compare by exact decimal value, taking
  a float at its shortest round-trip decimal form: ``1 == 1.0``, ``0.1 == "0.1"``.
* Strings are first put in Unicode NFKC form, then every run of whitespace (as
  ``str.split()`` sees it) becomes one space and leading/trailing whitespace is
  removed. A string that then matches the number grammar below is that number, so
  ``"12" == 12`` and ``"1,234.50" == 1234.5``. Any other string is casefolded and
  compared as a string.
* The number grammar: ``[sign] integer [. digits] [(e|E) [sign] digits]``, where
  ``integer`` is ASCII digits with no leading zero (``0`` alone is allowed), or
  digit groups separated by commas, ``1-3`` digits then groups of exactly three
  (``1,234,567``). Nothing else is stripped: ``"$12"``, ``"12 %"``, ``"1 234"``,
  ``"1,5"``, ``".5"`` stay strings, and so does ``"007"`` (a leading zero marks a
  code, such as a postcode or account number, rather than a quantity).
* An empty object equals only an empty object, an empty array only an empty array.

Per document (the ThinkJSON figures)
------------------------------------
A prediction is *no JSON output* when it is ``None``: absent, not parseable as JSON
(see :func:`parse_output`), or a top-level ``null``. Otherwise, with ``G`` the gold
leaves, ``P`` the predicted leaves and ``M`` the predicted leaves equal to the gold
leaf at the same path:

* ``match = |M| / |G|`` (1.0 when the gold has no leaves; 0.0 with no JSON output).
* ``noise = (|P| - |M|) / |P|``: the share of predicted leaves that are wrong (gold
  has a different value at that path) or extra (gold has no leaf at that path).
  An empty prediction (``{}`` or ``[]``, no leaves) has noise 0.0: it asserts
  nothing. With no JSON output noise is undefined (``None``); the reward function
  :func:`noise` returns 1.0 for it so that emitting nothing is never rewarded over
  emitting something.
* ``exact_match``: JSON output, every gold leaf matched and no other predicted leaf
  (``|M| == |G| == |P|``).

Over a corpus (:func:`aggregate`), as in the ThinkJSON paper's table: the count of
documents with no JSON output, the count with JSON output, the mean match % over
*all* documents (no-output documents count 0 %), and the mean noise % over the
documents *with* JSON output (``None`` when there are none). Percentages are the
per-document fractions times 100.

Field-level precision, recall, F1
---------------------------------
Per leaf: a predicted leaf equal to the gold at the same path is a true positive
(TP); a predicted leaf that is wrong or extra is a false positive (FP); a gold leaf
that is missing or wrong is a false negative (FN). A wrong leaf is therefore one FP
and one FN. With no JSON output every gold leaf is an FN. ``precision = TP/(TP+FP)``
and ``recall = TP/(TP+FN)``, ``None`` when the denominator is 0;
``F1 = 2TP/(2TP+FP+FN)`` (their harmonic mean where both exist, 0 where only one
does, ``None`` when all counts are 0). Micro figures sum the counts over every leaf
of every document; per-field figures sum them over the leaves of one field.

Self-correction (the SCoRe figures)
-----------------------------------
For problems with two attempts, with a correctness criterion (exact match by
default, see :func:`correct_when`) applied to each: ``accuracy@t1`` and
``accuracy@t2`` are the shares of problems correct at attempt 1 and 2;
``delta = accuracy@t2 - accuracy@t1``; ``delta_i_to_c`` is the share of problems
incorrect at attempt 1 and correct at attempt 2; ``delta_c_to_i`` the share correct
at attempt 1 and incorrect at attempt 2. So ``delta = delta_i_to_c - delta_c_to_i``.
These are fractions in [0, 1].
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

__all__ = [
    "CorpusScores",
    "Criterion",
    "DocumentScore",
    "FieldPRF",
    "LeafResult",
    "Outcome",
    "SelfCorrection",
    "aggregate",
    "correct_when",
    "field_match",
    "field_prf",
    "flatten",
    "is_exact",
    "micro_prf",
    "noise",
    "normalize_value",
    "parse_output",
    "score_document",
    "score_output",
    "self_correction_deltas",
    "self_correction_scores",
]

Path = tuple[str | int, ...]
Outcome = Literal["match", "wrong", "missing", "extra"]
NormalValue = tuple[str, Any]

ROOT = "$"

_NUMBER = re.compile(
    r"[+-]?(?P<integer>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
)
_QUOTED_KEY_CHARS = frozenset('.[]"')


# --- normalisation ---------------------------------------------------------------


def _number_from_string(text: str) -> Decimal | None:
    """The number a normalised string spells under the module's grammar, else None."""
    found = _NUMBER.fullmatch(text)
    if found is None:
        return None
    integer = found.group("integer").replace(",", "")
    if len(integer) > 1 and integer[0] == "0":
        return None  # "007" is a code, not seven
    return Decimal(text.replace(",", ""))


def _normalize_string(text: str) -> NormalValue:
    collapsed = " ".join(unicodedata.normalize("NFKC", text).split())
    number = _number_from_string(collapsed)
    if number is not None:
        return ("number", number)
    return ("string", collapsed.casefold())


def _normalize_number(value: int | float | Decimal) -> NormalValue:
    if isinstance(value, Decimal):
        return ("nan", None) if value.is_nan() else ("number", value)
    if isinstance(value, float):
        if math.isnan(value):
            return ("nan", None)  # equal to itself, so a value always matches its copy
        # repr is the shortest round-trip form, so 0.1 compares equal to "0.1".
        return ("number", Decimal(repr(value)))
    return ("number", Decimal(value))


def normalize_value(value: Any) -> NormalValue:
    """The comparison key of one leaf value; equal keys mean equal leaves.

    Accepts None, bool, int, float, Decimal, str, and an empty mapping or
    list/tuple. Raises ValueError for a non-empty container, TypeError otherwise.
    """
    if value is None:
        return ("null", None)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float | Decimal):
        return _normalize_number(value)
    if isinstance(value, str):
        return _normalize_string(value)
    if isinstance(value, Mapping | list | tuple):
        if value:
            raise ValueError("a non-empty object or array is not a leaf")
        return ("object", None) if isinstance(value, Mapping) else ("array", None)
    raise TypeError(f"not a JSON value: {type(value).__name__}")


# --- paths -----------------------------------------------------------------------


def _render_key(key: str) -> str:
    if not key or key == ROOT or not _QUOTED_KEY_CHARS.isdisjoint(key):
        return "[" + json.dumps(key, ensure_ascii=False) + "]"
    return key


def _render_path(path: Path, generic: bool = False) -> str:
    """``items[0].price``; with ``generic`` the indices become ``[]``."""
    if not path:
        return ROOT
    parts: list[str] = []
    for step in path:
        if isinstance(step, int):
            parts.append("[]" if generic else f"[{step}]")
        else:
            key = _render_key(step)
            bracketed = key.startswith("[")
            parts.append(key if not parts or bracketed else "." + key)
    return "".join(parts)


def render_path(parts: Sequence[str | int]) -> str:
    """The rendered path of a leaf given as keys and indices: ``("items", 0, "price")``."""
    return _render_path(tuple(parts))


def _leaves(value: Any) -> dict[Path, Any]:
    """Leaves by path, in document order; iterative so deep nesting cannot overflow."""
    leaves: dict[Path, Any] = {}
    stack: list[tuple[Path, Any]] = [((), value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, Mapping):
            children: list[tuple[Path, Any]] = [((*path, str(k)), v) for k, v in node.items()]
        elif isinstance(node, list | tuple):
            children = [((*path, i), v) for i, v in enumerate(node)]
        else:
            leaves[path] = node
            continue
        if not children:
            if path:  # an empty root extracts nothing; an empty member is a leaf
                leaves[path] = node
            continue
        stack.extend(reversed(children))
    return leaves


def flatten(value: Any) -> dict[str, Any]:
    """The leaves of a JSON value by rendered path (``items[0].price``), in document order.

    >>> flatten({"a": {"b": 1}, "items": [{"price": 2}, []], "c": {}})
    {'a.b': 1, 'items[0].price': 2, 'items[1]': [], 'c': {}}
    """
    return {_render_path(path): leaf for path, leaf in _leaves(value).items()}


def parse_output(text: str | None) -> Any | None:
    """Parse model output as strict JSON; None when absent or not parseable.

    Strict: the whole text must be one JSON value (surrounding whitespace allowed),
    and ``NaN``/``Infinity`` are rejected. A top-level ``null`` also yields None,
    so it counts as no JSON output.
    """
    if text is None:
        return None

    def reject(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    try:
        return json.loads(text, parse_constant=reject)
    except (ValueError, RecursionError):
        return None


# --- per document ----------------------------------------------------------------


@dataclass(frozen=True)
class LeafResult:
    """One leaf's fate: ``path`` as rendered, its ``field`` and its outcome."""

    path: str
    field: str
    outcome: Outcome


@dataclass(frozen=True)
class DocumentScore:
    """One document's comparison with its gold. Fractions are in [0, 1]."""

    has_output: bool
    gold_leaves: int
    predicted_leaves: int
    matched: int
    match: float
    noise: float | None  # None with no JSON output
    exact_match: bool
    leaves: tuple[LeafResult, ...]

    def _paths(self, outcome: Outcome) -> tuple[str, ...]:
        return tuple(leaf.path for leaf in self.leaves if leaf.outcome == outcome)

    @property
    def missing(self) -> tuple[str, ...]:
        """Gold paths the prediction lacks."""
        return self._paths("missing")

    @property
    def wrong(self) -> tuple[str, ...]:
        """Paths present on both sides with different values."""
        return self._paths("wrong")

    @property
    def extra(self) -> tuple[str, ...]:
        """Predicted paths the gold lacks."""
        return self._paths("extra")

    def to_dict(self) -> dict[str, Any]:
        return {
            "has_output": self.has_output,
            "gold_leaves": self.gold_leaves,
            "predicted_leaves": self.predicted_leaves,
            "matched": self.matched,
            "match": self.match,
            "noise": self.noise,
            "exact_match": self.exact_match,
            "missing": list(self.missing),
            "wrong": list(self.wrong),
            "extra": list(self.extra),
        }


def _leaf_result(path: Path, outcome: Outcome) -> LeafResult:
    return LeafResult(_render_path(path), _render_path(path, generic=True), outcome)


def _no_output_score(gold: Mapping[Path, Any]) -> DocumentScore:
    results = tuple(_leaf_result(path, "missing") for path in gold)
    return DocumentScore(False, len(gold), 0, 0, 0.0, None, False, results)


def score_document(gold: Any, predicted: Any | None) -> DocumentScore:
    """Compare a parsed prediction with its gold; ``predicted=None`` is no JSON output.

    Both are parsed JSON values (dicts, lists, scalars). For raw model text use
    :func:`score_output`.
    """
    gold_leaves = {path: normalize_value(v) for path, v in _leaves(gold).items()}
    if predicted is None:
        return _no_output_score(gold_leaves)
    predicted_leaves = {path: normalize_value(v) for path, v in _leaves(predicted).items()}
    results: list[LeafResult] = []
    matched = 0
    for path, expected in gold_leaves.items():
        if path not in predicted_leaves:
            results.append(_leaf_result(path, "missing"))
        elif predicted_leaves[path] == expected:
            matched += 1
            results.append(_leaf_result(path, "match"))
        else:
            results.append(_leaf_result(path, "wrong"))
    results.extend(
        _leaf_result(path, "extra") for path in predicted_leaves if path not in gold_leaves
    )
    n_gold, n_predicted = len(gold_leaves), len(predicted_leaves)
    return DocumentScore(
        has_output=True,
        gold_leaves=n_gold,
        predicted_leaves=n_predicted,
        matched=matched,
        match=matched / n_gold if n_gold else 1.0,
        noise=(n_predicted - matched) / n_predicted if n_predicted else 0.0,
        exact_match=matched == n_gold == n_predicted,
        leaves=tuple(results),
    )


def score_output(gold: Any, text: str | None) -> DocumentScore:
    """Score raw model output text: :func:`parse_output`, then :func:`score_document`."""
    return score_document(gold, parse_output(text))


def field_match(gold: Any, predicted: Any | None) -> float:
    """Reward: the document's match fraction in [0, 1] (0.0 with no JSON output)."""
    return score_document(gold, predicted).match


def noise(gold: Any, predicted: Any | None) -> float:
    """Reward: the document's noise fraction in [0, 1]; 1.0 with no JSON output."""
    value = score_document(gold, predicted).noise
    return 1.0 if value is None else value


# --- precision, recall, F1 -------------------------------------------------------


@dataclass(frozen=True)
class FieldPRF:
    """Leaf counts of one field (or of everything) and the figures they give."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else None

    def add(self, outcome: Outcome) -> FieldPRF:
        """These counts with one more leaf of the given outcome."""
        tp = self.tp + (outcome == "match")
        fp = self.fp + (outcome in ("wrong", "extra"))
        fn = self.fn + (outcome in ("wrong", "missing"))
        return FieldPRF(tp, fp, fn)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


def micro_prf(scores: Iterable[DocumentScore]) -> FieldPRF:
    """Counts summed over every leaf of every document."""
    total = FieldPRF()
    for score in scores:
        for leaf in score.leaves:
            total = total.add(leaf.outcome)
    return total


def field_prf(scores: Iterable[DocumentScore]) -> dict[str, FieldPRF]:
    """Counts per field (indices as ``[]``), sorted by field name."""
    per_field: dict[str, FieldPRF] = {}
    for score in scores:
        for leaf in score.leaves:
            per_field[leaf.field] = per_field.get(leaf.field, FieldPRF()).add(leaf.outcome)
    return dict(sorted(per_field.items()))


# --- corpus ----------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusScores:
    """The ThinkJSON figures and field-level P/R/F1 over a set of documents."""

    documents: int
    no_json_output: int
    json_output: int
    mean_match_pct: float  # over all documents; no output counts 0
    mean_noise_pct: float | None  # over documents with JSON output only
    exact_match_pct: float  # over all documents
    micro: FieldPRF
    per_field: dict[str, FieldPRF]

    def to_dict(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "no_json_output": self.no_json_output,
            "json_output": self.json_output,
            "mean_match_pct": self.mean_match_pct,
            "mean_noise_pct": self.mean_noise_pct,
            "exact_match_pct": self.exact_match_pct,
            "micro": self.micro.to_dict(),
            "per_field": {name: prf.to_dict() for name, prf in self.per_field.items()},
        }


def aggregate(scores: Sequence[DocumentScore]) -> CorpusScores:
    """Corpus figures from per-document scores; raises ValueError when there are none."""
    if not scores:
        raise ValueError("no documents to aggregate")
    n = len(scores)
    noises = [s.noise for s in scores if s.noise is not None]
    with_output = sum(s.has_output for s in scores)
    return CorpusScores(
        documents=n,
        no_json_output=n - with_output,
        json_output=with_output,
        mean_match_pct=100 * sum(s.match for s in scores) / n,
        mean_noise_pct=100 * sum(noises) / len(noises) if noises else None,
        exact_match_pct=100 * sum(s.exact_match for s in scores) / n,
        micro=micro_prf(scores),
        per_field=field_prf(scores),
    )


# --- self-correction -------------------------------------------------------------

Criterion = Callable[[DocumentScore], bool]


def is_exact(score: DocumentScore) -> bool:
    """The default correctness criterion: exact match."""
    return score.exact_match


def correct_when(min_match: float = 1.0, max_noise: float = 0.0) -> Criterion:
    """A criterion: JSON output with ``match >= min_match`` and ``noise <= max_noise``.

    The defaults are equivalent to exact match.
    """

    def criterion(score: DocumentScore) -> bool:
        return score.noise is not None and score.match >= min_match and score.noise <= max_noise

    return criterion


@dataclass(frozen=True)
class SelfCorrection:
    """SCoRe's figures for two attempts per problem, as fractions in [0, 1]."""

    problems: int
    accuracy_t1: float
    accuracy_t2: float
    delta: float  # accuracy_t2 - accuracy_t1
    delta_i_to_c: float  # incorrect at t1, correct at t2
    delta_c_to_i: float  # correct at t1, incorrect at t2

    def to_dict(self) -> dict[str, Any]:
        return {
            "problems": self.problems,
            "accuracy_t1": self.accuracy_t1,
            "accuracy_t2": self.accuracy_t2,
            "delta": self.delta,
            "delta_i_to_c": self.delta_i_to_c,
            "delta_c_to_i": self.delta_c_to_i,
        }


def self_correction_deltas(
    first_correct: Sequence[bool], second_correct: Sequence[bool]
) -> SelfCorrection:
    """SCoRe figures from per-problem correctness at attempts 1 and 2.

    Raises ValueError when the sequences differ in length or are empty.
    """
    if len(first_correct) != len(second_correct):
        raise ValueError("both attempts need one entry per problem")
    if not first_correct:
        raise ValueError("no problems")
    n = len(first_correct)
    pairs = list(zip(first_correct, second_correct, strict=True))
    t1 = sum(bool(a) for a, _ in pairs) / n
    t2 = sum(bool(b) for _, b in pairs) / n
    return SelfCorrection(
        problems=n,
        accuracy_t1=t1,
        accuracy_t2=t2,
        delta=t2 - t1,
        delta_i_to_c=sum(not a and bool(b) for a, b in pairs) / n,
        delta_c_to_i=sum(bool(a) and not b for a, b in pairs) / n,
    )


def self_correction_scores(
    first: Sequence[DocumentScore],
    second: Sequence[DocumentScore],
    criterion: Criterion = is_exact,
) -> SelfCorrection:
    """SCoRe figures from the scores of both attempts, judged by ``criterion``."""
    return self_correction_deltas([criterion(s) for s in first], [criterion(s) for s in second])
