"""Rewards on hand-written completions, one case per rule, and how SCoRe weights them.

The expected values are worked out by hand from the formulas in train/rewards.py and
train/score.py.
"""

from __future__ import annotations

import json
import math

import pytest
from thinkjson_edge.train.config import config_from_dict
from thinkjson_edge.train.data import Example
from thinkjson_edge.train.rewards import (
    COMPONENTS,
    Reward,
    completion_text,
    format_score,
    reward_functions,
    score_output,
    weighted_total,
)
from thinkjson_edge.train.score import (
    Attempt,
    Rollout,
    group_advantages,
    returns,
    rollout_stats,
    segments,
)

from thinkjson_edge.evaluation.metrics import field_match, noise

SCHEMA = {
    "type": "object",
    "properties": {
        "batch": {"type": "string"},
        "units": {"type": "integer", "minimum": 0},
        "status": {"type": "string", "enum": ["released", "rejected"]},
        "made": {"type": "string", "format": "date"},
    },
    "required": ["batch", "units"],
    "additionalProperties": False,
}
SCHEMA_TEXT = json.dumps(SCHEMA)
GOLD = {"batch": "B-100", "units": 1200, "status": "released"}
GOLD_TEXT = json.dumps(GOLD)
DOCUMENT = "Batch record\nBatch: B-100\nUnits made: 1,200\nStatus: RELEASED\nOperator: Ann Lee\n"


def rewards(output: str, think: bool = True) -> dict[str, float]:
    return score_output(output, SCHEMA_TEXT, GOLD_TEXT, DOCUMENT, think=think).rewards


def think(body: str, answer: str) -> str:
    return f"<think>\n{body}\n</think>\n{answer}"


# --- format ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (think("batch is B-100", '{"batch": "B-100"}'), 1.0),  # block, then one object
        (think("batch", '{"batch": "B-1'), 0.75),  # block, object cut off (no closing brace)
        (think("batch", 'Here: {"batch": "B-100"}'), 0.75),  # text before the object
        (think("batch", '```json\n{"batch": "B-100"}\n```'), 0.5),  # a code fence around it
        ('<think>\nstill thinking about {"batch"', 0.0),  # the block never closes
        (think("a <think> inside", "{}"), 0.5),  # a second opening tag
        (think("batch", '{"a": 1}</think>'), 0.25),  # a stray closing tag after the answer
    ],
)
def test_format_with_reasoning(output: str, expected: float) -> None:
    assert format_score(output, think=True) == expected


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ('{"batch": "B-100"}', 1.0),
        ('  {"batch": "B-100"}\n', 1.0),  # surrounding whitespace is not content
        ('{"batch": "B-1', 0.5),
        ('The JSON: {"batch": "B-100"}', 0.5),
        ("no object at all", 0.0),
        (think("x", "{}"), 0.0),  # reasoning where none was asked for
    ],
)
def test_format_without_reasoning(output: str, expected: float) -> None:
    assert format_score(output, think=False) == expected


# --- json, schema, field match, noise, grounding ---------------------------------------


def test_a_perfect_answer_earns_every_reward() -> None:
    perfect = think("all three are in the text", GOLD_TEXT)
    assert rewards(perfect) == dict.fromkeys(rewards(perfect), 1.0)
    assert set(rewards(perfect)) == set(COMPONENTS)


def test_no_json_output_earns_only_what_format_gives() -> None:
    got = rewards(think("thinking", '{"batch": "B-100", "units": '))
    assert got == {
        "format": 0.75,
        "json": 0.0,
        "field_match": 0.0,
        "noise": 0.0,
        "schema": 0.0,
        "grounding": 0.0,
    }


def test_json_must_be_one_object_and_strict() -> None:
    assert rewards(think("x", "[1, 2]"))["json"] == 0.0  # parses, but is not an object
    assert rewards(think("x", '{"units": NaN}'))["json"] == 0.0  # not strict JSON
    assert rewards(think("x", '{"batch": "B-100"} {"units": 1}'))["json"] == 0.0  # two values
    assert rewards(think("x", "{}"))["json"] == 1.0


def test_schema_reward_is_one_over_one_plus_the_findings() -> None:
    assert rewards(think("x", '{"batch": "B-100", "units": 5}'))["schema"] == 1.0
    # Missing "units" (required): 1 finding.
    assert rewards(think("x", '{"batch": "B-100"}'))["schema"] == 0.5
    # "units" negative, "status" not in the enum, an extra key: 3 findings.
    three = '{"batch": "B-100", "units": -1, "status": "ok", "extra": 1}'
    assert rewards(think("x", three))["schema"] == 0.25
    # format is checked by the runtime's validator too.
    assert rewards(think("x", '{"batch": "B-100", "units": 1, "made": "May 3"}'))["schema"] == 0.5


def test_field_match_and_noise_are_the_metrics_own() -> None:
    answer = {"batch": "B-100", "units": "1,200", "status": "rejected", "operator": "Ann Lee"}
    got = rewards(think("x", json.dumps(answer)))
    # batch and units ("1,200" == 1200) match, status is wrong: 2 of 3 gold leaves.
    assert got["field_match"] == pytest.approx(2 / 3) == field_match(GOLD, answer)
    # 4 predicted leaves, 2 matched: noise 2/4, reward 1 - 0.5.
    assert got["noise"] == pytest.approx(0.5) == 1 - noise(GOLD, answer)
    assert rewards(think("x", "{}"))["noise"] == 1.0  # asserts nothing, so no noise
    assert rewards(think("x", "{}"))["field_match"] == 0.0


def test_grounding_looks_values_up_as_the_runtime_does() -> None:
    # "b-100" is found (case and spacing are normalised); "Bob" is not in the document;
    # enum and format strings are not looked up; numbers are not strings.
    got = rewards(think("x", '{"batch": "b-100", "units": 7, "status": "rejected"}'))
    assert got["grounding"] == 1.0
    half = rewards(think("x", '{"batch": "B-100", "units": 7, "extra": "Bob"}'))
    assert half["grounding"] == 0.5
    assert rewards(think("x", '{"units": 7}'))["grounding"] == 1.0  # nothing to look up


def test_without_reasoning_the_whole_output_is_the_answer() -> None:
    assert rewards(GOLD_TEXT, think=False) == dict.fromkeys(COMPONENTS, 1.0)
    assert rewards(think("x", GOLD_TEXT), think=False)["format"] == 0.0


# --- TRL's interface -----------------------------------------------------------------


def test_trl_reward_functions_take_completions_after_the_forced_tag() -> None:
    """TRL passes what the model wrote after the prompt; the prompt ends with <think>\\n."""
    columns = {"schema": [SCHEMA_TEXT] * 3, "gold": [GOLD_TEXT] * 3, "document": [DOCUMENT] * 3}
    completions = [
        "fields\n</think>\n" + GOLD_TEXT,  # a plain string
        [{"role": "assistant", "content": "fields\n</think>\n{}"}],  # a chat turn
        "no closing tag",
    ]
    by_name = {
        f.__name__: f(["p"] * 3, completions, **columns)
        for f in reward_functions({"format": 1.0, "json": 1.0, "field_match": 2.0}, think=True)
    }
    assert by_name == {
        "format_reward": [1.0, 1.0, 0.0],
        "json_reward": [1.0, 1.0, 0.0],
        "field_match_reward": [1.0, 0.0, 0.0],
    }
    no_think = Reward("json", think=False)
    assert no_think(["p"], [GOLD_TEXT], schema=[SCHEMA_TEXT], gold=[GOLD_TEXT], document=[""]) == [
        1.0
    ]
    assert completion_text([{"content": "a"}, {"content": "b"}]) == "ab"
    with pytest.raises(ValueError, match="unknown reward"):
        Reward("style")


def test_weighted_total_divides_by_the_weights() -> None:
    values = {"json": 1.0, "schema": 0.5, "field_match": 0.0}
    assert weighted_total(values, {"json": 1.0, "schema": 1.0, "field_match": 2.0}) == 0.375
    with pytest.raises(ValueError, match="more than 0"):
        weighted_total(values, {"json": 0.0})


# --- SCoRe: returns, advantages and per-token weights ------------------------------


def _attempt(reward: float, tokens: int = 3) -> Attempt:
    scored = score_output(
        GOLD_TEXT if reward == 1.0 else "{}", SCHEMA_TEXT, GOLD_TEXT, DOCUMENT, think=False
    )
    return Attempt([1, 2, 3], list(range(tokens)), "", scored, reward)


def _example() -> Example:
    return Example("x", SCHEMA, DOCUMENT, GOLD)


def test_stage_returns_follow_the_paper() -> None:
    rollout = Rollout(_example(), 0, _attempt(0.2), [], _attempt(0.8))
    assert returns(rollout, 1, alpha=10) == (0.0, 0.8)  # stage I: attempt 2 only
    first, second = returns(rollout, 2, alpha=10)
    assert first == pytest.approx(1.0)  # r1 + r2
    assert second == pytest.approx(0.8 + 10 * 0.6)  # r2 + alpha (r2 - r1)
    carried = Rollout(_example(), 0, _attempt(0.5), [], None)  # no findings: no attempt 2
    assert carried.r2 == 0.5
    assert returns(carried, 2, alpha=10) == (1.0, 0.5)


def test_advantages_are_normalised_within_each_prompts_group() -> None:
    got = group_advantages([0.0, 1.0, 0.3, 0.3, 0.9], [0, 0, 1, 1, 2])
    assert got[0] == pytest.approx(-1.0, abs=1e-3) and got[1] == pytest.approx(1.0, abs=1e-3)
    assert got[2:] == [0.0, 0.0, 0.0]  # equal rewards, and a group of one, carry no signal


def _config(**score: float) -> object:
    return config_from_dict({"score": {"alpha": 10.0, "beta1": 0.01, "beta2": 0.1, **score}})


def test_stage_one_rewards_attempt_two_and_holds_attempt_one_with_beta2() -> None:
    rollouts = [
        Rollout(_example(), 0, _attempt(0.2), [], _attempt(0.9)),
        Rollout(_example(), 0, _attempt(0.2), [], _attempt(0.1)),
    ]
    parts = segments(rollouts, 1, _config())
    first = [p for p in parts if p.attempt == 1]
    second = [p for p in parts if p.attempt == 2]
    assert [(p.pg_weight, p.kl_weight) for p in first] == [(0.0, 0.1), (0.0, 0.1)]
    assert [(p.pg_weight, p.kl_weight) for p in second] == [(1.0, 0.0), (1.0, 0.0)]
    assert second[0].advantage > 0 > second[1].advantage


def test_stage_two_rewards_both_attempts_with_the_bonus_on_attempt_two() -> None:
    # Same r2, different r1: the rollout that improved more gets the larger attempt-2 advantage,
    # while attempt 1 is credited r1 + r2 (no bonus, which would reward a worse first try).
    rollouts = [
        Rollout(_example(), 0, _attempt(0.1), [], _attempt(0.6)),
        Rollout(_example(), 0, _attempt(0.5), [], _attempt(0.6)),
    ]
    parts = segments(rollouts, 2, _config())
    first = [p for p in parts if p.attempt == 1]
    second = [p for p in parts if p.attempt == 2]
    assert all((p.pg_weight, p.kl_weight) == (1.0, 0.01) for p in parts)
    assert first[0].advantage < 0 < first[1].advantage  # 0.7 vs 1.1
    assert second[0].advantage > 0 > second[1].advantage  # 5.6 vs 1.6


def test_rollout_stats_report_both_attempts_and_the_score_deltas() -> None:
    rollouts = [
        Rollout(_example(), 0, _attempt(0.0), [], _attempt(1.0)),  # wrong, then right
        Rollout(_example(), 0, _attempt(1.0), [], None),  # right, kept
    ]
    stats = rollout_stats(rollouts)
    assert stats["reward/attempt1"] == 0.5 and stats["reward/attempt2"] == 1.0
    assert stats["corrections"] == 0.5
    assert (stats["accuracy@t1"], stats["accuracy@t2"]) == (0.5, 1.0)
    assert (stats["delta_i_to_c"], stats["delta_c_to_i"]) == (0.5, 0.0)
    assert all(math.isfinite(v) for v in stats.values())
