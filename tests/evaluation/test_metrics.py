"""Extraction metrics on hand-made gold/prediction pairs, with answers worked out by hand."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from thinkjson_edge.evaluation.metrics import (
    FieldPRF,
    aggregate,
    correct_when,
    field_match,
    field_prf,
    flatten,
    micro_prf,
    noise,
    normalize_value,
    parse_output,
    score_document,
    score_output,
    self_correction_deltas,
    self_correction_scores,
)

# --- normalisation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("gold", "predicted"),
    [
        (" Acme\u00a0 CORP\n", "acme corp"),  # NBSP and runs of whitespace collapse
        ("\uff21\uff22\uff23 Ltd", "abc ltd"),  # fullwidth letters fold under NFKC
        ("Straße", "STRASSE"),  # casefold, not lower
        ("12", 12),
        (" 12 ", 12.0),
        (1, 1.0),
        ("1,234.50", 1234.5),
        ("1,234,567", 1234567),
        (0.1, "0.1"),
        ("1e3", 1000),
        ("-0", 0),
        (None, None),
        (True, True),
        ({}, {}),
        ([], []),
    ],
)
def test_values_that_compare_equal(gold: Any, predicted: Any) -> None:
    assert normalize_value(gold) == normalize_value(predicted)


@pytest.mark.parametrize(
    ("gold", "predicted"),
    [
        (True, 1),  # booleans are not numbers
        (False, 0),
        (True, "true"),  # nor strings
        (None, "null"),
        (None, 0),
        ("007", 7),  # leading zero: a code, stays a string
        ("$12", 12),  # currency symbols are not stripped
        ("12 %", 12),
        ("1,5", 1.5),  # a comma is only a thousands separator
        ("1 234", 1234),
        ("12,34", 1234),  # groups after a comma must be three digits
        ({}, []),
        ("acme", "acme inc"),
    ],
)
def test_values_that_differ(gold: Any, predicted: Any) -> None:
    assert normalize_value(gold) != normalize_value(predicted)


def test_non_empty_container_is_not_a_leaf() -> None:
    with pytest.raises(ValueError, match="not a leaf"):
        normalize_value({"a": 1})
    with pytest.raises(TypeError, match="set"):
        normalize_value({1, 2})


# --- paths -----------------------------------------------------------------------


def test_flatten_paths_and_empty_leaves() -> None:
    value = {"a": {"b": 1}, "items": [{"price": 2}, []], "c": {}, "m": [[5]]}
    assert flatten(value) == {
        "a.b": 1,
        "items[0].price": 2,
        "items[1]": [],
        "c": {},
        "m[0][0]": 5,
    }


def test_flatten_quotes_awkward_keys_and_handles_roots() -> None:
    assert flatten({"unit.price": 1, "": 2, "$": 3, "x": {"a[b]": 4}}) == {
        '["unit.price"]': 1,
        '[""]': 2,
        '["$"]': 3,
        'x["a[b]"]': 4,
    }
    assert flatten(5) == {"$": 5}
    assert flatten({}) == {}  # an empty root extracts nothing
    assert flatten([]) == {}


# --- per document ----------------------------------------------------------------


def test_nested_objects_missing_wrong_and_extra() -> None:
    gold = {
        "buyer": {"name": "Acme", "address": {"city": "Paris", "zip": "75001"}},
        "total": 12.5,
    }
    predicted = {
        "buyer": {"name": "ACME ", "address": {"city": "Lyon"}},
        "total": "12.50",
        "currency": "EUR",
    }
    score = score_document(gold, predicted)
    # gold leaves: buyer.name, buyer.address.city, buyer.address.zip, total = 4
    # predicted: buyer.name (match), buyer.address.city (wrong), total (match), currency (extra) = 4
    # match = 2/4 = 0.5; noise = (4 - 2)/4 = 0.5
    assert (score.gold_leaves, score.predicted_leaves, score.matched) == (4, 4, 2)
    assert score.match == 0.5
    assert score.noise == 0.5
    assert score.exact_match is False
    assert score.missing == ("buyer.address.zip",)
    assert score.wrong == ("buyer.address.city",)
    assert score.extra == ("currency",)


ITEMS_GOLD = {"items": [{"sku": "A", "price": 1}, {"sku": "B", "price": 2}]}


def test_longer_array_prediction_is_matched_by_index() -> None:
    predicted = {
        "items": [{"sku": "A", "price": 1}, {"sku": "B", "price": 3}, {"sku": "C", "price": 4}]
    }
    score = score_document(ITEMS_GOLD, predicted)
    # gold 4 leaves; predicted 6; matched items[0].sku, items[0].price, items[1].sku = 3
    # match = 3/4 = 0.75; noise = (6 - 3)/6 = 0.5
    assert score.match == 0.75
    assert score.noise == 0.5
    assert score.wrong == ("items[1].price",)
    assert score.extra == ("items[2].sku", "items[2].price")
    assert score.missing == ()


def test_shorter_array_prediction_misses_the_tail() -> None:
    score = score_document(ITEMS_GOLD, {"items": [{"sku": "A", "price": 1}]})
    # gold 4, predicted 2, both match: match = 2/4 = 0.5; noise = (2 - 2)/2 = 0
    assert score.match == 0.5
    assert score.noise == 0.0
    assert score.missing == ("items[1].sku", "items[1].price")


def test_reordered_array_does_not_match() -> None:
    score = score_document({"tags": ["a", "b"]}, {"tags": ["b", "a"]})
    # tags[0] and tags[1] both wrong: match = 0/2, noise = 2/2
    assert score.match == 0.0
    assert score.noise == 1.0


def test_type_mismatches() -> None:
    gold = {"qty": 12, "paid": True, "note": None}
    predicted = {"qty": "12", "paid": 1, "note": "null"}
    score = score_document(gold, predicted)
    # qty matches by the number rule; paid (True vs 1) and note (null vs "null") are wrong
    # match = 1/3; noise = (3 - 1)/3 = 2/3
    assert score.match == pytest.approx(1 / 3)
    assert score.noise == pytest.approx(2 / 3)
    assert score.wrong == ("paid", "note")


def test_scalar_against_object_is_missing_plus_extra() -> None:
    score = score_document({"a": 5}, {"a": {"b": 5}})
    # gold leaf "a" has no counterpart (missing); predicted "a.b" is extra
    assert score.missing == ("a",)
    assert score.extra == ("a.b",)
    assert (score.match, score.noise) == (0.0, 1.0)


def test_whitespace_and_case_give_exact_match() -> None:
    gold = {"vendor": "Soon Huat Machinery", "total": "1,234.50"}
    predicted = {"vendor": "  SOON  HUAT\nmachinery ", "total": 1234.5}
    score = score_document(gold, predicted)
    # both leaves match: match = 2/2, noise = 0/2
    assert (score.match, score.noise, score.exact_match) == (1.0, 0.0, True)


def test_empty_prediction_is_output_without_noise() -> None:
    score = score_document({"a": 1, "b": 2}, {})
    # no predicted leaves: match = 0/2; noise = 0 by definition (nothing asserted)
    assert score.has_output is True
    assert (score.match, score.noise, score.exact_match) == (0.0, 0.0, False)
    assert score.missing == ("a", "b")


def test_empty_gold_and_empty_prediction_are_an_exact_match() -> None:
    score = score_document({}, {})
    # no gold leaves: match = 1.0 by definition; no predicted leaves: noise = 0.0
    assert (score.match, score.noise, score.exact_match) == (1.0, 0.0, True)


def test_empty_containers_are_leaves_below_the_root() -> None:
    score = score_document({"items": [], "meta": {}}, {"items": [], "meta": []})
    # gold leaves items=[] and meta={}; items matches, meta ({} vs []) is wrong
    # match = 1/2; noise = 1/2
    assert (score.match, score.noise) == (0.5, 0.5)
    assert score.wrong == ("meta",)


def test_no_output() -> None:
    gold = {"a": 1, "b": {"c": 2}}
    score = score_document(gold, None)
    assert score.has_output is False
    assert (score.match, score.noise, score.exact_match) == (0.0, None, False)
    assert score.missing == ("a", "b.c")
    assert score_output(gold, "{not json") == score
    assert score_output(gold, "null") == score
    # rewards: no output matches nothing and counts as all noise
    assert field_match(gold, None) == 0.0
    assert noise(gold, None) == 1.0


def test_score_output_parses_text() -> None:
    score = score_output({"a": 1, "b": 2}, ' {"a": 1, "b": 3} ')
    # a matches, b wrong: match = 1/2, noise = 1/2
    assert (score.match, score.noise) == (0.5, 0.5)


def test_parse_output_is_strict_json() -> None:
    assert parse_output('{"a": [1, 2.5]}') == {"a": [1, 2.5]}
    assert parse_output("NaN") is None
    assert parse_output('{"a": Infinity}') is None
    assert parse_output('```json\n{"a": 1}\n```') is None
    assert parse_output(None) is None


def test_reward_functions() -> None:
    gold = {"a": 1, "b": 2, "c": 3, "d": 4}
    predicted = {"a": 1, "b": 2, "c": 0, "e": 5}
    # matched a, b: field_match = 2/4 = 0.5; c wrong and e extra: noise = 2/4 = 0.5
    assert field_match(gold, predicted) == 0.5
    assert noise(gold, predicted) == 0.5
    assert noise(gold, gold) == 0.0


# --- precision, recall, F1 -------------------------------------------------------


def test_per_field_aggregates_over_array_elements() -> None:
    predicted = {
        "items": [{"sku": "A", "price": 1}, {"sku": "B", "price": 3}, {"sku": "C", "price": 4}]
    }
    scores = [score_document(ITEMS_GOLD, predicted)]
    per_field = field_prf(scores)
    assert list(per_field) == ["items[].price", "items[].sku"]
    # items[].sku: TP 2 (A, B), FP 1 (extra C), FN 0
    #   P = 2/3, R = 2/2 = 1, F1 = 2*2/(2*2 + 1 + 0) = 0.8
    sku = per_field["items[].sku"]
    assert (sku.tp, sku.fp, sku.fn) == (2, 1, 0)
    assert sku.precision == pytest.approx(2 / 3)
    assert sku.recall == 1.0
    assert sku.f1 == pytest.approx(0.8)
    # items[].price: TP 1 (1), FP 2 (wrong 3, extra 4), FN 1 (wrong: gold 2 not found)
    #   P = 1/3, R = 1/2, F1 = 2*1/(2*1 + 2 + 1) = 0.4
    price = per_field["items[].price"]
    assert (price.tp, price.fp, price.fn) == (1, 2, 1)
    assert price.precision == pytest.approx(1 / 3)
    assert price.recall == 0.5
    assert price.f1 == pytest.approx(0.4)
    # micro: TP 3, FP 3, FN 1 -> P = 3/6 = 0.5, R = 3/4 = 0.75, F1 = 6/(6 + 3 + 1) = 0.6
    micro = micro_prf(scores)
    assert (micro.tp, micro.fp, micro.fn) == (3, 3, 1)
    assert (micro.precision, micro.recall) == (0.5, 0.75)
    assert micro.f1 == pytest.approx(0.6)


def test_prf_undefined_values() -> None:
    assert FieldPRF().to_dict() == {
        "tp": 0,
        "fp": 0,
        "fn": 0,
        "precision": None,
        "recall": None,
        "f1": None,
    }
    only_fp = FieldPRF(fp=2)
    # P = 0/2 = 0; R = 0/0 undefined; F1 = 0/(0 + 2 + 0) = 0
    assert (only_fp.precision, only_fp.recall, only_fp.f1) == (0.0, None, 0.0)


# --- corpus ----------------------------------------------------------------------


def test_aggregate_four_figures() -> None:
    gold = {"name": "Acme", "total": 10}
    scores = [
        score_document(gold, {"name": "acme", "total": "10"}),  # exact: match 1, noise 0
        score_document(gold, {"name": "Acme", "total": 11, "tax": 1}),  # match 1/2, noise 2/3
        score_document(gold, None),  # no output: match 0, noise undefined
        score_document(gold, {}),  # empty: match 0, noise 0
    ]
    corpus = aggregate(scores)
    assert (corpus.documents, corpus.no_json_output, corpus.json_output) == (4, 1, 3)
    # mean match % = 100 * (1 + 0.5 + 0 + 0)/4 = 37.5
    assert corpus.mean_match_pct == pytest.approx(37.5)
    # mean noise % over the 3 with output = 100 * (0 + 2/3 + 0)/3 = 22.22...
    assert corpus.mean_noise_pct == pytest.approx(200 / 9)
    # exact match % = 100 * 1/4
    assert corpus.exact_match_pct == 25.0
    # micro: doc1 TP 2; doc2 TP 1, FP 2 (total wrong, tax extra), FN 1 (total);
    #   doc3 FN 2; doc4 FN 2 -> TP 3, FP 2, FN 5
    #   P = 3/5, R = 3/8, F1 = 6/(6 + 2 + 5) = 6/13
    assert (corpus.micro.tp, corpus.micro.fp, corpus.micro.fn) == (3, 2, 5)
    assert corpus.micro.f1 == pytest.approx(6 / 13)
    # per field: name TP 2 FN 2; total TP 1 FP 1 FN 3; tax FP 1
    assert {k: (v.tp, v.fp, v.fn) for k, v in corpus.per_field.items()} == {
        "name": (2, 0, 2),
        "tax": (0, 1, 0),
        "total": (1, 1, 3),
    }
    as_dict = corpus.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert as_dict["per_field"]["tax"] == {
        "tp": 0,
        "fp": 1,
        "fn": 0,
        "precision": 0.0,
        "recall": None,
        "f1": 0.0,
    }
    assert as_dict["micro"]["precision"] == 0.6


def test_aggregate_without_any_output() -> None:
    corpus = aggregate([score_document({"a": 1}, None), score_document({"a": 1}, None)])
    assert (corpus.no_json_output, corpus.mean_match_pct, corpus.mean_noise_pct) == (2, 0.0, None)


def test_aggregate_needs_documents() -> None:
    with pytest.raises(ValueError, match="no documents"):
        aggregate([])


# --- self-correction -------------------------------------------------------------


def test_self_correction_deltas() -> None:
    first = [True, True, False, False, False]
    second = [True, False, True, True, False]
    result = self_correction_deltas(first, second)
    # acc@t1 = 2/5 = 0.4; acc@t2 = 3/5 = 0.6; delta = 0.2
    # i->c: problems 3 and 4 = 2/5 = 0.4; c->i: problem 2 = 1/5 = 0.2
    assert result.problems == 5
    assert (result.accuracy_t1, result.accuracy_t2) == (0.4, 0.6)
    assert result.delta == pytest.approx(0.2)
    assert (result.delta_i_to_c, result.delta_c_to_i) == (0.4, 0.2)
    assert result.delta == pytest.approx(result.delta_i_to_c - result.delta_c_to_i)


def test_self_correction_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="one entry per problem"):
        self_correction_deltas([True], [True, False])
    with pytest.raises(ValueError, match="no problems"):
        self_correction_deltas([], [])


def test_self_correction_from_scores_with_a_criterion() -> None:
    gold = {"a": 1, "b": 2}
    first = [
        score_document(gold, {"a": 1}),  # match 1/2, noise 0
        score_document(gold, gold),  # exact
        score_document(gold, None),  # no output
    ]
    second = [
        score_document(gold, gold),  # exact
        score_document(gold, {"a": 1, "b": 2, "c": 3}),  # match 1, noise 1/3
        score_document(gold, {"a": 1, "b": 0}),  # match 1/2, noise 1/2
    ]
    exact = self_correction_scores(first, second)
    # exact at t1: [F, T, F]; at t2: [T, F, F] -> acc 1/3 and 1/3, i->c 1/3, c->i 1/3
    assert (exact.accuracy_t1, exact.accuracy_t2, exact.delta) == (1 / 3, 1 / 3, 0.0)
    assert (exact.delta_i_to_c, exact.delta_c_to_i) == (1 / 3, 1 / 3)
    lenient = self_correction_scores(first, second, correct_when(min_match=0.5, max_noise=0.5))
    # lenient at t1: [T, T, F] (no output never correct); at t2: [T, T, T]
    # acc 2/3 -> 3/3, delta 1/3, i->c 1/3, c->i 0
    assert (lenient.accuracy_t1, lenient.accuracy_t2) == (2 / 3, 1.0)
    assert lenient.delta == pytest.approx(1 / 3)
    assert (lenient.delta_i_to_c, lenient.delta_c_to_i) == (1 / 3, 0.0)
    assert lenient.to_dict()["problems"] == 3


# --- properties ------------------------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)
# None as the whole prediction means "no JSON output", so the root is never null.
PREDICTABLE = JSON_VALUES.filter(lambda value: value is not None)


@given(PREDICTABLE)
def test_a_value_scores_perfectly_against_itself(value: Any) -> None:
    for score in (score_document(value, value), score_output(value, json.dumps(value))):
        assert (score.match, score.noise, score.exact_match) == (1.0, 0.0, True)
        assert score.matched == score.gold_leaves == score.predicted_leaves
        assert all(leaf.outcome == "match" for leaf in score.leaves)


@given(JSON_VALUES, PREDICTABLE)
def test_fractions_stay_in_range(gold: Any, predicted: Any) -> None:
    score = score_document(gold, predicted)
    assert 0.0 <= field_match(gold, predicted) == score.match <= 1.0
    assert 0.0 <= noise(gold, predicted) <= 1.0
    micro = micro_prf([score])
    assert micro.tp == score.matched
    assert micro.tp + micro.fn == score.gold_leaves
    assert micro.tp + micro.fp == score.predicted_leaves
