"""GBNF building blocks for the JSON Schema compiler: integer ranges and string formats.

Integer bounds and common string formats are enforced by the grammar itself, so the
model cannot produce a value the validator would reject and then need a retry.

* ``integer_range`` writes a compact expression for the canonical JSON integers in an
  inclusive range: the range is cut into digit-length bands, a partial band into
  per-position digit classes (the classic "regex for a numeric range" construction),
  and negative numbers mirror the non-negative construction behind a ``"-"``.
* ``FORMAT_RULES`` gives, per ``format``, an expression for the content between a JSON
  string's quotes. Every expression is self-contained (it refers to no other rule) and
  only admits printable ASCII that is valid raw inside a JSON string.
"""

from __future__ import annotations

import math
import re
from typing import Any

UNBOUNDED_DIGITS = 18
"""How many digits an integer may have on a side the schema leaves unbounded."""

_LITERAL = re.compile(r'"[0-9-]+"')


# -- integer ranges ------------------------------------------------------------------


def inclusive_integer_bounds(schema: dict[str, Any]) -> tuple[int | None, int | None]:
    """The inclusive integer bounds a schema's numeric bound keywords imply.

    Handles ``minimum``/``maximum`` with draft 2020-12 numeric ``exclusiveMinimum``/
    ``exclusiveMaximum`` and the draft-4 boolean form, where ``exclusiveMinimum: true``
    makes ``minimum`` itself exclusive. Float bounds round inwards (ceil/floor).
    """
    low = _lower_bound(schema.get("minimum"), schema.get("exclusiveMinimum"))
    high = _upper_bound(schema.get("maximum"), schema.get("exclusiveMaximum"))
    return low, high


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _lower_bound(minimum: Any, exclusive: Any) -> int | None:
    candidates = []
    if _is_number(minimum):
        candidates.append(math.floor(minimum) + 1 if exclusive is True else math.ceil(minimum))
    if _is_number(exclusive):
        candidates.append(math.floor(exclusive) + 1)
    return max(candidates) if candidates else None


def _upper_bound(maximum: Any, exclusive: Any) -> int | None:
    candidates = []
    if _is_number(maximum):
        candidates.append(math.ceil(maximum) - 1 if exclusive is True else math.floor(maximum))
    if _is_number(exclusive):
        candidates.append(math.ceil(exclusive) - 1)
    return min(candidates) if candidates else None


def effective_integer_bounds(minimum: int | None, maximum: int | None) -> tuple[int, int]:
    """The finite range ``integer_range`` admits for possibly unbounded bounds.

    An unbounded side stops at ``UNBOUNDED_DIGITS`` digits (as the plain integer rule
    does), or at as many digits as the other bound has, when that is more: a bound
    beyond 18 digits must not leave the range empty.
    """
    given = [len(str(abs(bound))) for bound in (minimum, maximum) if bound is not None]
    digits = max([UNBOUNDED_DIGITS, *given])
    limit = 10**digits - 1
    return (-limit if minimum is None else minimum), (limit if maximum is None else maximum)


def integer_range(minimum: int | None, maximum: int | None) -> str:
    """A GBNF expression for exactly the canonical JSON integers in ``[minimum, maximum]``.

    Canonical means no leading zeros, no ``+`` and no ``-0``. ``None`` leaves a side
    unbounded (see ``effective_integer_bounds``). The result is one parenthesised group
    when it has alternatives, so it can be placed anywhere in a sequence.
    """
    if minimum is not None and maximum is not None and minimum > maximum:
        raise ValueError(f"empty integer range: minimum {minimum} > maximum {maximum}")
    low, high = effective_integer_bounds(minimum, maximum)
    negative = (max(1, -high), -low) if low < 0 else None  # magnitudes of the negatives
    positive = (max(1, low), high) if high > 0 else None
    options = []
    if negative is not None and negative == positive:  # symmetric: share one expression
        options.append(_seq('"-"?', _group(_positive_range(*positive))))
        positive = None
    elif negative is not None:
        options.append(_seq('"-"', _group(_positive_range(*negative))))
    if low <= 0 <= high:
        options.append('"0"')
    if positive is not None:
        options.append(_positive_range(*positive))
    return _group(_alt(options), always=True)


def _positive_range(low: int, high: int) -> str:
    """Integers in ``[low, high]``, 1 <= low <= high, one alternative per digit-length band.

    Bands every number of a length is in (``[1-9] [0-9]{k}``) are merged into one
    alternative with a repetition range; only the first and last band can be partial.
    """
    options: list[str] = []
    full: list[int] = []  # lengths of the bands taken whole, consecutive
    full_at = 0  # where their merged alternative goes, to keep the bands in order
    for length in range(len(str(low)), len(str(high)) + 1):
        first, last = max(low, 10 ** (length - 1)), min(high, 10**length - 1)
        if first == 10 ** (length - 1) and last == 10**length - 1:
            if not full:
                full_at = len(options)
                options.append("")  # filled in once the run of whole bands is known
            full.append(length)
        else:
            options.append(_same_length(str(first), str(last)))
    if full:
        options[full_at] = _seq("[1-9]", _repeat("[0-9]", full[0] - 1, full[-1] - 1))
    return _alt(options)


def _same_length(low: str, high: str) -> str:
    """Digit strings of one length from ``low`` to ``high``, factoring the common prefix."""
    if low == high:
        return _literal(low)
    split = next(i for i, (a, b) in enumerate(zip(low, high, strict=True)) if a != b)
    first, last = int(low[split]), int(high[split])
    low_rest, high_rest = low[split + 1 :], high[split + 1 :]
    width = len(low_rest)
    whole_low, whole_high = set(low_rest) <= {"0"}, set(high_rest) <= {"9"}
    options = []
    if not whole_low:
        options.append(_seq(_literal(low[split]), _group(_at_least(low_rest))))
    middle = (first if whole_low else first + 1, last if whole_high else last - 1)
    if middle[0] <= middle[1]:
        options.append(_seq(_digits(*middle), _any_digits(width)))
    if not whole_high:
        options.append(_seq(_literal(high[split]), _group(_at_most(high_rest))))
    prefix = low[:split]
    return _seq(_literal(prefix), _group(_alt(options))) if prefix else _alt(options)


def _at_least(bound: str) -> str:
    """Digit strings of ``len(bound)`` digits (leading zeros allowed) that are >= bound."""
    head, rest = int(bound[0]), bound[1:]
    if set(rest) <= {"0"}:
        return _seq(_digits(head, 9), _any_digits(len(rest)))
    options = [_seq(_literal(bound[0]), _group(_at_least(rest)))]
    if head < 9:
        options.append(_seq(_digits(head + 1, 9), _any_digits(len(rest))))
    return _alt(options)


def _at_most(bound: str) -> str:
    """Digit strings of ``len(bound)`` digits (leading zeros allowed) that are <= bound."""
    head, rest = int(bound[0]), bound[1:]
    if set(rest) <= {"9"}:
        return _seq(_digits(0, head), _any_digits(len(rest)))
    options = []
    if head > 0:
        options.append(_seq(_digits(0, head - 1), _any_digits(len(rest))))
    options.append(_seq(_literal(bound[0]), _group(_at_most(rest))))
    return _alt(options)


# -- expression text -------------------------------------------------------------------


def _literal(digits: str) -> str:
    return f'"{digits}"' if digits else ""


def _digits(first: int, last: int) -> str:
    """One digit from ``first`` to ``last``: a literal, a pair or a range class."""
    if first == last:
        return f'"{first}"'
    return f"[{first}{last}]" if last == first + 1 else f"[{first}-{last}]"


def _repeat(atom: str, low: int, high: int) -> str:
    if high == 0:
        return ""
    if low == high:
        return atom if low == 1 else f"{atom}{{{low}}}"
    return f"{atom}?" if (low, high) == (0, 1) else f"{atom}{{{low},{high}}}"


def _any_digits(count: int) -> str:
    return _repeat("[0-9]", count, count)


def _seq(*parts: str) -> str:
    """Parts in sequence; adjacent number literals merge into one (``"-" "2"`` -> ``"-2"``)."""
    merged: list[str] = []
    for part in filter(None, parts):
        if merged and _LITERAL.fullmatch(merged[-1]) and _LITERAL.fullmatch(part):
            merged[-1] = merged[-1][:-1] + part[1:]
        else:
            merged.append(part)
    return " ".join(merged)


def _alt(options: list[str]) -> str:
    return " | ".join(dict.fromkeys(options))


def _has_top_level_alternative(expr: str) -> bool:
    """Whether ``expr`` has a ``|`` outside parentheses.

    A plain scan is enough: the expressions grouped here have no ``(``, ``)`` or ``|``
    inside their literals and character classes.
    """
    depth = 0
    for char in expr:
        depth += (char == "(") - (char == ")")
        if char == "|" and depth == 0:
            return True
    return False


def _group(expr: str, *, always: bool = False) -> str:
    """``expr`` in parentheses when it has alternatives (or ``always`` and not a single atom)."""
    if _has_top_level_alternative(expr) or (always and " " in expr):
        return f"({expr})"
    return expr


# -- string formats ----------------------------------------------------------------------

_HEX = "[0-9a-fA-F]"
_H16 = f"{_HEX}{{1,4}}"
_OCTET = integer_range(0, 255)
_IPV4 = f'{_OCTET} ("." {_OCTET}){{3}}'


def _ipv6() -> str:
    """RFC 4291 text forms: 8 groups, ``::`` for one or more zero groups, IPv4 tail.

    An embedded IPv4 address counts as two groups. With ``::`` the groups written on
    both sides total at most 7 (``::`` stands for at least one group), which is also
    what Python's ``ipaddress`` requires.
    """
    full = f'({_H16} ":"){{6}} ({_H16} ":" {_H16} | {_IPV4})'
    options = [full]
    for left in range(8):  # groups before "::"
        head = _seq(_H16, _repeat(f'(":" {_H16})', left - 1, left - 1)) if left else ""
        room = 7 - left  # groups that may follow "::"
        tails = []
        if room >= 1:
            tails.append(_seq(_repeat(f'({_H16} ":")', 0, room - 1), _H16))
        if room >= 2:
            tails.append(_seq(_repeat(f'({_H16} ":")', 0, room - 2), _IPV4))
        tail = f"({' | '.join(tails)})?" if tails else ""
        options.append(_seq(head, '"::"', tail))
    return _group(_alt(options))


_EMAIL_LOCAL = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}"
_DOMAIN_LABEL = "[A-Za-z0-9-]{1,63}"
_URI_CHAR = "[A-Za-z0-9._~:/?#@!$&'()*+,;=-]"  # unreserved and reserved, less "[" and "]"

_DATE = '[0-9]{4} "-" ("0" [1-9] | "1" [0-2]) "-" ("0" [1-9] | [12] [0-9] | "3" [01])'
_TIME = (
    '([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ("." [0-9]{1,6})? '
    '("Z" | [+-] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9])'
)

FORMAT_RULES: dict[str, str] = {
    # RFC 3339 full-date, partial time with a required offset, and both joined by "T".
    "date": _DATE,
    "time": _TIME,
    "date-time": f'{_DATE} "T" {_TIME}',
    "uuid": f'{_HEX}{{8}} "-" {_HEX}{{4}} "-" {_HEX}{{4}} "-" {_HEX}{{4}} "-" {_HEX}{{12}}',
    # Dotted quad, octets 0-255 without leading zeros (as ipaddress.IPv4Address).
    "ipv4": _IPV4,
    "ipv6": _ipv6(),
    # A practical subset of RFC 5321: dot-atom characters for the local part, and a
    # dotted host name of at least two labels.
    "email": f'{_EMAIL_LOCAL} "@" {_DOMAIN_LABEL} ("." {_DOMAIN_LABEL})+',
    # Scheme, ":", then up to 256 URI characters or %XX escapes; "[" and "]" are
    # written as literals to keep the character class free of escapes.
    "uri": (f'[A-Za-z] [A-Za-z0-9+.-]* ":" ({_URI_CHAR} | "[" | "]" | "%" {_HEX}{{2}}){{0,256}}'),
}
"""Format name -> GBNF expression for the content between a JSON string's quotes."""
