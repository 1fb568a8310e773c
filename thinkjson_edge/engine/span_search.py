"""Choosing a copied value by looking ahead, instead of by its first token alone.

Greedy decoding commits to a value with its first token. Under the copy constraint
that first token is often the start of what the model would have invented ("201" of
an ISO date it wanted to write), and the span it is then held to is the wrong one. So
when a copied value opens, the search tries the ``width`` most likely first tokens the
constraints admit, continues each greedily under the copy constraint until the value
closes, and keeps the value the model finds most likely as a whole: the sum of the
log-probabilities of its tokens, closing quote included, before any constraint (so a
value the constraint had to pull away from what the model wanted scores low). The kept
value's share of the likelihood of all the values tried (near 1 when the model clearly
prefers it, near 1/width when the alternatives were as likely) tells ``item_check``
whether an array item's first value is there at all.

Branches are decoded in the real context and rolled back (the KV cache is truncated to
where the value began), and the kept value's tokens are then written through the normal
path, where the grammar checks each one. Only greedy decoding searches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from thinkjson_edge.copying.cursor import CopyCursor
from thinkjson_edge.engine.copy_guard import CopyGuard


class BranchingModel(Protocol):
    """What the search needs of the engine: decode a token, read logits, go back."""

    def position(self) -> int: ...
    def rewind(self, position: int) -> None: ...
    def feed(self, token: int) -> None: ...
    def logits(self) -> np.ndarray: ...
    def piece(self, token: int) -> bytes: ...
    def is_end(self, token: int) -> bool: ...


_BRANCH_CANDIDATES = 64  # ranked tokens tried at each step of a branch before it is dropped


@dataclass(frozen=True)
class PlannedToken:
    token: int
    probability: float  # the model's, before any constraint


@dataclass(frozen=True)
class _Branch:
    tokens: tuple[PlannedToken, ...]
    closed: bool

    @property
    def score(self) -> float:
        """The log-likelihood of the value under the model (measured on the training split
        against the mean and the minimum per token: the sum chose best)."""
        return sum(math.log(max(t.probability, 1e-30)) for t in self.tokens)


class SpanSearch:
    """Looks ahead over a few first tokens of a copied value; see the module docstring."""

    def __init__(
        self, engine: BranchingModel, guard: CopyGuard, *, width: int, max_tokens: int
    ) -> None:
        self.engine = engine
        self.guard = guard
        self.width = width
        self.max_tokens = max_tokens

    def plan(self, logits: np.ndarray, first_tokens: list[int]) -> tuple[list[PlannedToken], float]:
        """The tokens of the best value, from the current state (``first_tokens``: the
        candidates for its first token, best first, already admitted by both constraints),
        and its share of the likelihood of all the values tried."""
        cursor = self.guard.cursor
        if cursor is None or not first_tokens:
            return [], 0.0
        probabilities = _softmax(logits)
        start = self.engine.position()
        branches = []
        try:
            for token in first_tokens[: self.width]:
                branch = self._branch(cursor, PlannedToken(token, float(probabilities[token])))
                if branch is not None:
                    branches.append(branch)
                self.engine.rewind(start)
        finally:
            self.engine.rewind(start)
        closed = [b for b in branches if b.closed]
        if not closed:
            return [], 0.0
        best = max(closed, key=lambda b: b.score)
        # Two first tokens may spell the same value ("11" + "/01" and "11/" + "01"): the
        # value's share is that of every branch that wrote it.
        weights = {}
        for branch in closed:
            text = self._text(branch)
            weights[text] = weights.get(text, 0.0) + math.exp(branch.score - best.score)
        share = weights[self._text(best)] / sum(weights.values())
        return list(best.tokens), share

    def _text(self, branch: _Branch) -> bytes:
        """The value a branch wrote (what its last token adds after the closing quote is
        the grammar's, not the value's)."""
        *body, last = [self.engine.piece(t.token) for t in branch.tokens]
        return b"".join(body) + (last[: last.find(b'"')] if branch.closed else last)

    def _branch(self, cursor: CopyCursor, first: PlannedToken) -> _Branch | None:
        path = self.guard.values.path()
        tokens = [first]
        state, closed = self._read(cursor, first.token, path)
        while state is not None and not closed and len(tokens) < self.max_tokens:
            self.engine.feed(tokens[-1].token)
            logits = self.engine.logits()
            probabilities = _softmax(logits)
            ranked = np.argsort(-logits)[:_BRANCH_CANDIDATES]
            for candidate in ranked:
                next_state, closes = self._read(state, int(candidate), path)
                if next_state is not None:
                    tokens.append(PlannedToken(int(candidate), float(probabilities[candidate])))
                    state, closed = next_state, closes
                    break
            else:
                return None  # no likely token continues the value: drop this branch
        return _Branch(tuple(tokens), closed) if state is not None else None

    def _read(
        self, cursor: CopyCursor, token: int, path: tuple[str | int, ...]
    ) -> tuple[CopyCursor | None, bool]:
        """The cursor after a token's bytes, and whether the token closes the value (a token
        that writes nothing, such as end-of-text, cannot continue one)."""
        piece = self.engine.piece(token)
        if not piece or self.engine.is_end(token):
            return None, False
        return self.guard.continue_value(cursor, piece, path)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()
