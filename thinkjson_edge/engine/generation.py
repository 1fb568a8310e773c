"""What one generation is asked for (``DecodeLimits``) and what it returns (``Generation``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from thinkjson_edge.copying.automaton import CopyIndex
from thinkjson_edge.engine.confidence import ConfidenceParts

# Sees each generated token's bytes, and whether they are reasoning (see Engine.generate).
PieceListener = Callable[[bytes, bool], None]
# Whether the string value at a path (object keys and array indices) is copied.
CopyPolicy = Callable[[tuple[str | int, ...]], bool]


# How a generation ended: the object closed by the model, or out of its budget before that.
STOP_COMPLETE = "complete"
STOP_TOKEN_LIMIT = "token-limit"
STOP_TIME_LIMIT = "time-limit"
BUDGET_STOPS = frozenset({STOP_TOKEN_LIMIT, STOP_TIME_LIMIT})


@dataclass(frozen=True)
class DecodeLimits:
    """Budgets and sampling settings for one generation.

    Closing mode starts ``closing_reserve`` tokens before ``max_json_tokens`` (or at 90 % of
    ``max_seconds``); decoding stops outright ``closing_reserve`` tokens after it (or at
    ``max_seconds``), so a grammar that cannot close (a required property that contains
    its own object) cannot run on until the context is full.
    """

    max_think_tokens: int = 256
    max_json_tokens: int = 2048
    closing_reserve: int = 64  # tokens kept back to finish the object in closing mode
    max_seconds: float | None = None  # wall clock of one generation, prompt included
    temperature: float = 0.0  # 0 is greedy
    seed: int = 0
    full_mask: bool = False  # mask the whole vocabulary every step (for testing the fast path)
    # First tokens tried per copied value by the span search (engine.span_search); 1: greedy.
    span_search: int = 1


@dataclass(frozen=True)
class CopyRequest:
    """Copy the strings the policy names from the indexed document (see engine.copy_guard)."""

    index: CopyIndex
    policy: CopyPolicy


@dataclass(frozen=True)
class ValueTrace:
    """One scalar the model wrote: where it is, how sure the model was, where it came from.

    ``confidence``: how sure the model was of the value, from its own probabilities before
    any constraint (``engine.confidence``): for a copied value chosen by the span search,
    its probability that the value is in the document at all times the geometric mean of
    the value's token probabilities to the fourth power; for any other value, the smallest
    probability it gave one of the tokens that wrote it. ``confidence_parts``: what it was
    computed from (not in the report). ``start``/``end`` are character offsets in the
    document of a copied value (None for a generated one).
    """

    path: tuple[str | int, ...]
    kind: str  # "string", "number", "boolean" or "null"
    confidence: float
    copied: bool
    start: int | None = None
    end: int | None = None
    confidence_parts: ConfidenceParts | None = field(default=None, repr=False, compare=False)

    def shifted(self, offset: int) -> ValueTrace:
        """The same value with offsets in a text that holds this one at ``offset``."""
        if self.start is None or self.end is None:
            return self
        return replace(self, start=self.start + offset, end=self.end + offset)


@dataclass(frozen=True)
class Generation:
    """What the engine produced for one prompt, with its costs."""

    text: str
    reasoning: str | None
    json_text: str
    # "complete", "closed-at-budget", "closed-on-repetition", "truncated" (the context is
    # full), "token-limit" or "time-limit" (see DecodeLimits); "merged" for the object
    # merged from the chunks of a long document (its counts are the chunks' sums).
    stop_reason: str
    think_stop_reason: str | None  # "model", "budget" or "repetition"; None without reasoning
    prompt_tokens: int
    cached_prompt_tokens: int
    generated_tokens: int
    think_tokens: int
    prompt_seconds: float
    first_token_seconds: float
    decode_seconds: float
    values: tuple[ValueTrace, ...] = field(default=(), repr=False)
    # Array items begun and then dropped because their first value was too unlikely to be in
    # the document (see engine.item_check).
    dropped_items: int = 0

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.decode_seconds if self.decode_seconds else 0.0
