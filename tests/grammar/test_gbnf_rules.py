"""Integer ranges and string formats, checked through llama.cpp's own grammar engine.

Each expression goes into a one-rule grammar, and ``Engine.grammar_accepts`` feeds a
text's tokens (the default model's vocabulary) through the grammar sampler that
generation uses, so what passes here is what the model can produce.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import random
import re
from collections.abc import Iterator

import pytest
from jsonschema import FormatChecker

from thinkjson_edge.engine.llama import Engine
from thinkjson_edge.grammar.rules import (
    FORMAT_RULES,
    effective_integer_bounds,
    inclusive_integer_bounds,
    integer_range,
)
from thinkjson_edge.models.choice import choose_model

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """The default model's vocabulary through real llama.cpp, loaded once for this module."""
    loaded = Engine(choose_model().path, device="cpu")
    yield loaded
    loaded.close()


# -- integer ranges ------------------------------------------------------------------

RANGES: list[tuple[int | None, int | None]] = [
    (None, None),
    (0, None),
    (1, None),
    (-5, None),
    (12345, None),
    (None, 0),
    (None, -1),
    (None, 77),
    (None, -5000),
    (0, 0),
    (7, 7),
    (-7, -7),
    (-1, 0),
    (0, 1),
    (-5, 5),
    (-100, -3),
    (-4567, -123),
    (-999, 12345),
    (0, 9),
    (1, 9),
    (9, 10),
    (10, 99),
    (99, 100),
    (0, 255),
    (123, 4567),
    (185, 1815),  # inner digits 8 and 1: the edge digit classes [9] and [0]
    (-1815, -185),
    (0, 1_000_000_000),
    (17, 4_000_000_000_000),
    (-(10**12) + 7, 10**15 - 3),
    (10**17, None),
    (None, -(10**20)),
]


def number_samples(low: int, high: int) -> list[int]:
    """Numbers where a digit-class boundary can be wrong, and a few seeded random ones.

    That is: around zero, every power of ten, both bounds, and each bound rounded down
    and up at every digit position (185 -> 179, 180, 189, 190, 199, 200, ...).
    """
    around = {0, 1, -1}
    for exponent in range(len(str(max(abs(low), abs(high)))) + 2):
        power = 10**exponent
        around |= {power - 1, power, -(power - 1), -power}
        for bound in (low, high):
            floor = bound // power * power
            around |= {floor - 1, floor, floor + power - 1, floor + power}
    for bound in (low, high):
        around |= {bound + delta for delta in (-2, -1, 0, 1, 2)}
    rng = random.Random(low * 31 + high)
    around |= {rng.randint(low, high) for _ in range(8)}
    around |= {rng.randint(low - 1000, low) for _ in range(2)}
    around |= {rng.randint(high, high + 1000) for _ in range(2)}
    return sorted(around)


@pytest.mark.parametrize(("minimum", "maximum"), RANGES, ids=str)
def test_integer_range_admits_exactly_the_range(
    engine: Engine, minimum: int | None, maximum: int | None
) -> None:
    grammar = f"root ::= {integer_range(minimum, maximum)}\n"
    low, high = effective_integer_bounds(minimum, maximum)
    wrong = [
        n
        for n in number_samples(low, high)
        if engine.grammar_accepts(grammar, str(n)) != (low <= n <= high)
    ]
    assert not wrong, f"{grammar.strip()}: wrong for {wrong}"


def test_unbounded_sides_stop_at_18_digits() -> None:
    limit = 10**18 - 1
    assert effective_integer_bounds(None, None) == (-limit, limit)
    assert effective_integer_bounds(5, None) == (5, limit)
    assert effective_integer_bounds(None, -(10**20)) == (-(10**21 - 1), -(10**20))


@pytest.mark.parametrize(("minimum", "maximum"), [(None, None), (-5, 5), (0, 1_000_000_000)])
@pytest.mark.parametrize("text", ["01", "-0", "+1", "1.0", "00", "-01", "1e2", " 1", "1 ", "", "-"])
def test_integer_range_rejects_non_canonical_forms(
    engine: Engine, minimum: int | None, maximum: int | None, text: str
) -> None:
    assert not engine.grammar_accepts(f"root ::= {integer_range(minimum, maximum)}\n", text)


def test_empty_range_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty integer range"):
        integer_range(5, 4)


@pytest.mark.parametrize(
    ("minimum", "maximum"),
    [
        (0, 10**15),
        (0, 1_000_000_000),
        (-999, 12345),
        (17, 4_000_000_000_000),
        (-987_654_321_098_765_432, 123_456_789_012_345_678),
        (123_456_789_012_345_678, 987_654_321_098_765_432),
    ],
)
def test_expressions_stay_compact(minimum: int, maximum: int) -> None:
    assert len(integer_range(minimum, maximum)) < 2048


@pytest.mark.parametrize(
    ("schema", "bounds"),
    [
        ({}, (None, None)),
        ({"minimum": 3, "maximum": 9}, (3, 9)),
        ({"minimum": 2.5, "maximum": 9.5}, (3, 9)),
        ({"minimum": -2.5, "maximum": -0.5}, (-2, -1)),
        ({"exclusiveMinimum": 3, "exclusiveMaximum": 9}, (4, 8)),
        ({"exclusiveMinimum": 2.5, "exclusiveMaximum": 9.5}, (3, 9)),
        ({"minimum": 5, "exclusiveMinimum": 3}, (5, None)),  # the tighter bound wins
        ({"maximum": 5, "exclusiveMaximum": 5}, (None, 4)),
        ({"minimum": 3, "exclusiveMinimum": True, "maximum": 9, "exclusiveMaximum": True}, (4, 8)),
        ({"minimum": 3, "exclusiveMinimum": False, "maximum": 9.0}, (3, 9)),
        ({"minimum": 2.5, "exclusiveMinimum": True}, (3, None)),
        ({"exclusiveMinimum": True}, (None, None)),  # draft-4 flag without a minimum
    ],
)
def test_inclusive_integer_bounds(
    schema: dict[str, object], bounds: tuple[int | None, int | None]
) -> None:
    assert inclusive_integer_bounds(schema) == bounds


# -- string formats ------------------------------------------------------------------


def format_grammar(fmt: str) -> str:
    return f'root ::= "\\"" {FORMAT_RULES[fmt]} "\\""\n'


def admitted(engine: Engine, fmt: str, values: list[str]) -> dict[str, bool]:
    grammar = format_grammar(fmt)
    return {value: engine.grammar_accepts(grammar, json.dumps(value)) for value in values}


def stdlib_accepts(value: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(value).version == version
    except ValueError:
        return False


OCTETS = ["0", "00", "01", "1", "9", "10", "99", "100", "199", "200", "249", "250", "255", "256"]
IPV4_TRICKY = [
    "0.0.0.0",
    "255.255.255.255",
    "192.168.0.1",
    "256.1.1.1",
    "1.256.1.1",
    "01.2.3.4",
    "1.2.3.04",
    "1.2.3",
    "1.2.3.4.5",
    "1.2.3.4.",
    ".1.2.3.4",
    "1..2.3",
    "1.2.3.-4",
    " 1.2.3.4",
    "1.2.3.4 ",
    "1000.1.1.1",
    "a.b.c.d",
    "1.2.3.4/24",
    "",
]


def ipv4_cases() -> list[str]:
    rng = random.Random(4)
    generated = {".".join(rng.choices(OCTETS, k=rng.choice([3, 4, 4, 4, 5]))) for _ in range(150)}
    return IPV4_TRICKY + sorted(generated)


def test_ipv4_matches_the_stdlib(engine: Engine) -> None:
    cases = ipv4_cases()
    result = admitted(engine, "ipv4", cases)
    wrong = [value for value in cases if result[value] != stdlib_accepts(value, 4)]
    assert not wrong
    assert result["192.168.0.1"] and not result["256.1.1.1"]


IPV6_TRICKY = [
    "::",
    "::1",
    "1::",
    "fe80::1:2",
    "FE80::ABCD:ef01",
    "::ffff:192.168.0.1",
    "::192.168.0.1",
    "1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7",
    "1::2::3",
    ":::",
    ":1::",
    "1::2:",
    "1:2:3:4:5:6:7::",
    "::2:3:4:5:6:7:8",
    "1::3:4:5:6:7:8",
    "1::2:3:4:5:6:7:8",
    "1:2:3:4:5:6:1.2.3.4",
    "1:2:3:4:5:6:7:1.2.3.4",
    "1:2:3:4:5::1.2.3.4",
    "1:2:3:4:5:6::1.2.3.4",
    "::1.2.3",
    "::256.1.1.1",
    "::01.2.3.4",
    "1.2.3.4::",
    "12345::",
    "g::1",
    "0000:0000:0000:0000:0000:0000:0000:0001",
    "fe80::1%eth0",  # a scope id: outside RFC 4291, and jsonschema rejects it too
    "",
]
IPV6_GROUPS = ["0", "ffff", "ABCD", "1a2"]


def ipv6_cases() -> list[str]:
    """Every split of groups around an optional "::", with and without an IPv4 tail."""
    rng = random.Random(6)
    cases = set()
    for left, right, compressed, tail in itertools.product(range(9), range(9), [0, 1], [0, 1]):
        if not compressed and right:
            continue
        groups = [rng.choice(IPV6_GROUPS) for _ in range(left + right)]
        head, rest = ":".join(groups[:left]), ":".join(groups[left:])
        text = f"{head}::{rest}" if compressed else head
        if tail:
            text += ("" if text.endswith(":") or not text else ":") + "10.0.0.255"
        cases.add(text)
    return IPV6_TRICKY + sorted(cases - set(IPV6_TRICKY))


def test_ipv6_matches_the_stdlib(engine: Engine) -> None:
    cases = ipv6_cases()
    result = admitted(engine, "ipv6", cases)
    expected = {value: stdlib_accepts(value, 6) and "%" not in value for value in cases}
    wrong = [value for value in cases if result[value] != expected[value]]
    assert not wrong
    assert sum(expected.values()) > 60  # the generated cases cover many valid forms


FORMAT_EXAMPLES: dict[str, tuple[list[str], list[str]]] = {
    "email": (
        [
            "john.doe@example.com",
            "x@a.b",
            "o'brien+tag@mail.co.uk",
            "a/b=c?d^e{f}|~`#$%&*!_@x-y.org",
            "A" * 64 + "@example.com",
            "user@sub.domain-with-hyphen.example",
            "1@2.3",
        ],
        [
            "plainaddress",
            "@example.com",
            "a@b",
            "a@.com",
            "a@b.",
            "a@b..com",
            "a b@c.com",
            "a@b c.com",
            "a@b_c.com",
            "a@@b.com",
            "A" * 65 + "@example.com",
            "a@" + "b" * 64 + ".com",
            'a"b@c.com',
            "a\\b@c.com",
            "\u00e9@x.com",
            "a@x.com\n",
            "",
        ],
    ),
    "uri": (
        [
            "https://example.com/path?q=1&r=a+b#frag",
            "urn:isbn:0451450523",
            "mailto:someone@example.com",
            "http://[::1]:8080/",
            "ftp://ftp.is.co.za/rfc/rfc1808.txt",
            "http://example.com/a%20b%2F",
            "tel:+1-816-555-1212",
            "a:",
            "x.y-z+w:(a)*;b=c,d!$'~",
            "http://x/" + "a" * 252,  # 256 characters after the scheme
        ],
        [
            "example.com",
            "1http://example.com",
            "://example.com",
            "http://exa mple.com",
            "http://x/%zz",
            "http://x/%2",
            'http://x/"',
            "http://x/\\",
            "http://x/<>",
            "http://x/{}",
            "http://x/\u00e9",
            "http://x/\t",
            "http://x/" + "a" * 253,
            "",
        ],
    ),
    "ipv4": (["1.2.3.4", "10.0.0.255"], ['1.2.3.4"', "1.2.3.\\4"]),
    "ipv6": (["2001:db8::ff00:42:8329"], ['::1"', "::\\1", "2001:db8::ff00:42:8329:1:2:3"]),
}


@pytest.mark.parametrize("fmt", sorted(FORMAT_EXAMPLES))
def test_format_examples(engine: Engine, fmt: str) -> None:
    valid, invalid = FORMAT_EXAMPLES[fmt]
    result = admitted(engine, fmt, valid + invalid)
    assert [value for value in valid if not result[value]] == []
    assert [value for value in invalid if result[value]] == []


@pytest.mark.parametrize("fmt", sorted(FORMAT_EXAMPLES))
def test_admitted_examples_pass_jsonschema(fmt: str) -> None:
    """What the grammar admits, the validator's format checker accepts too."""
    checker = FormatChecker()
    assert all(checker.conforms(value, fmt) for value in FORMAT_EXAMPLES[fmt][0])


_TERMINAL = re.compile(r'"([^"]*)"|\[([^\]]*)\]')


def admitted_characters(expr: str) -> set[str]:
    """Every character a literal or character class of ``expr`` can produce.

    The expressions use no escapes and no negated classes (checked here), so the
    literals and classes found by a plain scan are all there is.
    """
    assert "\\" not in expr and "[^" not in expr
    chars: set[str] = set()
    for literal, klass in _TERMINAL.findall(expr):
        chars |= set(literal)
        for first, dash, last in re.findall(r"(.)(-(?!$)(.))?", klass):
            end = last if dash else first
            chars |= {chr(code) for code in range(ord(first), ord(end) + 1)}
    return chars


@pytest.mark.parametrize("fmt", sorted(FORMAT_RULES))
def test_formats_only_admit_raw_json_string_characters(fmt: str) -> None:
    chars = admitted_characters(FORMAT_RULES[fmt])
    assert chars
    assert all(" " < char <= "~" for char in chars)
    assert not chars & {'"', "\\"}
