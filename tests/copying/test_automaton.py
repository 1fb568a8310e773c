"""The span index: the suffix automaton against brute-force substring search."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from thinkjson_edge.copying.automaton import CopyIndex, SuffixAutomaton, collapse_whitespace

SMALL_ALPHABET = st.text(alphabet="ab c\né", max_size=40)


def occurrences(text: bytes, pattern: bytes) -> int:
    return sum(text.startswith(pattern, i) for i in range(len(text) - len(pattern) + 1))


@settings(max_examples=300, deadline=None)
@given(text=st.binary(max_size=60), probe=st.binary(max_size=8))
def test_accepts_exactly_the_substrings(text: bytes, probe: bytes) -> None:
    automaton = SuffixAutomaton(text)
    assert automaton.contains(probe) == (probe in text)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="abc", min_size=1, max_size=30).map(str.encode))
def test_every_substring_counts_and_first_ends(text: bytes) -> None:
    automaton = SuffixAutomaton(text)
    for start in range(len(text)):
        for end in range(start + 1, len(text) + 1):
            pattern = text[start:end]
            state = automaton.walk(pattern)
            assert state is not None
            assert automaton.occurrences[state] == occurrences(text, pattern)
            assert automaton.first_end[state] == text.find(pattern) + len(pattern)


def test_states_stay_linear() -> None:
    text = bytes(range(256)) * 8
    assert len(SuffixAutomaton(text).length) <= 2 * len(text)


def test_collapse_whitespace_maps_back() -> None:
    text = "  SOON HUAT\n\n MACHINERY\tENTERPRISE \n"
    collapsed, origin = collapse_whitespace(text)
    assert collapsed == "SOON HUAT MACHINERY ENTERPRISE"
    assert [text[i] for i in origin if not text[i].isspace()] == [c for c in collapsed if c != " "]
    assert text[origin[0]] == "S"


@settings(max_examples=200, deadline=None)
@given(text=SMALL_ALPHABET, data=st.data())
def test_span_points_at_the_first_occurrence_in_the_original(
    text: str, data: st.DataObject
) -> None:
    index = CopyIndex(text)
    if not index.collapsed:
        return
    start = data.draw(st.integers(0, len(index.collapsed) - 1))
    end = data.draw(st.integers(start + 1, len(index.collapsed)))
    value = index.collapsed[start:end]
    state = index.automaton.walk(value.encode())
    assert state is not None
    span = index.span(state, len(value.encode()))
    assert span is not None
    original = text[span.start : span.end]
    assert " ".join(original.split()) == " ".join(value.split())
    assert original[0].isspace() == (value[0] == " ")
    assert original[-1].isspace() == (value[-1] == " ")
