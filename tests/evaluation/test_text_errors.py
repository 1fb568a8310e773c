"""The OCR error counts: edits in reading order, and edits whatever the order of lines."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from thinkjson_edge.evaluation.text_errors import closest_part, edit_distance, line_edits

_lines = st.lists(st.text(alphabet="ab c1.", min_size=1, max_size=12), max_size=6)


def test_edit_distance_counts_each_kind_of_edit() -> None:
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == edit_distance("abc", "") == 3
    assert edit_distance("same", "same") == 0


def test_closest_part_finds_the_wanted_text_inside_a_longer_one() -> None:
    assert closest_part("abc", "xxabcyy") == (0, 2, 5)
    assert closest_part("abc", "xxabyy") == (1, 2, 4)  # "ab": one character missing
    assert closest_part("abc", "") == (3, 0, 0)


def test_a_name_and_its_price_read_on_one_line_cost_nothing() -> None:
    """The transcript lists the names, then the prices; we read each pair as one line."""
    transcript = "KUIH KETAYAP\nONDEH ONDEH\nRM2.70\nRM2.95\n"
    read = "KUIH KETAYAP RM2.70\nONDEH ONDEH RM2.95\n"
    characters = sum(map(len, ("kuih ketayap", "ondeh ondeh", "rm2.70", "rm2.95")))
    assert line_edits(read, transcript) == (0, characters)
    assert edit_distance(read.lower(), transcript.lower()) > 10


def test_misread_missing_and_extra_characters_are_counted() -> None:
    assert line_edits("T0TAL 5.00", "TOTAL 5.00")[0] == 1
    assert line_edits("TOTAL 5.00", "TOTAL 5.00\nCASH")[0] == 4  # a line not read
    assert line_edits("TOTAL 5.00\nTHANK YOU", "TOTAL 5.00")[0] == 8  # read, in no line


@given(_lines)
def test_a_text_has_no_errors_against_itself_in_any_order(lines: list[str]) -> None:
    text = "\n".join(lines)
    assert line_edits(text, text)[0] == 0
    assert line_edits("\n".join(reversed(lines)), text)[0] == 0


@given(_lines, _lines)
def test_edits_are_bounded_by_deleting_everything_and_reading_anew(
    read: list[str], transcript: list[str]
) -> None:
    edits, characters = line_edits("\n".join(read), "\n".join(transcript))
    read_characters = sum(len(line.replace(" ", "")) for line in read)
    assert 0 <= edits <= characters + read_characters
