"""Which byte strings are spans of a document: a suffix automaton over its text.

The automaton (Blumer et al. 1985) is the smallest deterministic automaton that
accepts every substring of a text. It has at most ``2n`` states, is built in linear
time, and answers "is ``s + c`` still a substring?" with one dictionary lookup per
byte, which is what a decoder needs once per generated character.

The text is the document with every run of whitespace (newlines included) collapsed
to one space and trimmed at both ends; case is kept. It is indexed as UTF-8 bytes,
so a token that ends inside a multi-byte character is followed exactly.

Each state also knows where its strings first end in the text (so a copied value has
exact offsets) and how many times they occur (so an array cannot repeat one span
more often than the document holds it).
"""

from __future__ import annotations

from dataclasses import dataclass

ROOT = 0  # the state of the empty string


def collapse_whitespace(text: str) -> tuple[str, list[int]]:
    """``text`` with whitespace runs as one space, trimmed; and each character's origin.

    ``origin[i]`` is the index in ``text`` of character ``i`` of the collapsed text (a
    collapsed space points at the first whitespace character of its run).
    """
    chars: list[str] = []
    origin: list[int] = []
    pending_space = -1  # index of the run of whitespace not yet written
    for index, char in enumerate(text):
        if char.isspace():
            if pending_space < 0 and chars:
                pending_space = index
            continue
        if pending_space >= 0:
            chars.append(" ")
            origin.append(pending_space)
            pending_space = -1
        chars.append(char)
        origin.append(index)
    return "".join(chars), origin


class SuffixAutomaton:
    """Every substring of ``data`` (bytes), with first end positions and occurrence counts."""

    def __init__(self, data: bytes) -> None:
        self.transitions: list[dict[int, int]] = [{}]
        self.link: list[int] = [-1]
        self.length: list[int] = [0]
        self.first_end: list[int] = [-1]  # end (exclusive) of the first occurrence
        self._count: list[int] = [0]
        last = ROOT
        for position, byte in enumerate(data):
            last = self._extend(last, byte, position + 1)
        self.occurrences = self._count_occurrences()

    def _new_state(self, length: int, first_end: int, count: int) -> int:
        self.transitions.append({})
        self.link.append(-1)
        self.length.append(length)
        self.first_end.append(first_end)
        self._count.append(count)
        return len(self.length) - 1

    def _extend(self, last: int, byte: int, end: int) -> int:
        """The standard online step: add one byte; the new state for the whole prefix."""
        current = self._new_state(self.length[last] + 1, end, 1)
        state = last
        while state != -1 and byte not in self.transitions[state]:
            self.transitions[state][byte] = current
            state = self.link[state]
        if state == -1:
            self.link[current] = ROOT
            return current
        target = self.transitions[state][byte]
        if self.length[state] + 1 == self.length[target]:
            self.link[current] = target
            return current
        clone = self._new_state(self.length[state] + 1, self.first_end[target], 0)
        self.transitions[clone] = dict(self.transitions[target])
        self.link[clone] = self.link[target]
        while state != -1 and self.transitions[state].get(byte) == target:
            self.transitions[state][byte] = clone
            state = self.link[state]
        self.link[target] = clone
        self.link[current] = clone
        return current

    def _count_occurrences(self) -> list[int]:
        """End positions per state: each prefix state counts 1, summed up the suffix links."""
        counts = list(self._count)
        for state in sorted(range(1, len(counts)), key=self.length.__getitem__, reverse=True):
            counts[self.link[state]] += counts[state]
        return counts

    def step(self, state: int, byte: int) -> int | None:
        """The state after one more byte, or None when the string leaves the text."""
        return self.transitions[state].get(byte)

    def walk(self, data: bytes, state: int = ROOT) -> int | None:
        for byte in data:
            next_state = self.transitions[state].get(byte)
            if next_state is None:
                return None
            state = next_state
        return state

    def contains(self, data: bytes) -> bool:
        return self.walk(data) is not None


@dataclass(frozen=True)
class CharSpan:
    """Where a copied value is: ``text[start:end]`` of the original document (characters)."""

    start: int
    end: int


class CopyIndex:
    """A document's text prepared for copying: collapsed, indexed, with a map back."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.collapsed, self._origin = collapse_whitespace(text)
        encoded = self.collapsed.encode("utf-8")
        self.automaton = SuffixAutomaton(encoded)
        # Byte offset in the collapsed UTF-8 -> character index in the collapsed text.
        self._char_at = _char_index_by_byte(self.collapsed)

    def span(self, state: int, length: int) -> CharSpan | None:
        """The first occurrence of the ``length``-byte value read into ``state``, in ``text``."""
        end_byte = self.automaton.first_end[state]
        start_byte = end_byte - length
        if length <= 0 or start_byte < 0:
            return None
        first = self._char_at[start_byte]
        last = self._char_at[end_byte - 1]
        return CharSpan(self._origin[first], self._origin[last] + 1)


def _char_index_by_byte(text: str) -> list[int]:
    index: list[int] = []
    for position, char in enumerate(text):
        index.extend([position] * len(char.encode("utf-8")))
    return index
