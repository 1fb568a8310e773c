"""Following generated JSON byte by byte: paths of values and the tokens of each leaf."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from thinkjson_edge.engine.json_values import JsonValues


def leaves_of(text: str, piece_size: int = 3) -> JsonValues:
    values = JsonValues()
    data = text.encode()
    for token, start in enumerate(range(0, len(data), piece_size)):
        values.token_index = token
        for byte in data[start : start + piece_size]:
            values.feed(byte)
    values.finish()
    return values


def expected_leaves(value: object, path: tuple = ()) -> list[tuple[tuple, object]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in expected_leaves(v, (*path, k))]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in expected_leaves(v, (*path, i))]
    return [(path, value)]


def test_paths_and_kinds() -> None:
    text = '{"a": "x", "b": [1, {"c\\"d": true}, null], "e": {"f": -2.5e3}}'
    values = leaves_of(text)
    assert [(leaf.path, leaf.kind) for leaf in values.leaves] == [
        (("a",), "string"),
        (("b", 0), "number"),
        (("b", 1, 'c"d'), "boolean"),
        (("b", 2), "null"),
        (("e", "f"), "number"),
    ]
    assert [leaf.raw for leaf in values.leaves] == [b"x", b"1", b"true", b"null", b"-2.5e3"]


def test_string_events_and_escapes() -> None:
    values = JsonValues()
    events = [values.feed(b) for b in b'{"k": "a\\"b"}']
    assert events.count("open") == 1 and events.count("close") == 1
    assert values.leaves[0].raw == b'a\\"b'


def test_tokens_of_a_leaf_are_those_that_wrote_it() -> None:
    values = leaves_of('{"name": "ACME"}', piece_size=4)
    # pieces: '{"na' 'me":' ' "AC' 'ME"}' -> the value's bytes are in pieces 2 and 3
    assert values.leaves[0].tokens == (2, 3)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(value=st.dictionaries(st.text(max_size=3), json_values, max_size=4), size=st.integers(1, 5))
def test_every_leaf_of_any_object(value: dict, size: int) -> None:
    text = json.dumps(value, ensure_ascii=False)
    values = leaves_of(text, size)
    found = [
        (leaf.path, json.loads(leaf.raw if leaf.kind != "string" else b'"' + leaf.raw + b'"'))
        for leaf in values.leaves
    ]
    assert found == expected_leaves(value)
    assert values.stack == []
