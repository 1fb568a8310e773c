"""The copy constraint, checked beside the grammar while the JSON is written.

Inside a string value that the schema says is copied, a token is admitted only if the
value stays a span of the document (``copying.cursor``), and the closing quote only
where the value may end. Inside an array, one span may close a value at the same
field at most as many times as the document holds it, so a copied item cannot be
repeated forever. Everything else (keys, numbers, generated strings) is left to the
grammar.

The checks follow the engine's fast path: one token at a time for the sampled and
ranked candidates, and a full mask only when none of them passes. The full mask walks
the vocabulary in sorted order along the document's automaton, so it visits only the
tokens that can continue the value.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass

import numpy as np

from thinkjson_edge.copying.automaton import CharSpan, CopyIndex
from thinkjson_edge.copying.cursor import BACKSLASH, QUOTE, CopyCursor
from thinkjson_edge.engine.generation import CopyRequest
from thinkjson_edge.engine.json_values import JsonValues, Path


@dataclass(frozen=True)
class SortedVocabulary:
    """Token pieces in byte order, to find every token that begins with a given prefix."""

    pieces: list[bytes]  # sorted
    ids: list[int]  # the token of each sorted piece
    by_id: list[bytes]  # the piece of each token
    has_quote: np.ndarray  # per token: its piece holds a quote (it may open or close a string)

    @classmethod
    def build(cls, pieces: list[bytes]) -> SortedVocabulary:
        order = sorted(range(len(pieces)), key=pieces.__getitem__)
        has_quote = np.fromiter((b'"' in p for p in pieces), dtype=bool, count=len(pieces))
        return cls([pieces[i] for i in order], order, pieces, has_quote)


@dataclass(frozen=True)
class SavedCopy:
    """A copy guard's state at one point of a generation."""

    cursor: CopyCursor | None
    used: Counter[tuple[Path, int, int]]
    spans: dict[int, CharSpan]
    single: set[int]


class CopyGuard:
    """The copy state of one generation: which value is copied, and how far it has got."""

    def __init__(
        self, request: CopyRequest, values: JsonValues, vocabulary: SortedVocabulary
    ) -> None:
        self.index: CopyIndex = request.index
        self.automaton = request.index.automaton
        self.policy = request.policy
        self.values = values
        self.vocabulary = vocabulary
        self.cursor: CopyCursor | None = None  # set while inside a copied string value
        self.used: Counter[tuple[Path, int, int]] = Counter()
        self.spans: dict[int, CharSpan] = {}  # leaf number -> where its value was copied from
        self.single: set[int] = set()  # leaf numbers of values the document holds once
        self._policy_cache: dict[Path, bool] = {}

    def save(self) -> SavedCopy:
        """The copy state now, to come back to (see ``item_check``)."""
        return SavedCopy(self.cursor, self.used.copy(), dict(self.spans), set(self.single))

    def restore(self, saved: SavedCopy, values: JsonValues) -> None:
        """Back to ``saved``, following ``values`` (the decoding's restored copy) from now on."""
        self.cursor, self.used, self.spans = saved.cursor, saved.used.copy(), dict(saved.spans)
        self.single, self.values = set(saved.single), values

    # -- one token ---------------------------------------------------------------

    def allows(self, piece: bytes) -> bool:
        """Whether writing ``piece`` next keeps every copied value a span of the document."""
        if b'"' not in piece:
            if self.cursor is None:
                return True  # no string value can open or close inside this piece
            return self.continue_value(self.cursor, piece, ())[0] is not None
        return self._run(self.values.clone(), self.cursor, piece, commit=False)

    def advance(self, piece: bytes) -> None:
        """Write ``piece`` (a token already admitted, or forced) into the state."""
        if not self._run(self.values, self.cursor, piece, commit=True):
            self.release()  # a forced token left the document: this value is generated

    def release(self) -> None:
        """Give up copying the current value (no token could continue it)."""
        self.cursor = None  # the value gets no span, so it is reported as generated

    def continue_value(
        self, cursor: CopyCursor, piece: bytes, path: Path
    ) -> tuple[CopyCursor | None, bool]:
        """The cursor after ``piece`` is written inside the copied value at ``path`` (None:
        it leaves the document), and whether the piece closes the value. Bytes after the
        closing quote are the grammar's, not the value's."""
        for byte in piece:
            if byte == QUOTE and not cursor.escape:
                return (cursor, True) if self.may_close(path, cursor) else (None, False)
            next_cursor = cursor.feed(self.automaton, byte)
            if next_cursor is None:
                return None, False
            cursor = next_cursor
        return cursor, False

    def _run(
        self, values: JsonValues, cursor: CopyCursor | None, piece: bytes, *, commit: bool
    ) -> bool:
        """Feed ``piece`` to ``values`` and the cursor; False when a copied value breaks."""
        for byte in piece:
            if cursor is not None:
                if byte == QUOTE and not cursor.escape:
                    if not self.may_close(values.path(), cursor):
                        return False
                    if commit:
                        self._record_close(values.path(), cursor)
                    cursor = None
                    values.feed(byte)
                    continue
                cursor = cursor.feed(self.automaton, byte)
                if cursor is None:
                    return False
                values.feed(byte)
                continue
            if values.feed(byte) == "open" and self._copies(values.path()):
                cursor = CopyCursor()
        if commit:
            self.cursor = cursor
        return True

    def _copies(self, path: Path) -> bool:
        if path not in self._policy_cache:
            self._policy_cache[path] = bool(self.policy(path))
        return self._policy_cache[path]

    def may_close(self, path: Path, cursor: CopyCursor) -> bool:
        if not cursor.may_close:
            return False
        if not any(isinstance(part, int) for part in path):
            return True
        used = self.used[_repeat_key(path, cursor)]
        return used < self.automaton.occurrences[cursor.state]

    def _record_close(self, path: Path, cursor: CopyCursor) -> None:
        if any(isinstance(part, int) for part in path):
            self.used[_repeat_key(path, cursor)] += 1
        span = self.index.span(cursor.state, cursor.length)
        if span is not None:
            self.spans[len(self.values.leaves)] = span
            if self.automaton.occurrences[cursor.state] == 1:
                self.single.add(len(self.values.leaves))

    # -- the whole vocabulary ----------------------------------------------------

    def mask(self, scores: np.ndarray) -> np.ndarray:
        """``scores`` with every token the copy constraint refuses set to -inf."""
        finite = np.isfinite(scores)
        keep = np.zeros(len(scores), dtype=bool)
        if self.cursor is None:
            keep[finite & ~self.vocabulary.has_quote] = True
            for token in np.nonzero(finite & self.vocabulary.has_quote)[0]:
                keep[token] = self.allows(self._piece(int(token)))
        elif self.cursor.escape:
            for token in np.nonzero(finite)[0]:
                keep[token] = self.allows(self._piece(int(token)))
        else:
            self._walk(self.cursor, b"", 0, len(self.vocabulary.pieces), keep)
        return np.where(keep & finite, scores, -np.inf)

    def _piece(self, token: int) -> bytes:
        return self.vocabulary.by_id[token]

    def _walk(
        self, cursor: CopyCursor, prefix: bytes, low: int, high: int, keep: np.ndarray
    ) -> None:
        """Mark every token in ``pieces[low:high]`` (all begin with ``prefix``) the copy allows.

        ``prefix`` has been checked already: tokens equal to it are allowed, and the walk
        goes one byte deeper only along bytes the automaton can read from ``cursor``.
        """
        pieces, ids = self.vocabulary.pieces, self.vocabulary.ids
        while low < high and len(pieces[low]) == len(prefix):
            if prefix:
                keep[ids[low]] = True
            low += 1
        next_bytes = set(self.automaton.transitions[cursor.state]) | {QUOTE, BACKSLASH}
        for byte in sorted(next_bytes):
            start = bisect_left(pieces, prefix + bytes((byte,)), low, high)
            end = (
                high
                if byte == 0xFF
                else bisect_left(pieces, prefix + bytes((byte + 1,)), start, high)
            )
            if start == end:
                continue
            if byte in (QUOTE, BACKSLASH):
                for position in range(start, end):  # few tokens; checked whole
                    keep[ids[position]] = self.allows(pieces[position])
                continue
            next_cursor = cursor.feed(self.automaton, byte)
            if next_cursor is not None:
                self._walk(next_cursor, prefix + bytes((byte,)), start, end, keep)


def _repeat_key(path: Path, cursor: CopyCursor) -> tuple[Path, int, int]:
    """A field across the items of its arrays, and the span (a state and a length name it)."""
    generic = tuple(-1 if isinstance(part, int) else part for part in path)
    return generic, cursor.state, cursor.length
