"""How sure the model was of one value it wrote, from its own token probabilities.

A copied value chosen by the span search gets the model's probability that the value is
in the document at all (its mass on the first tokens the copy admits, ``admitted_mass``)
times the geometric mean of the probabilities of the value's tokens, raised to
``LENGTH_POWER``. Every probability is the model's before any constraint, so a value the
constraints pulled away from what the model wanted scores low.

Why this and not the search's share of the likelihood of the values it tried (the formula
before): on SROIE training receipts it separated the default model's right values from its
wrong ones far better (AUROC 0.90 against 0.73; ``bench/confidence.py``, BENCHMARKS.md,
"Confidence"). Why the power: once a copied value has begun, most of its tokens are near
certain, so the mean sits close to 1 even for wrong values; the fourth power (the
probability of a four-token value at that rate) brought the confidences close to how often
the default model's values were right on those receipts, where higher powers gained little.

Any other value (a number, a boolean, a generated string) gets the smallest probability
the model gave one of its tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

LENGTH_POWER = 4
_FLOOR = 1e-30  # a probability of 0 would make the logarithm undefined


@dataclass(frozen=True)
class ConfidenceParts:
    """What a value's confidence is computed from, kept so other formulas can be measured."""

    # The model's probability of each token that wrote the value, its closing quote
    # included, before any constraint.
    token_probabilities: tuple[float, ...]
    # For a value the span search chose: the model's mass on the first tokens the copy
    # admitted, and the value's share of the likelihood of the values the search tried.
    admitted_mass: float | None = None
    search_share: float | None = None

    @property
    def confidence(self) -> float:
        return value_confidence(self.token_probabilities, self.admitted_mass)


def value_confidence(probabilities: Sequence[float], admitted_mass: float | None) -> float:
    """The confidence of a value written by tokens of ``probabilities``; ``admitted_mass``
    is None for a value the span search did not choose."""
    if not probabilities:
        return 1.0  # nothing was chosen: every token was forced by the grammar
    if admitted_mass is None:
        return min(probabilities)
    return min(1.0, max(0.0, admitted_mass * math.exp(LENGTH_POWER * _mean_log(probabilities))))


def mean_token_probability(probabilities: Sequence[float]) -> float:
    """The geometric mean of ``probabilities`` (1 for none)."""
    return math.exp(_mean_log(probabilities)) if probabilities else 1.0


def _mean_log(probabilities: Sequence[float]) -> float:
    return sum(math.log(max(p, _FLOOR)) for p in probabilities) / len(probabilities)
