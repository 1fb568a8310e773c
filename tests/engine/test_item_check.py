"""Which token begins a later array item (the point the engine may come back to)."""

from __future__ import annotations

from thinkjson_edge.engine.item_check import PendingItem, later_item_begun
from thinkjson_edge.engine.json_values import JsonValues


def following(text: str) -> JsonValues:
    values = JsonValues()
    for byte in text.encode():
        values.feed(byte)
    return values


def test_a_comma_after_an_object_item_begins_the_next_item() -> None:
    values = following('{"deviations": [{"id": "DEV-1"}')
    assert later_item_begun(values, b', {"') == (("deviations", 1), 4)


def test_a_token_that_closes_an_item_and_begins_the_next_is_seen() -> None:
    values = following('{"deviations": [{"id": "DEV-1')
    assert later_item_begun(values, b'"}, {"') == (("deviations", 1), 4)
    assert later_item_begun(values, b'"}]') is None


def test_items_of_a_string_array_and_of_a_nested_array() -> None:
    assert later_item_begun(following('{"tags": ["a"'), b', "') == (("tags", 1), 4)
    nested = following('{"lots": [{"tests": [1, 2')
    assert later_item_begun(nested, b", ") == (("lots", 0, "tests", 2), 8)


def test_commas_that_begin_no_item() -> None:
    assert later_item_begun(following('{"a": "x'), b', y') is None  # inside a string
    assert later_item_begun(following('{"a": "x"'), b', "b') is None  # between members
    assert later_item_begun(following('{"a": '), b'[{"') is None  # the first item
    assert later_item_begun(following('{"a": [1'), b"]") is None


def test_the_state_is_left_as_it_was() -> None:
    values = following('{"a": [1')
    later_item_begun(values, b", 2")
    assert values.path() == ("a", 0)
    assert values.leaf is not None and bytes(values.leaf.raw) == b"1"


def test_a_pending_item_holds_the_values_under_its_path() -> None:
    item = PendingItem(("deviations", 1), 4, saved=None)
    assert item.holds(("deviations", 1, "id"))
    assert item.holds(("deviations", 1))
    assert not item.holds(("deviations", 0, "id"))
    assert not item.holds(("released",))
