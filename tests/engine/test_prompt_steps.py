"""How prompts are cut into llama_decode calls, and which cached prefix may be reused."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from thinkjson_edge.engine.prompt_steps import (
    STEP_TOKENS,
    prompt_steps,
    reusable_prefix,
    steps_before,
)


def test_a_prompt_is_cut_at_its_anchors_and_in_steps_from_each() -> None:
    assert prompt_steps(1200, [300]) == [(0, 300), (300, 812), (812, 1200)]
    assert prompt_steps(1200) == [(0, 512), (512, 1024), (1024, 1200)]
    assert prompt_steps(10, [0, 10, 25, 4]) == [(0, 4), (4, 10)]


@given(st.integers(1, 3000), st.lists(st.integers(-5, 3005), max_size=4))
def test_the_steps_cover_the_prompt_once_and_fit_a_call(length: int, anchors: list[int]) -> None:
    steps = prompt_steps(length, anchors)
    assert steps[0][0] == 0 and steps[-1][1] == length
    assert all(a[1] == b[0] for a, b in itertools.pairwise(steps))
    assert all(0 < end - start <= STEP_TOKENS for start, end in steps)


def test_a_cache_is_reused_to_the_end_of_the_last_step_both_cut_alike() -> None:
    first = list(range(700))
    second = first[:650] + [9999] * 100
    cached_steps = prompt_steps(700, [300])
    assert reusable_prefix(first, cached_steps, second, prompt_steps(750, [300])) == 300
    # The same tokens cut at another anchor give nothing: they were evaluated otherwise.
    assert reusable_prefix(first, cached_steps, second, prompt_steps(750, [200])) == 0
    # A second prompt holding the first one whole reuses it whole when cut where it ends.
    longer = [*first, 5, 6, 7]
    assert reusable_prefix(first, cached_steps, longer, prompt_steps(703, [300, 700])) == 700


def test_at_least_one_token_is_left_to_evaluate() -> None:
    prompt = list(range(40))
    steps = prompt_steps(40, [39])
    assert reusable_prefix(prompt, steps, prompt, steps) == 39
    assert reusable_prefix(prompt, prompt_steps(40), prompt, prompt_steps(40)) == 0


def test_a_step_cut_by_a_rewind_is_never_taken_for_a_shorter_one() -> None:
    prompt = list(range(100))
    cached_steps = steps_before(prompt_steps(100, [50]), 70)
    assert cached_steps == [(0, 50), (50, 100)]
    # Tokens fed one by one after the rewind do not make (50, 71) look evaluated.
    cached_steps += [(70, 71)]
    shorter = [*prompt[:71], 1000]
    assert reusable_prefix(prompt[:71], cached_steps, shorter, prompt_steps(72, [50, 71])) == 50
