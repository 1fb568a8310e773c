"""How a prompt is cut into llama_decode calls, so that its cache depends on the prompt alone.

llama.cpp's CPU kernels give a token slightly different values when it is evaluated in a
call of hundreds of tokens than in a call of a few. A prompt evaluated as one call and the
same prompt evaluated as a reused prefix plus the rest therefore leave slightly different
KV caches, and greedy decoding after them can differ. An answer would then depend on what
was extracted before it, or on which document happened to share a prefix.

So every prompt is cut the same way, whatever is cached: at its *anchors* (positions the
caller names, such as the end of the instruction and schema, or the end of a first
attempt's prompt inside a second one), and in steps of ``STEP_TOKENS`` from each anchor.
A cache is reused only up to the end of a step that was evaluated as exactly that step,
with the same tokens before it; the rest is evaluated in the prompt's own steps. The cache
of a prompt is then the same whether it was reused or evaluated from scratch.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

# Tokens per llama_decode call for a prompt: llama.cpp's own default batch.
STEP_TOKENS = 512

Step = tuple[int, int]  # the positions [start, end) evaluated by one llama_decode call


def prompt_steps(length: int, anchors: Sequence[int] = ()) -> list[Step]:
    """The calls that evaluate a prompt of ``length`` tokens cut at ``anchors``."""
    points = sorted({0, length, *(a for a in anchors if 0 < a < length)})
    steps: list[Step] = []
    for start, end in itertools.pairwise(points):
        steps.extend((s, min(s + STEP_TOKENS, end)) for s in range(start, end, STEP_TOKENS))
    return steps


def reusable_prefix(
    cached: Sequence[int],
    cached_steps: Sequence[Step],
    prompt: Sequence[int],
    steps: Sequence[Step],
) -> int:
    """Tokens of ``prompt`` a cache may give: the prompt's leading steps that the cache
    evaluated as the same steps of the same tokens. At least one token is left to
    evaluate, for the logits after it."""
    limit = min(common_prefix(cached, prompt), len(prompt) - 1)
    reused = 0
    for wanted, evaluated in zip(steps, cached_steps, strict=False):
        if wanted != evaluated or wanted[1] > limit:
            break
        reused = wanted[1]
    return reused


def steps_before(steps: list[Step], position: int) -> list[Step]:
    """The steps still (partly) cached after the tokens from ``position`` on are dropped.
    A step cut in the middle stays as it was evaluated, so it is never taken for a
    shorter step."""
    return [step for step in steps if step[0] < position]


def common_prefix(first: Sequence[int], second: Sequence[int]) -> int:
    """The number of leading tokens two sequences share."""
    limit = min(len(first), len(second))
    if limit == 0:
        return 0
    mismatch = np.flatnonzero(np.asarray(first[:limit]) != np.asarray(second[:limit]))
    return int(mismatch[0]) if mismatch.size else limit
