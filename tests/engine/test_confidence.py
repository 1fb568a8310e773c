"""A value's confidence from its token probabilities (engine.confidence)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from thinkjson_edge.engine.confidence import LENGTH_POWER, value_confidence

probability = st.floats(min_value=0.0, max_value=1.0)


def test_a_generated_value_gets_its_least_likely_token() -> None:
    assert value_confidence([0.9, 0.4, 0.8], None) == 0.4


def test_a_value_of_forced_tokens_only_is_certain() -> None:
    assert value_confidence([], None) == 1.0
    assert value_confidence([], 0.3) == 1.0


def test_a_searched_value_gets_mass_times_its_mean_token_probability_to_the_power() -> None:
    tokens = [0.5, 0.8, 1.0]
    mean = math.exp(sum(math.log(p) for p in tokens) / len(tokens))
    assert value_confidence(tokens, 0.9) == pytest.approx(0.9 * mean**LENGTH_POWER)


def test_the_power_spreads_values_whose_tokens_are_all_likely() -> None:
    # Ten tokens at 0.95 each: the mean alone would say 0.95, the confidence says less.
    assert value_confidence([0.95] * 10, 1.0) == pytest.approx(0.95**LENGTH_POWER)
    assert value_confidence([0.95] * 10, 1.0) < 0.85


def test_a_zero_probability_token_gives_zero_not_an_error() -> None:
    assert value_confidence([0.0, 1.0], 1.0) == pytest.approx(0.0, abs=1e-12)


@given(st.lists(probability, min_size=1, max_size=40), st.none() | probability)
def test_always_within_0_and_1(tokens: list[float], mass: float | None) -> None:
    assert 0.0 <= value_confidence(tokens, mass) <= 1.0


@given(st.lists(probability, min_size=1, max_size=20), probability, st.integers(0, 19))
def test_a_less_likely_token_never_raises_it(tokens: list[float], mass: float, at: int) -> None:
    at %= len(tokens)
    lowered = list(tokens)
    lowered[at] = tokens[at] / 2
    assert value_confidence(lowered, mass) <= value_confidence(tokens, mass)
