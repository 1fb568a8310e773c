"""One value followed through the span index: escapes, whitespace, closing rules."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from thinkjson_edge.copying.automaton import SuffixAutomaton, collapse_whitespace
from thinkjson_edge.copying.cursor import CopyCursor

DOCUMENT = 'Total: 12.50 MYR\nSOON  HUAT "MACHINERY"\\ café\tEND'


def read(raw: bytes, document: str = DOCUMENT) -> CopyCursor | None:
    """The cursor after the raw JSON bytes of a value (between its quotes)."""
    automaton = SuffixAutomaton(collapse_whitespace(document)[0].encode())
    cursor: CopyCursor | None = CopyCursor()
    for byte in raw:
        assert cursor is not None
        cursor = cursor.feed(automaton, byte)
        if cursor is None:
            return None
    return cursor


def written(value: str) -> bytes:
    """How a model writes ``value`` inside a JSON string."""
    return json.dumps(value)[1:-1].encode()


def test_a_span_is_followed_and_may_close() -> None:
    cursor = read(b"12.50 MYR")
    assert cursor is not None and cursor.may_close


def test_leaving_the_document_is_refused() -> None:
    assert read(b"12.50 MYX") is None
    assert read(b"Steriliser") is None


def test_case_is_kept() -> None:
    assert read(b"soon huat") is None


def test_whitespace_runs_and_newlines_match_one_space() -> None:
    assert read(b"MYR SOON HUAT") is not None  # newline, then two spaces, in the document
    assert read(b"MYR\\nSOON") is not None  # a written newline escape is a space too
    assert read(b"SOON  HUAT") is None  # two spaces are not in the collapsed document


def test_no_leading_or_trailing_space_and_no_empty_value() -> None:
    assert not CopyCursor().may_close
    assert read(b" Total") is None
    trailing = read(b"Total: ")
    assert trailing is not None and not trailing.may_close


def test_escapes_are_decoded_before_matching() -> None:
    assert read(written('"MACHINERY"\\ café')) is not None
    assert read(b"caf\\u00e9") is not None
    assert read(b"caf\\u00e8") is None
    assert read(b"\\u0022MACHINERY\\u0022") is not None
    open_escape = read(b"caf\\u00")
    assert open_escape is not None and not open_escape.may_close


def test_surrogate_escapes_are_refused() -> None:
    assert read(b"\\ud83d", "x") is None


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_every_written_span_is_accepted(data: st.DataObject) -> None:
    collapsed = collapse_whitespace(DOCUMENT)[0]
    start = data.draw(st.integers(0, len(collapsed) - 1))
    end = data.draw(st.integers(start + 1, len(collapsed)))
    value = collapsed[start:end]
    cursor = read(written(value))
    if value.startswith(" "):
        assert cursor is None
    else:
        assert cursor is not None
        assert cursor.may_close == (not value.endswith(" "))


@settings(max_examples=200, deadline=None)
@given(value=st.text(alphabet='abcMYR .:"\\é\n', min_size=1, max_size=12))
def test_accepted_exactly_when_a_trimmed_span(value: str) -> None:
    collapsed = collapse_whitespace(DOCUMENT)[0]
    as_space = " ".join(value.split(" ")).replace("\n", " ")
    cursor = read(written(value))
    expected = as_space in collapsed and not as_space.startswith(" ") and "  " not in as_space
    assert (cursor is not None) == expected
