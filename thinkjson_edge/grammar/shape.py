"""What a compiled grammar can produce, read from its GBNF rules without running it.

* ``shortest(rule)``: the fewest characters any text of the rule has; infinite when the rule
  has no finite text at all (a required property that refers back to its own object): the
  model would write until its context is full.
* ``may_start_otherwise(rule, char)``: whether some text of the rule starts with another
  character than ``char`` (a root that may be something else than an object).

The rules are flattened into plain productions (a nonterminal, then terminals and
nonterminals each repeated a fixed number of times): a group becomes a nonterminal of its
own, and ``x?``, ``x*`` and ``x{0,n}`` a nonterminal that is empty or ``x``. Shortest
lengths then come from Knuth's generalisation of Dijkstra's algorithm, in one pass. Parsing
is iterative and refuses groups nested deeper than ``MAX_GROUP_NESTING``: llama.cpp's own
parser recurses on them and overflows its stack (a crash, not an error) near 30,000.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from thinkjson_edge.errors import SchemaError

MAX_GROUP_NESTING = 512


@dataclass(frozen=True)
class Terminal:
    """A literal, a character class or ``.``: its length and whether it may start otherwise."""

    length: int
    first: frozenset[str] | None  # the only characters it may start with; None: any


Symbol = Terminal | str  # a str is a nonterminal's name
Item = tuple[Symbol, int]  # a symbol repeated a fixed number of times
Production = tuple[str, list[Item]]


@dataclass
class GrammarShape:
    productions: list[Production]
    best: dict[str, int] = field(default_factory=dict)  # shortest text; absent: none is finite

    def shortest(self, rule: str) -> float:
        """The fewest characters a text of ``rule`` has (``math.inf``: it has no finite text)."""
        return self.best.get(rule, math.inf)

    def may_start_otherwise(self, rule: str, char: str) -> bool:
        """Whether some finite text of ``rule`` starts with a character other than ``char``."""
        watchers: dict[str, list[str]] = {}
        marked: set[str] = set()
        queue: list[str] = []
        for head, items in self.productions:
            if not all(isinstance(s, Terminal) or s in self.best for s, _ in items):
                continue  # a production with no finite text starts nothing
            for symbol, _ in items:
                if isinstance(symbol, Terminal):
                    if symbol.length and (symbol.first is None or symbol.first - {char}):
                        queue.append(head)
                    if symbol.length:
                        break
                else:
                    watchers.setdefault(symbol, []).append(head)
                    if self.best[symbol]:
                        break
        while queue:
            name = queue.pop()
            if name not in marked:
                marked.add(name)
                queue.extend(watchers.get(name, ()))
        return rule in marked


def analyse(rules: dict[str, str]) -> GrammarShape:
    """The shape of a grammar given as rule bodies by name (``CompiledGrammar.rules``)."""
    productions: list[Production] = []
    for name, body in rules.items():
        productions += _Flattener(name).flatten(body)
    shape = GrammarShape(productions)
    _shortest(shape)
    return shape


def _shortest(shape: GrammarShape) -> None:
    """Fill ``shape.best``: each nonterminal is final when it comes off the heap."""
    pending, totals = [], []
    uses: dict[str, list[tuple[int, int]]] = {}  # nonterminal -> (production, times)
    heap: list[tuple[int, str]] = []
    for index, (head, items) in enumerate(shape.productions):
        total, waiting = 0, 0
        for symbol, times in items:
            if isinstance(symbol, Terminal):
                total += symbol.length * times
            else:
                uses.setdefault(symbol, []).append((index, times))
                waiting += 1
        pending.append(waiting)
        totals.append(total)
        if not waiting:
            heapq.heappush(heap, (total, head))
    best = shape.best
    while heap:
        length, name = heapq.heappop(heap)
        if name in best:
            continue
        best[name] = length
        for index, times in uses.get(name, ()):
            totals[index] += length * times
            pending[index] -= 1
            head = shape.productions[index][0]
            if not pending[index] and head not in best:
                heapq.heappush(heap, (totals[index], head))


class _Flattener:
    """One rule's body as productions; groups and optional items get nonterminals of their own."""

    def __init__(self, rule: str) -> None:
        self.rule = rule
        self.productions: list[Production] = []
        self._count = 0

    def flatten(self, body: str) -> list[Production]:
        stack: list[list[list[Item]]] = [[[]]]  # per open group: its alternatives
        for token in _tokens(body, self.rule):
            alternative = stack[-1][-1]
            if token == "(":
                if len(stack) > MAX_GROUP_NESTING:
                    self._fail(f"groups nest more than {MAX_GROUP_NESTING} deep")
                stack.append([[]])
            elif token == ")":
                if len(stack) == 1:
                    self._fail("a group closes that never opened")
                group = self._nonterminal(stack.pop())
                stack[-1][-1].append((group, 1))
            elif token == "|":
                stack[-1].append([])
            elif isinstance(token, tuple):
                if not alternative:
                    self._fail("a repetition follows nothing")
                low, high = token
                item = alternative.pop()
                if low:
                    alternative.append((item[0], item[1] * low))
                if high is None or high > low:  # the optional rest: nothing or one more
                    alternative.append((self._nonterminal([[], [item]]), 1))
            else:
                alternative.append((token, 1))
        if len(stack) != 1:
            self._fail("a group never closes")
        self.productions += [(self.rule, items) for items in stack[0]]
        return self.productions

    def _nonterminal(self, alternatives: list[list[Item]]) -> str:
        self._count += 1
        name = f"{self.rule}#{self._count}"  # "#" is in no rule name
        self.productions += [(name, items) for items in alternatives]
        return name

    def _fail(self, why: str) -> None:
        raise SchemaError(
            f"the grammar compiled from the schema is unusable at rule {self.rule}: {why}"
        )


# One GBNF token per match; anything else is an error. Each alternative is unambiguous, so
# matching is linear.
_TOKEN = re.compile(
    r"""
    (?P<skip>\s+|\#[^\n]*)
    | (?P<bracket>[()|])
    | "(?P<literal>(?:[^"\\]|\\.)*)"
    | \[(?P<negated>\^?)(?P<chars>(?:[^\]\\]|\\.)*)\]
    | (?P<any>\.)
    | (?P<operator>[*+?])
    | \{(?P<repeat>[^}]*)\}
    | (?P<name>[a-zA-Z0-9_-]+)
    | (?P<bad>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.DOTALL)
_CLASS_PIECE = re.compile(_ESCAPE.pattern + "|.", re.DOTALL)
_OPERATORS = {"*": (0, None), "+": (1, None), "?": (0, 1)}


def _tokens(body: str, rule: str) -> Iterator[str | Terminal | tuple[int, int | None]]:
    """Brackets and bars as themselves, names, terminals, and repetitions as (low, high)."""
    for match in _TOKEN.finditer(body):
        kind = match.lastgroup
        if kind in ("bracket", "name"):
            yield match.group()
        elif kind == "literal":
            text = match.group("literal")
            length = len(text) - sum(len(escape.group()) - 1 for escape in _ESCAPE.finditer(text))
            yield Terminal(length, frozenset(_first_character(text)))
        elif kind == "chars":  # a character class
            yield Terminal(1, _class_characters(match.group("negated"), match.group("chars")))
        elif kind == "any":
            yield Terminal(1, None)
        elif kind == "operator":
            yield _OPERATORS[match.group()]
        elif kind == "repeat":
            yield _repetition(match.group("repeat"), rule)
        elif kind == "bad":
            raise SchemaError(f"the grammar's rule {rule} has an unexpected {match.group()!r}")


def _first_character(text: str) -> str:
    """The first character a literal writes (escapes decoded), or "" for an empty one."""
    if not text.startswith("\\"):
        return text[:1]
    escape = _ESCAPE.match(text)
    return _decoded(escape.group() if escape else text[:2])


def _class_characters(negated: str, chars: str) -> frozenset[str] | None:
    """The characters a class may match; None when it is negated (so nearly any)."""
    if negated:
        return None
    found: set[str] = set()
    pieces = [_decoded(piece.group()) for piece in _CLASS_PIECE.finditer(chars)]
    index = 0
    while index < len(pieces):
        if index + 2 < len(pieces) and pieces[index + 1] == "-":
            low, high = pieces[index], pieces[index + 2]
            found.add(low if low == high else "\0range")  # a real range admits many
            index += 3
        else:
            found.add(pieces[index])
            index += 1
    return frozenset(found)


def _decoded(escape: str) -> str:
    """One character from its GBNF spelling (``a``, ``\\n``, ``\\x7b``, ``\\u007B``...)."""
    if not escape.startswith("\\") or len(escape) < 2:
        return escape
    code, digits = escape[1], escape[2:]
    if code in "xuU" and digits:
        try:
            return chr(int(digits, 16))
        except ValueError:
            return code
    return {"n": "\n", "r": "\r", "t": "\t"}.get(code, code)


def _repetition(text: str, rule: str) -> tuple[int, int | None]:
    low, comma, high = text.partition(",")
    try:
        low_count = int(low)
        high_count = None if comma and not high.strip() else int(high if comma else low)
    except ValueError as exc:
        raise SchemaError(f"the grammar's rule {rule} has a bad repetition {{{text}}}") from exc
    return low_count, high_count
