"""JSON Schema ``pattern`` (ECMA-262 regex) -> GBNF for the content of a JSON string.

The grammar constrains what the model writes, so it describes JSON *text*: a ``"`` in
the regex becomes ``\\"`` in the grammar, a newline becomes ``\\n``, and no class can
admit a raw quote, backslash or control character.

Design choices:

* The grammar may be narrower than the regex, never wider. Output is checked afterwards
  by ``jsonschema``, which runs Python's ``re``; ECMA-262 and Python disagree on
  ``\\d \\w \\s .`` outside ASCII, so a positive class takes what *both* engines match
  and a negated class excludes what *either* engine matches (Python's non-ASCII ``\\w``
  is taken as all of non-ASCII, so ``\\W`` and ``[^\\w]`` admit ASCII only). Unbounded
  repeats stop at ``max_repeat``, and ``$`` does not admit Python's trailing newline.
* Each character has one JSON spelling: raw (non-ASCII included), a short escape
  (``\\" \\\\ \\b \\f \\n \\r \\t``), or ``\\u00XX`` for other control characters and
  DEL. ``\\uXXXX`` spellings of printable characters are not admitted: the model writes
  the character itself, as ``json.dumps(..., ensure_ascii=False)`` does.
* Repeats use GBNF ``x{m,n}``, so large bounds stay small in text. llama.cpp turns a
  bound above 2000 into no bound and refuses a repeated group whose rules times its count
  exceed 2000, so bounds are clamped there and inner unbounded repeats narrowed to fit.
* What the grammar cannot express exactly (lookaround, backreferences, ``\\b``,
  ``\\p{..}``, inline flags, anchors in the middle) raises ``UnsupportedPattern``; the
  caller falls back to a free string and leaves the pattern to the validator.

Shape: ``_Parser`` turns the pattern into a small AST, ``_split_branches`` resolves the
anchors, and ``_Emitter`` writes GBNF.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["MAX_GROUP_DEPTH", "PatternTooDeep", "UnsupportedPattern", "pattern_to_gbnf"]

MAX_CODE_POINT = 0x10FFFF
_MAX_BRANCHES = 256  # anchors hoisted out of groups multiply branches; stop before a blow-up
# Groups nested deeper than this are refused: every stage here recurses per level, and so
# do Python's ``re`` and ``regex``, which fail with RecursionError near 400 levels.
MAX_GROUP_DEPTH = 100


class UnsupportedPattern(ValueError):
    """The pattern uses a construct the grammar cannot express (or that is invalid)."""


class PatternTooDeep(ValueError):
    """The pattern nests groups deeper than ``MAX_GROUP_DEPTH``: neither the grammar nor the
    validator can take it, so the schema is refused rather than left to the validator."""


# -- character sets ---------------------------------------------------------------------


@dataclass(frozen=True)
class CharSet:
    """A set of code points as sorted, disjoint, non-adjacent inclusive ranges."""

    ranges: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, *ranges: tuple[int, int] | int) -> CharSet:
        pairs = [(r, r) if isinstance(r, int) else r for r in ranges]
        return cls(_normalize(pairs))

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def __contains__(self, code: int) -> bool:
        return any(lo <= code <= hi for lo, hi in self.ranges)

    def __or__(self, other: CharSet) -> CharSet:
        return CharSet(_normalize([*self.ranges, *other.ranges]))

    def __sub__(self, other: CharSet) -> CharSet:
        return self & other.complement()

    def __and__(self, other: CharSet) -> CharSet:
        out = [
            (max(a, c), min(b, d))
            for a, b in self.ranges
            for c, d in other.ranges
            if max(a, c) <= min(b, d)
        ]
        return CharSet(_normalize(out))

    def complement(self) -> CharSet:
        out, start = [], 0
        for lo, hi in self.ranges:
            if lo > start:
                out.append((start, lo - 1))
            start = hi + 1
        if start <= MAX_CODE_POINT:
            out.append((start, MAX_CODE_POINT))
        return CharSet(tuple(out))

    def single(self) -> int | None:
        """The one code point of a one-element set, else None (literals merge into strings)."""
        if len(self.ranges) == 1 and self.ranges[0][0] == self.ranges[0][1]:
            return self.ranges[0][0]
        return None


def _normalize(pairs: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(pairs):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return tuple(out)


def _from_codes(codes: Iterable[int]) -> CharSet:
    return CharSet(_normalize((c, c) for c in codes))


ANY = CharSet.of((0, MAX_CODE_POINT))
DIGIT = CharSet.of((0x30, 0x39))
WORD = CharSet.of((0x30, 0x39), (0x41, 0x5A), 0x5F, (0x61, 0x7A))
NON_ASCII = CharSet.of((0x80, MAX_CODE_POINT))
# ECMA-262 WhiteSpace + LineTerminator, and Python's str.isspace() (what re's \s uses).
ECMA_SPACE = CharSet.of(
    (0x09, 0x0D), 0x20, 0xA0, 0x1680, (0x2000, 0x200A), 0x2028, 0x2029, 0x202F, 0x205F,
    0x3000, 0xFEFF,
)  # fmt: skip
PYTHON_SPACE = CharSet.of(
    (0x09, 0x0D), (0x1C, 0x20), 0x85, 0xA0, 0x1680, (0x2000, 0x200A), 0x2028, 0x2029,
    0x202F, 0x205F, 0x3000,
)  # fmt: skip
LINE_TERMINATORS = CharSet.of(0x0A, 0x0D, 0x2028, 0x2029)  # ECMA's; Python's `.` skips \n only


@functools.cache
def _python_digits() -> CharSet:
    """Python's Unicode ``\\d`` (category Nd), computed once, on first use (~70 ms)."""
    return _from_codes(c for c in range(MAX_CODE_POINT + 1) if chr(c).isdecimal())


@dataclass(frozen=True)
class _Shorthand:
    """A class escape as both engines read it: ``sure`` in both, ``maybe`` in either."""

    sure: CharSet
    maybe: CharSet

    def negated(self) -> _Shorthand:
        return _Shorthand(self.maybe.complement(), self.sure.complement())


def _shorthand(letter: str) -> _Shorthand:
    """``\\d \\w \\s`` and their negations; Python's non-ASCII ``\\w`` is taken as all non-ASCII."""
    lower = letter.lower()
    if lower == "d":
        base = _Shorthand(DIGIT, DIGIT | _python_digits())
    elif lower == "w":
        base = _Shorthand(WORD, WORD | NON_ASCII)
    else:
        base = _Shorthand(ECMA_SPACE & PYTHON_SPACE, ECMA_SPACE | PYTHON_SPACE)
    return base.negated() if letter.isupper() else base


# -- AST ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chars:
    """One character from a set."""

    chars: CharSet


@dataclass(frozen=True)
class Seq:
    """Items in order (plain groups are spliced in)."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Alt:
    """Alternatives (``|``)."""

    branches: tuple[Node, ...]


@dataclass(frozen=True)
class Repeat:
    """A quantified node; laziness is dropped, it does not change the language."""

    node: Node
    low: int
    high: int | None  # None: unbounded, bounded by max_repeat when emitted


@dataclass(frozen=True)
class Anchor:
    """``^`` or ``$``, resolved by ``_split_branches`` before emission."""

    kind: str  # "^" or "$"


Node = Chars | Seq | Alt | Repeat | Anchor


# -- parser -------------------------------------------------------------------------------

_QUANTIFIER = re.compile(r"\{(\d+)(,(\d*))?\}")
_GROUP_NAME = re.compile(r"(?:P?<)([A-Za-z_][A-Za-z0-9_]*)>")
_CONTROL_ESCAPES = {"t": 0x09, "n": 0x0A, "v": 0x0B, "f": 0x0C, "r": 0x0D}
_UNSUPPORTED_ESCAPES = {
    "b": "word boundary \\b",
    "B": "non-word boundary \\B",
    "p": "Unicode property escape \\p{..}",
    "P": "Unicode property escape \\P{..}",
    "k": "named backreference \\k<..>",
    "c": "control escape \\cX",
}


class _Parser:
    """Recursive descent over the ECMA-262 subset; one instance per pattern."""

    def __init__(self, pattern: str) -> None:
        self.text = pattern
        self.pos = 0
        self.depth = 0  # groups open at ``pos``

    def fail(self, what: str) -> UnsupportedPattern:
        return UnsupportedPattern(f"{what} at position {self.pos} of pattern {self.text!r}")

    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.text[index] if index < len(self.text) else ""

    def take(self) -> str:
        char = self.peek()
        if not char:
            raise self.fail("unexpected end of pattern")
        self.pos += 1
        return char

    def parse(self) -> Node:
        node = self.alternation()
        if self.pos < len(self.text):
            raise self.fail("unbalanced ')'")
        return node

    def alternation(self) -> Node:
        branches = [self.sequence()]
        while self.peek() == "|":
            self.pos += 1
            branches.append(self.sequence())
        return branches[0] if len(branches) == 1 else Alt(tuple(branches))

    def sequence(self) -> Node:
        items: list[Node] = []
        while self.peek() and self.peek() not in "|)":
            item = self.quantified()
            items += item.items if isinstance(item, Seq) else [item]  # a plain group: splice
        return items[0] if len(items) == 1 else Seq(tuple(items))

    def quantified(self) -> Node:
        node = self.atom()
        bounds = self.quantifier()
        if bounds is None:
            return node
        if isinstance(node, Anchor):
            raise self.fail(f"quantified anchor {node.kind!r}")
        if self.peek() == "?":
            self.pos += 1  # lazy: the same strings match
        if self.peek() in ("*", "+", "?") or self.quantifier_ahead():
            raise self.fail("a second quantifier (possessive or repeated)")
        return Repeat(node, *bounds)

    def quantifier_ahead(self) -> bool:
        return bool(_QUANTIFIER.match(self.text, self.pos))

    def quantifier(self) -> tuple[int, int | None] | None:
        char = self.peek()
        simple = {"*": (0, None), "+": (1, None), "?": (0, 1)}
        if char in simple:
            self.pos += 1
            return simple[char]
        if char != "{":
            return None
        if self.text.startswith("{,", self.pos):
            raise self.fail("'{,n}' (a quantifier in Python, a literal in ECMA-262)")
        match = _QUANTIFIER.match(self.text, self.pos)
        if not match:
            return None  # a literal '{' (Annex B and Python agree)
        low = int(match[1])
        high = None if match[2] and not match[3] else int(match[3] or match[1])
        if high is not None and high < low:
            raise self.fail(f"quantifier {match[0]} with max below min")
        self.pos = match.end()
        return low, high

    def atom(self) -> Node:
        char = self.take()
        if char == "(":
            return self.group()
        if char == "[":
            return Chars(self.char_class())
        if char == ".":
            return Chars(ANY - LINE_TERMINATORS)
        if char in "^$":
            return Anchor(char)
        if char == "\\":
            return self.escape()
        if char == ")":
            raise self.fail("unbalanced ')'")
        if char in "*+?" or (char == "{" and _QUANTIFIER.match(self.text, self.pos - 1)):
            raise self.fail(f"nothing to repeat before {char!r}")
        return Chars(CharSet.of(ord(char)))

    def group(self) -> Node:
        if self.depth >= MAX_GROUP_DEPTH:
            raise PatternTooDeep(
                f"the pattern nests groups more than {MAX_GROUP_DEPTH} deep (at position "
                f"{self.pos - 1}); simplify it"
            )
        if self.peek() == "?":
            self.group_kind()
        self.depth += 1
        node = self.alternation()
        self.depth -= 1
        if self.peek() != ")":
            raise self.fail("missing ')'")
        self.pos += 1
        return node

    def group_kind(self) -> None:
        """Skip a ``(?:`` or named-group header; raise for lookaround, flags and the like."""
        rest = self.text[self.pos + 1 :]
        for prefix, what in (
            ("=", "lookahead (?=...)"),
            ("!", "negative lookahead (?!...)"),
            ("<=", "lookbehind (?<=...)"),
            ("<!", "negative lookbehind (?<!...)"),
            ("P=", "named backreference (?P=...)"),
        ):
            if rest.startswith(prefix):
                raise self.fail(what)
        if rest.startswith(":"):
            self.pos += 2
            return
        if name := _GROUP_NAME.match(rest):
            self.pos += 1 + name.end()
            return
        raise self.fail(f"group syntax '(?{rest[:1]}' (inline flags, comments or similar)")

    def escape(self) -> Node:
        char = self.peek()
        if char and char in "dDwWsS":
            self.pos += 1
            return Chars(_shorthand(char).sure)
        if char.isdigit() and char != "0":
            raise self.fail(f"backreference \\{char}")
        return Chars(CharSet.of(self.escaped_char()))

    def escaped_char(self) -> int:
        """The code point of a single-character escape (after the backslash)."""
        char = self.take()
        if char in _CONTROL_ESCAPES:
            return _CONTROL_ESCAPES[char]
        if char == "0":
            if self.peek().isdigit():
                raise self.fail("octal escape")
            return 0
        if char in "xu":
            return self.hex_escape(char)
        if char in _UNSUPPORTED_ESCAPES:
            raise self.fail(_UNSUPPORTED_ESCAPES[char])
        if char.isascii() and char.isalnum():
            raise self.fail(f"unknown escape \\{char}")
        return ord(char)

    def hex_escape(self, kind: str) -> int:
        width = 2 if kind == "x" else 4
        digits = self.text[self.pos : self.pos + width]
        if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
            raise self.fail(f"malformed \\{kind} escape (only \\xHH and \\uHHHH are supported)")
        self.pos += width
        code = int(digits, 16)
        if 0xD800 <= code <= 0xDFFF:
            raise self.fail("surrogate \\u escape (engines disagree on surrogate pairs)")
        return code

    def char_class(self) -> CharSet:
        negated = self.peek() == "^"
        if negated:
            self.pos += 1
        if self.peek() == "]":
            raise self.fail("class starting with ']' (empty in ECMA-262, literal in Python)")
        sure, maybe = CharSet(()), CharSet(())
        while self.peek() != "]":
            item = self.class_item()
            sure, maybe = sure | item.sure, maybe | item.maybe
        self.pos += 1
        return maybe.complement() if negated else sure

    def class_item(self) -> _Shorthand:
        """One class member or range; a shorthand may not end a range."""
        low = self.class_atom()
        if self.peek() != "-" or self.peek(1) in ("]", ""):
            return low
        self.pos += 1
        high = self.class_atom()
        start, end = low.sure.single(), high.sure.single()
        if start is None or end is None or low.sure != low.maybe or high.sure != high.maybe:
            raise self.fail("class range with a shorthand endpoint")
        if start > end:
            raise self.fail("class range out of order")
        chars = CharSet.of((start, end))
        return _Shorthand(chars, chars)

    def class_atom(self) -> _Shorthand:
        char = self.take()
        if char != "\\":
            chars = CharSet.of(ord(char))
            return _Shorthand(chars, chars)
        if self.peek() and self.peek() in "dDwWsS":
            return _shorthand(self.take())
        if self.peek() == "b":  # backspace inside a class, in both engines
            self.pos += 1
            return _Shorthand(CharSet.of(0x08), CharSet.of(0x08))
        if self.peek().isdigit() and self.peek() != "0":
            raise self.fail(f"backreference or octal escape \\{self.peek()} in a class")
        chars = CharSet.of(self.escaped_char())
        return _Shorthand(chars, chars)


# -- anchors ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Branch:
    """One top-level alternative with its anchors resolved."""

    items: tuple[Node, ...]
    start_anchored: bool
    end_anchored: bool


def _has_anchor(node: Node) -> bool:
    if isinstance(node, Anchor):
        return True
    if isinstance(node, Seq):
        return any(_has_anchor(item) for item in node.items)
    if isinstance(node, Alt):
        return any(_has_anchor(branch) for branch in node.branches)
    if isinstance(node, Repeat):
        return _has_anchor(node.node)
    return False


def _items(node: Node) -> tuple[Node, ...]:
    return node.items if isinstance(node, Seq) else (node,)


def _hoist(items: tuple[Node, ...], index: int) -> list[tuple[Node, ...]] | None:
    """Splice the group at ``index`` (first or last item) into its own branches, if anchored.

    ``re.search(A|B)`` matches exactly when ``re.search(A)`` or ``re.search(B)`` does, so
    ``(^a|^b)c`` is the same as ``^ac|^bc``.
    """
    node = items[index]
    if not isinstance(node, Seq | Alt) or not _has_anchor(node):
        return None
    before, after = ((), items[1:]) if index == 0 else (items[:-1], ())
    alternatives = node.branches if isinstance(node, Alt) else (node,)
    return [(*before, *_items(alt), *after) for alt in alternatives]


def _split_branches(root: Node, pattern: str) -> list[_Branch]:
    """Top-level alternatives, with leading ``^`` and trailing ``$`` taken off each."""
    pending = [_items(b) for b in (root.branches if isinstance(root, Alt) else (root,))]
    done: list[_Branch] = []
    while pending:
        if len(pending) + len(done) > _MAX_BRANCHES:
            raise UnsupportedPattern(f"too many anchored alternatives in pattern {pattern!r}")
        items = pending.pop(0)
        expanded = (_hoist(items, 0) or _hoist(items, -1)) if items else None
        if expanded:
            pending[:0] = expanded
            continue
        done.append(_anchored(items, pattern))
    return done


def _anchored(items: tuple[Node, ...], pattern: str) -> _Branch:
    start = 0
    while start < len(items) and items[start] == Anchor("^"):
        start += 1
    stop = len(items)
    while stop > start and items[stop - 1] == Anchor("$"):
        stop -= 1
    body = items[start:stop]
    if any(_has_anchor(item) for item in body):
        raise UnsupportedPattern(
            f"anchor '^' or '$' in the middle of pattern {pattern!r} "
            "(only at the start and end of top-level alternatives)"
        )
    return _Branch(body, start_anchored=start > 0, end_anchored=stop < len(items))


# -- emitter ------------------------------------------------------------------------------

_SHORT_ESCAPES = {0x22: '"', 0x5C: "\\", 0x08: "b", 0x0C: "f", 0x0A: "n", 0x0D: "r", 0x09: "t"}
_CONTROLS = CharSet.of((0x00, 0x1F), 0x7F)
_NOT_RAW = _CONTROLS | CharSet.of(0x22, 0x5C)  # never raw in JSON text (DEL: as `char` says)
_U_ESCAPED = _CONTROLS - CharSet.of(*_SHORT_ESCAPES)  # written \u00XX
_CLASS_RAW = re.compile(r"[A-Za-z0-9 !#$%&'()*+,./:;<=>?@_`{|}~]")
# llama.cpp's grammar parser turns a bound above this into no bound at all, and refuses a
# repetition whose count times the rules inside the repeated group exceeds it.
LLAMA_REPEAT_LIMIT = 2000


@dataclass(frozen=True)
class Expr:
    """Emitted GBNF text.

    ``atomic``: a repetition suffix may follow it directly. ``rules``: how many rules
    llama.cpp generates while parsing it, which its repetition guard multiplies.
    """

    text: str
    atomic: bool
    rules: int = 0

    def primary(self) -> Expr:
        """This expression as one GBNF primary, parenthesized if need be."""
        return self if self.atomic else Expr(f"({self.text})", atomic=True, rules=self.rules + 1)


EMPTY = Expr('""', atomic=True)


def _json_spelling(code: int) -> str | None:
    """The one JSON text for a character, or None for the \\u00XX ones (two hex cases)."""
    if code in _SHORT_ESCAPES:
        return "\\" + _SHORT_ESCAPES[code]
    return None if code in _U_ESCAPED else chr(code)


def _gbnf_char(code: int) -> str:
    """A code point as a GBNF escape, for use in literals and classes."""
    if code < 0x80:
        return f"\\x{code:02X}"
    return f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}"


def _literal(text: str) -> str:
    body = "".join(
        "\\" + c if c in '"\\' else c if " " <= c <= "~" else _gbnf_char(ord(c)) for c in text
    )
    return f'"{body}"'


def _class_char(code: int) -> str:
    return chr(code) if code < 0x80 and _CLASS_RAW.fullmatch(chr(code)) else _gbnf_char(code)


def _class(chars: CharSet, negated: bool = False) -> str:
    parts = []
    for lo, hi in chars.ranges:
        if lo == hi:
            parts.append(_class_char(lo))
        elif hi == lo + 1:
            parts.append(_class_char(lo) + _class_char(hi))
        else:
            parts.append(f"{_class_char(lo)}-{_class_char(hi)}")
    return "[" + ("^" if negated else "") + "".join(parts) + "]"


def _raw_class(chars: CharSet) -> str:
    """A class for characters written raw: negated only when it excludes ASCII alone.

    llama.cpp checks a token that ends inside a multi-byte character against every code
    point it could complete to, and a negated class then refuses it if any of those is
    excluded: ``[^\\u2028]`` would refuse the first bytes of U+2014. A positive class
    has no such problem, so non-ASCII exclusions are written as positive ranges.
    """
    excluded = chars.complement()
    positive = _class(chars)
    if excluded & NON_ASCII:
        return positive
    negated = _class(excluded, negated=True)
    return positive if len(positive) <= len(negated) else negated


def _u_escapes(chars: CharSet) -> list[str]:
    """``\\u00XX`` for control characters without a short escape, hex digits in either case."""
    by_high: dict[int, list[int]] = {}
    for lo, hi in chars.ranges:
        for code in range(lo, hi + 1):
            by_high.setdefault(code >> 4, []).append(code & 0xF)
    alternatives = []
    for high, lows in by_high.items():
        prefix = f"\\u00{high:x}"
        if len(lows) == 1 and lows[0] < 10:
            alternatives.append(_literal(f"{prefix}{lows[0]}"))
            continue
        digits = [f"{n:x}" for n in lows]
        hex_class = _class(_from_codes(ord(c) for d in digits for c in {d, d.upper()}))
        alternatives.append(f"{_literal(prefix)} {hex_class}")
    return alternatives


def _char_set(chars: CharSet) -> Expr:
    """Every JSON spelling of one character from ``chars``, as one GBNF expression."""
    alternatives = []
    if raw := chars - _NOT_RAW:
        alternatives.append(_raw_class(raw))
    letters = [letter for code, letter in _SHORT_ESCAPES.items() if code in chars]
    if len(letters) == 1:
        alternatives.append(_literal("\\" + letters[0]))
    elif letters:
        alternatives.append(r'"\\" ' + _class(_from_codes(ord(c) for c in letters)))
    alternatives += _u_escapes(chars & _U_ESCAPED)
    if not alternatives:
        raise UnsupportedPattern("a character class that matches no character")
    if len(alternatives) == 1:
        return Expr(alternatives[0], atomic=alternatives[0].startswith("["))
    return Expr("(" + " | ".join(alternatives) + ")", atomic=True, rules=1)


def _single_spelling(node: Node) -> str | None:
    """The fixed JSON text of a one-character node, or None."""
    if not isinstance(node, Chars):
        return None
    code = node.chars.single()
    return None if code is None else _json_spelling(code)


def _text_expr(spelling: str) -> Expr:
    return Expr(_literal(spelling), atomic=len(spelling) == 1)


def _has_unbounded(node: Node) -> bool:
    if isinstance(node, Repeat):
        return node.high is None or _has_unbounded(node.node)
    if isinstance(node, Seq):
        return any(map(_has_unbounded, node.items))
    if isinstance(node, Alt):
        return any(map(_has_unbounded, node.branches))
    return False


class _Emitter:
    """Writes GBNF for AST nodes; unbounded repeats stop at ``max_repeat``.

    Emitters made for narrower inner repeats share one cache, so retrying nested repeats
    at smaller limits stays linear in the pattern, not exponential in its nesting.
    """

    def __init__(self, max_repeat: int, cache: dict[tuple[int, int], Expr] | None = None) -> None:
        self.max_repeat = min(max_repeat, LLAMA_REPEAT_LIMIT)
        self.cache = {} if cache is None else cache

    def emit(self, node: Node) -> Expr:
        key = (id(node), self.max_repeat)  # nodes live as long as the tree being emitted
        if key not in self.cache:
            self.cache[key] = self.emit_uncached(node)
        return self.cache[key]

    def emit_uncached(self, node: Node) -> Expr:
        if isinstance(node, Chars):
            spelling = _single_spelling(node)
            return _char_set(node.chars) if spelling is None else _text_expr(spelling)
        if isinstance(node, Seq):
            return self.sequence(node.items)
        if isinstance(node, Alt):
            return self.alternation(node.branches)
        if isinstance(node, Repeat):
            return self.repeat(node)
        raise AssertionError(f"anchor left in the tree: {node}")  # _split_branches took them

    def sequence(self, items: Iterable[Node]) -> Expr:
        parts: list[Expr] = []
        pending = ""  # consecutive fixed characters, merged into one literal
        for item in items:
            spelling = _single_spelling(item)
            if spelling is not None:
                pending += spelling
                continue
            if pending:
                parts.append(_text_expr(pending))
                pending = ""
            expr = self.emit(item)
            if expr != EMPTY:
                parts.append(expr)
        if pending:
            parts.append(_text_expr(pending))
        if len(parts) <= 1:
            return parts[0] if parts else EMPTY
        return Expr(" ".join(p.text for p in parts), False, sum(p.rules for p in parts))

    def alternation(self, branches: Iterable[Node]) -> Expr:
        exprs = {expr.text: expr for expr in map(self.emit, branches)}
        if len(exprs) == 1:
            return next(iter(exprs.values()))
        rules = 1 + sum(e.rules for e in exprs.values())
        return Expr("(" + " | ".join(exprs) + ")", atomic=True, rules=rules)

    def repeat(self, node: Repeat) -> Expr:
        """``x{m,n}`` within llama.cpp's limits, narrowing inner unbounded repeats if need be."""
        inner_limit = self.max_repeat
        while True:
            item = _Emitter(inner_limit, self.cache).emit(node.node).primary()
            allowed = LLAMA_REPEAT_LIMIT // max(1, item.rules)
            wanted = node.high if node.high is not None else max(node.low, self.max_repeat)
            fits = node.low <= allowed and (node.high is None or wanted <= allowed)
            if fits or inner_limit <= 1 or not _has_unbounded(node.node):
                break
            inner_limit //= 2
        if node.low > allowed:
            raise UnsupportedPattern(
                f"a repeat of at least {node.low} exceeds llama.cpp's grammar limit "
                f"({LLAMA_REPEAT_LIMIT} rules)"
            )
        return _repeated(item, node.low, min(wanted, allowed))


def _repeated(item: Expr, low: int, high: int) -> Expr:
    """``item`` repeated ``low`` to ``high`` times, in GBNF's bounded syntax."""
    if high == 0 or item == EMPTY:
        return EMPTY
    if low == high == 1:
        return item
    if (low, high) == (0, 1):
        suffix, extra = "?", 1
    elif low == high:
        suffix, extra = f"{{{high}}}", 0
    else:
        suffix, extra = f"{{{low},{high}}}", high - low
    return Expr(item.text + suffix, atomic=False, rules=item.rules + extra)


# -- entry point --------------------------------------------------------------------------

_RULE_NAME = re.compile(r"[A-Za-z0-9-]+")


def pattern_to_gbnf(pattern: str, *, max_repeat: int = 64, char_rule: str = "char") -> str:
    """GBNF for the JSON text between the quotes of a string that ``pattern`` matches.

    ``char_rule`` names the caller's rule for any JSON string character; it pads the
    unanchored ends (up to ``max_repeat`` characters each), since JSON Schema patterns
    match anywhere. Raises ``UnsupportedPattern`` for constructs the grammar cannot express,
    and ``PatternTooDeep`` for groups nested beyond ``MAX_GROUP_DEPTH``.
    """
    if max_repeat < 0:
        raise ValueError("max_repeat must be 0 or more")
    if not _RULE_NAME.fullmatch(char_rule):
        raise ValueError(f"not a GBNF rule name: {char_rule!r}")
    tree = _Parser(pattern).parse()
    emitter = _Emitter(max_repeat)
    padding = f"{char_rule}{{0,{emitter.max_repeat}}}" if max_repeat else ""
    texts = []
    for branch in _split_branches(tree, pattern):
        body = emitter.sequence(branch.items).text
        if body == '""' and not (branch.start_anchored and branch.end_anchored):
            parts = [padding]  # matches anywhere: any text, one padding is enough
        else:
            parts = [] if branch.start_anchored else [padding]
            parts += [body] + ([] if branch.end_anchored else [padding])
        texts.append(" ".join(p for p in parts if p and p != '""') or '""')
    texts = list(dict.fromkeys(texts))
    return texts[0] if len(texts) == 1 else "(" + " | ".join(texts) + ")"
