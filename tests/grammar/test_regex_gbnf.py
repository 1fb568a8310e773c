"""What grammars compiled from ``pattern`` admit, checked through llama.cpp's grammar engine.

Python's ``re.search`` is the oracle: it is what the validator (jsonschema) runs after
generation. Each example's JSON text is ``json.dumps(s, ensure_ascii=False)``, the
spelling the grammar admits (raw non-ASCII, short escapes, ``\\u00XX`` for other controls).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from thinkjson_edge.engine.llama import Engine
from thinkjson_edge.grammar.regex import (
    MAX_CODE_POINT,
    PYTHON_SPACE,
    UnsupportedPattern,
    pattern_to_gbnf,
)
from thinkjson_edge.models.choice import choose_model

pytestmark = pytest.mark.model

CHAR = r'char ::= [^"\\\x00-\x1F\x7F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """Real llama.cpp with the default model's vocabulary; no text is generated."""
    loaded = Engine(choose_model().path, device="cpu")
    yield loaded
    loaded.close()


def grammar_for(pattern: str, **options: int) -> str:
    return f'root ::= "\\"" {pattern_to_gbnf(pattern, **options)} "\\""\n{CHAR}\n'


def dumps(value: str) -> str:
    """JSON text as the grammar spells it: raw non-ASCII, DEL escaped (as ``char`` wants)."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


# (pattern, strings re.search accepts, strings it rejects)
CASES: list[tuple[str, list[str], list[str]]] = [
    (
        r"^[A-Z]{2}-\d{3}$",
        ["AB-123", "ZZ-000"],
        ["ab-123", "AB-12", "AB-1234", "AB123", "AB-12\n3", 'A"-123', "xAB-123"],
    ),
    (
        r"^\d{4}-\d{2}-\d{2}$",
        ["2024-01-31", "0000-00-00"],
        ["2024-1-31", "2024-01-31x", " 2024-01-31", "2024/01/31", "2024-01-3\\"],
    ),
    (
        r"^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$",
        ["a.b+c@example.com", "x_y%z@sub.domain.org", "me@a.b.co"],
        ["a@b", "a@b.c", "a b@c.com", 'a"b@c.com', "@c.com", "a@b.c0m", "a@b.com\\"],
    ),
    (
        r"^(\+\d{1,3})?\d{10}$",
        ["1234567890", "+441234567890", "+11234567890"],
        ["123456789", "+1234567890", "++1234567890", "12345678901", "+12 34567890"],
    ),
    (
        r"^[^\s]+$",
        ["abc", 'a"b', "a\\b", "é", "😀", "a/b", "\x01"],
        ["a b", "a\nb", "", "a\tb", "a\u00a0b", "a\u2003b", "\x1c"],
    ),
    (r"^(yes|no)$", ["yes", "no"], ["yesno", "Yes", "", "ye", "no "]),
    (r"ab", ["ab", "xaby", 'q"ab\\', "a\nab", "abab"], ["a", "ba", "a b", "", 'a"b']),
    (r"^#[0-9a-fA-F]{6}$", ["#00ff00", "#ABCDEF"], ["#00ff0", "00ff00", "#00ff0g", "#00ff000"]),
    (
        r"^\S+$",
        ["x", 'say"hi"', "back\\slash", "\x01\x7f", "日本"],
        ["a b", "\x1c", "a\u3000b", "", "a\nb"],
    ),
    (
        r"^.{3,5}$",
        ["abc", 'a"b\\c', "é😀x", "a\tb", "\x00\x08\x0c"],
        ["ab", "abcdef", "a\nb", "a\n", ""],
    ),
    (r"^[\w-]+$", ["abc_12-x", "-", "Z"], ["a b", "a.b", "a/b", 'a"b', "", "a\\b"]),
    (r"(?:abc)+", ["abc", "xxabcabcyy", "abcab"], ["ab", "acb", "a\nbc", ""]),
    (r"^a*?b$", ["b", "aaab"], ["ab ", "ba", "aa", "", "abb"]),
    (
        r"^https?://",
        ["http://x", "https://example.com/a?b=c", "http://"],
        ["ftp://x", "xhttp://", "https:/", "HTTP://x"],
    ),
    (r"^say \"hi\"$", ['say "hi"'], ["say hi", "say 'hi'", 'say "hi"!', 'say \\"hi\\"']),
    (r"^C:\\[a-z]+$", ["C:\\temp"], ["C:/temp", "C:\\Temp", "C:\\\\temp", "C:temp"]),
    (
        r"^[^a]$",
        ['"', "\\", "\n", "b", "é", "\x1f", "/"],
        ["a", "ab", "", '""'],
    ),
    (r"^\d+(\.\d{1,2})?$", ["12", "12.5", "0.99"], ["12.", ".5", "12.345", "1,5", "1e5"]),
    (
        r"^[A-Z][a-z]+(?: [A-Z][a-z]+)*$",
        ["John", "John Smith", "Ann Lee Ray"],
        ["john", "John  Smith", "John smith", "John "],
    ),
    # 😀 is split across tokens: classes excluding non-ASCII must still admit its first bytes
    (r"^\D+$", ["abc", "é", "a b", '"', "😀", "a—b"], ["a1", "", "a٣"]),
    (r"^[^\u2028🗿]+$", ["😀", "a—b…", "x"], ["\u2028", "a🗿b", ""]),
    (r"^(?P<year>\d{4})-(?:\d{2})$", ["2024-05"], ["2024-5", "2024-056"]),
    (r"^[\u00C0-\u00FF]+$", ["éà", "ÿ"], ["e", "", "éa"]),
    (r"^a\tb$", ["a\tb"], ["a b", "a\\tb", "ab"]),
    (r"^line1\nline2$", ["line1\nline2"], ["line1line2", "line1\\nline2", "line1 line2"]),
    (r"^\x41\u0042$", ["AB"], ["ab", "A", "AB "]),
    (r"^[a-z]{2,}$", ["ab", "a" * 64], ["a", "", "aB"]),
    (r"^(?:\d{3}-){2}\d{4}$", ["555-123-4567"], ["555-1234567", "555-123-456", "55-123-4567"]),
    (r"^[^@\s]+@[^@\s]+$", ["a@b", 'x"y@z\\'], ["a@b@c", "a @b", "@b", "a@"]),
    (r"^[\[\]{}()*+?.^$|\\/-]+$", ["[]{}()*+?.^$|\\/-", "-", "^"], ["a", "", "[a]"]),
    (r"\.pdf$", ["doc.pdf", "a.b.pdf", ".pdf"], ["docpdf", "doc.pdf.", "doc.PDF", "doc.pdf x"]),
    (r"^[A-Z]{3}$|^\d{3}$", ["ABC", "123"], ["AB1", "ABCD", "1234", ""]),
    (r"(^a|b$)", ["ax", "xb", "a", "b", "ab"], ["xa", "bx", "", "c"]),
    (r"^\{\s*\}$", ["{}", "{ }", "{\n\t}"], ["{x}", "{", "{ } "]),
    (r"^[a-c-e]$", ["b", "-", "e"], ["d", "ae", ""]),
    (r"^\w+\s\w+$", ["hello world", "hello\tworld", "a\nb"], ["helloworld", "a  b", " a b"]),
    (r"^.*$", ["", "anything at all", 'q"\\'], ["a\nb", "\nx"]),
    (r"^(|a)b$", ["b", "ab"], ["aab", "", "a"]),
    (r"^$", [""], ["a", " "]),
    (r"^a{2}b{0,1000}c", ["aac", "aabbbc", "aabcx"], ["ac", "abc", "aab", "xaac"]),
    (r"^[\d\s]+[^\d\s]$", ["1 2x", "9é"], ["12", "1 2 ", "x"]),
]


@pytest.mark.parametrize(("pattern", "positives", "negatives"), CASES, ids=[c[0] for c in CASES])
def test_grammar_agrees_with_python_re(
    engine: Engine, pattern: str, positives: list[str], negatives: list[str]
) -> None:
    grammar = grammar_for(pattern)
    for text in positives:
        assert re.search(pattern, text), f"bad example: {pattern!r} should match {text!r}"
        assert engine.grammar_accepts(grammar, dumps(text)), f"{pattern!r} rejected {text!r}"
    for text in negatives:
        assert not re.search(pattern, text), f"bad example: {pattern!r} matches {text!r}"
        assert not engine.grammar_accepts(grammar, dumps(text)), f"{pattern!r} took {text!r}"


def test_enough_patterns() -> None:
    assert len(CASES) >= 25


# The grammar is narrower than Python's re on purpose: ECMA-262 and Python must both
# accept, repeats are bounded, and each character has one JSON spelling.
NARROWER: list[tuple[str, str, str]] = [
    (r"^(yes|no)$", dumps("no\n"), "Python's $ also matches before a final newline"),
    (r"^\d{4}$", dumps("٢٠٢٤"), "ECMA-262 \\d is ASCII"),
    (r"^[\w-]+$", dumps("é"), "ECMA-262 \\w is ASCII"),
    (r"^.{3}$", dumps("a\rb"), "ECMA-262 . excludes \\r"),
    (r"^.$", dumps("\u2028"), "ECMA-262 . excludes line separators"),
    (r"^\S$", dumps("\ufeff"), "ECMA-262 \\s includes the BOM"),
    (r"^a+$", dumps("a" * 65), "unbounded repeats stop at max_repeat"),
    (r"^é$", json.dumps("é"), "non-ASCII is written raw, not as \\u00e9"),
    (r"^a/b$", '"a\\/b"', "/ is written raw, not as \\/"),
]


@pytest.mark.parametrize(("pattern", "text", "why"), NARROWER, ids=[n[2] for n in NARROWER])
def test_grammar_is_narrower_by_design(engine: Engine, pattern: str, text: str, why: str) -> None:
    assert re.search(pattern, json.loads(text))
    assert not engine.grammar_accepts(grammar_for(pattern), text), why


@pytest.mark.parametrize("pattern", [r"^[^a]*$", r"^.*$", r"^\S*$", r"^\D*$", r'^[^"]*$', "a"])
@pytest.mark.parametrize(
    "text", ['"\x01a"', '"a\nb"', '"a"a"', '"\\xa"', '"a\\u12"', '"a\\', '"a\\q"', '"a\x7f"']
)
def test_never_admits_invalid_json(engine: Engine, pattern: str, text: str) -> None:
    assert not engine.grammar_accepts(grammar_for(pattern), text)


@pytest.mark.parametrize(
    "pattern",
    [
        "(?=a)",
        "(a)\\1",
        "\\bword",
        "\\p{L}",
        "(?<=a)b",
        "(?!a)b",
        "(?<!a)b",
        "(?i)abc",
        "(?P=x)",
        "\\k<x>",
        "a\\Bb",
        "\\cA",
        "a^b",
        "a$b",
        "(^a)?b",
        "[]a]",
        "[^]",
        "a{,3}",
        "a**",
        "a*+",
        "*a",
        "(a",
        "a)",
        "[a",
        "[a-\\d]",
        "[z-a]",
        "a{3,2}",
        "\\uD83D",
        "\\u{1F600}",
        "\\e",
        "\\012",
        "[^\\s\\S]",
    ],
)
def test_unsupported_patterns_raise(pattern: str) -> None:
    with pytest.raises(UnsupportedPattern):
        pattern_to_gbnf(pattern)


def test_unsupported_message_names_the_construct() -> None:
    for pattern, words in [
        ("(?=a)", "lookahead"),
        ("(a)\\1", "backreference"),
        ("\\bword", "word boundary"),
        ("\\p{L}", "Unicode property"),
    ]:
        with pytest.raises(UnsupportedPattern, match=words):
            pattern_to_gbnf(pattern)


def test_large_bounds_stay_compact(engine: Engine) -> None:
    assert pattern_to_gbnf("^x{0,1000}$") == '"x"{0,1000}'
    assert len(pattern_to_gbnf("^(ab|cd){5,100000}$")) < 40
    assert pattern_to_gbnf("^[a-z]+$", max_repeat=100000) == "[a-z]{1,2000}"
    grammar = grammar_for("^x{0,1000}$")
    assert engine.grammar_accepts(grammar, dumps("x" * 1000))
    assert not engine.grammar_accepts(grammar, dumps("x" * 1001))


def test_llama_cpp_repetition_limits_are_respected(engine: Engine) -> None:
    # Above 2000, llama.cpp would silently drop the bound: clamp (narrower, never wider).
    grammar = grammar_for("^x{0,5000}$")
    assert engine.grammar_accepts(grammar, dumps("x" * 2000))
    assert not engine.grammar_accepts(grammar, dumps("x" * 2001))
    # Nested repeats: the group's rules times the count must stay within its guard.
    for pattern, text in [
        (r"^[A-Z][a-z]+(?: [A-Z][a-z]+)*$", "Ann Lee " * 10 + "Ray"),
        (r"^(\s*[a-z]+){20}$", " ab" * 20),
        (r"^((a+b)+c)+$", "aabab" * 3 + "c" + "abc" * 5),
        (r"^(\w+\.)*\w+@(\w+\.)+[a-z]{2,}$", "first.last@mail.example.com"),
    ]:
        assert re.search(pattern, text)
        assert engine.grammar_accepts(grammar_for(pattern), dumps(text)), pattern
    with pytest.raises(UnsupportedPattern, match="limit"):
        pattern_to_gbnf("^(a?){1500}$")
    with pytest.raises(UnsupportedPattern, match="limit"):
        pattern_to_gbnf("^a{2500}$")


def test_max_repeat_bounds_unanchored_padding_and_repeats(engine: Engine) -> None:
    grammar = grammar_for("^a+b", max_repeat=3)
    assert engine.grammar_accepts(grammar, dumps("aaabxyz"))
    assert not engine.grammar_accepts(grammar, dumps("aaaab"))
    assert not engine.grammar_accepts(grammar, dumps("aaabwxyz"))


def test_expression_embeds_as_one_term() -> None:
    assert pattern_to_gbnf("^(yes|no)$") == '("yes" | "no")'
    assert pattern_to_gbnf("^a$|^b$") == '("a" | "b")'
    assert pattern_to_gbnf('^"$') == r'"\\\""'
    assert pattern_to_gbnf("ab", char_rule="any") == 'any{0,64} "ab" any{0,64}'


def test_python_whitespace_table_matches_this_python() -> None:
    spaces = [c for c in range(MAX_CODE_POINT + 1) if chr(c).isspace()]
    assert all(c in PYTHON_SPACE for c in spaces)
    assert sum(hi - lo + 1 for lo, hi in PYTHON_SPACE.ranges) == len(spaces)
