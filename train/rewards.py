"""Rewards for GRPO and SCoRe, scored exactly as evaluation scores.

Every reward has TRL's signature ``f(prompts, completions, **columns) -> list[float]``
and reads the dataset columns ``schema`` (JSON text), ``gold`` (JSON text) and
``document`` (the text extracted from). A completion is a string or a chat turn
(``[{"role": "assistant", "content": ...}]``). Each reward is in [0, 1].

A completion is what the model wrote after the prompt. With reasoning on, the
runtime forces ``<think>\\n`` before the model writes, so the *output* scored is
``<think>\\n`` + completion (``prompting.output_text``). An output splits into a
reasoning block and an answer (:func:`~thinkjson_edge.train.traces.split_completion`):
the answer is what follows ``</think>``, or the whole output without one.
``parsed`` below is ``metrics.parse_output(answer)`` (strict JSON, one value,
nothing around it).

============ ===================================================================
reward       formula
============ ===================================================================
format       with reasoning: ½·[the output is ``<think>`` R ``</think>`` A: the block is
             closed once, and no other tag appears] + ¼·[A starts with ``{``] +
             ¼·[A ends with ``}``] (A stripped);
             without: ½·[the output starts with ``{``] + ½·[it ends with ``}``] (stripped),
             0 if it holds a ``<think>`` or ``</think>`` tag
json         1 if ``parsed`` is a JSON object, else 0
schema       0 without an object; else 1 / (1 + E), E = the runtime's schema findings
             (``findings.schema_findings``, every keyword, formats included); 1 = valid
field_match  ``metrics.field_match(gold, parsed)``: matched gold leaves / gold leaves
             (0 with no JSON output), the paper's match %
noise        1 - ``metrics.noise(gold, parsed)``: 1 - (predicted - matched) / predicted
             leaves; 0 with no JSON output, 1 for an empty object
grounding    0 without an object; else found / looked-up strings, as the runtime
             grounds them (``findings.ground_values``); 1 when there is none to look up
============ ===================================================================

The partial credit of ``format`` gives a small model a gradient before it ever
writes a whole object.

:func:`weighted_total` combines them with the config's weights as
Σ wᵢ·rᵢ / Σ wᵢ (also in [0, 1]); GRPO passes the same weights to TRL, which sums
Σ wᵢ·rᵢ without dividing (group normalisation makes the scale irrelevant).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from thinkjson_edge.train.traces import THINK_END, split_completion

from thinkjson_edge.evaluation.metrics import field_match, noise, parse_output
from thinkjson_edge.grammar.compiler import THINK_OPEN
from thinkjson_edge.pipeline.findings import ground_values, schema_findings
from thinkjson_edge.pipeline.grounding import NormalisedText
from thinkjson_edge.schema import Schema, check_schema

COMPONENTS = ("format", "json", "schema", "field_match", "noise", "grounding")
_THINK_START = "<think>"


@dataclass(frozen=True)
class Scored:
    """Every reward component of one completion, and what the answer parsed to."""

    rewards: dict[str, float]
    parsed: Any | None
    schema_errors: int | None  # None without an object

    @property
    def valid(self) -> bool:
        return self.schema_errors == 0


def completion_text(completion: str | Sequence[Mapping[str, Any]]) -> str:
    """The generated text of a completion given as a string or as chat turns."""
    if isinstance(completion, str):
        return completion
    return "".join(str(turn.get("content") or "") for turn in completion)


@functools.lru_cache(maxsize=512)
def load_schema_text(text: str) -> Schema:
    """A checked schema from its JSON text (cached: every completion of a group shares it)."""
    return check_schema(json.loads(text))


@functools.lru_cache(maxsize=512)
def _located(document: str) -> NormalisedText:
    return NormalisedText(document)


def format_score(output: str, *, think: bool = True) -> float:
    """The format reward of one output (see the module table).

    >>> format_score('<think>\\nthe fields\\n</think>\\n{"a": 1}')
    1.0
    >>> format_score('<think>\\nthe fields, then {"a"')
    0.0
    >>> format_score('{"a": 1}', think=False)
    1.0
    >>> format_score('```json {"a": 1}', think=False)
    0.5
    """
    stripped = output.strip()
    if not think:
        if _THINK_START in output or THINK_END in output:
            return 0.0
        return 0.5 * stripped.startswith("{") + 0.5 * stripped.endswith("}")
    reasoning, answer = split_completion(output)
    if reasoning is None:
        return 0.0  # the block never closed: everything is reasoning
    one_block = _THINK_START not in reasoning and THINK_END not in answer
    one_block = one_block and _THINK_START not in answer
    return 0.5 * one_block + 0.25 * answer.startswith("{") + 0.25 * answer.endswith("}")


def score_output(
    output: str, schema_text: str, gold_text: str, document: str, *, think: bool = True
) -> Scored:
    """All reward components of one output (with reasoning: from the forced ``<think>`` on)."""
    _, answer = split_completion(output)
    parsed = parse_output(answer)
    gold = json.loads(gold_text)
    rewards = {
        "format": format_score(output, think=think),
        "json": 1.0 if isinstance(parsed, dict) else 0.0,
        "field_match": field_match(gold, parsed),
        "noise": 1.0 - noise(gold, parsed),
    }
    if not isinstance(parsed, dict):
        return Scored({**rewards, "schema": 0.0, "grounding": 0.0}, parsed, None)
    schema = load_schema_text(schema_text)
    errors = len(schema_findings(schema, parsed))
    grounded = ground_values(schema, parsed, _located(document))
    found = sum(item.span is not None for item in grounded)
    rewards["schema"] = 1.0 / (1 + errors)
    rewards["grounding"] = found / len(grounded) if grounded else 1.0
    return Scored(rewards, parsed, errors)


def weighted_total(rewards: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """Σ wᵢ·rᵢ / Σ wᵢ over the weighted components.

    >>> weighted_total({"json": 1.0, "schema": 0.5}, {"json": 1.0, "schema": 3.0})
    0.625
    """
    total = sum(weights.values())
    if total <= 0:
        raise ValueError("reward weights must add up to more than 0")
    return sum(w * rewards[name] for name, w in weights.items()) / total


class Reward:
    """One reward component as a TRL reward function (picklable; named ``<component>_reward``)."""

    def __init__(self, component: str, *, think: bool = True) -> None:
        if component not in COMPONENTS:
            raise ValueError(f"unknown reward {component!r}; choose from {', '.join(COMPONENTS)}")
        self.component = component
        self.think = think
        self.__name__ = f"{component}_reward"

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[str | Sequence[Mapping[str, Any]]],
        *,
        schema: Sequence[str],
        gold: Sequence[str],
        document: Sequence[str],
        **_: Any,
    ) -> list[float]:
        prefix = THINK_OPEN if self.think else ""
        return [
            score_output(prefix + completion_text(c), s, g, d, think=self.think).rewards[
                self.component
            ]
            for c, s, g, d in zip(completions, schema, gold, document, strict=True)
        ]

    def __repr__(self) -> str:
        return f"Reward({self.component!r}, think={self.think})"


def reward_functions(weights: Mapping[str, float], *, think: bool) -> list[Reward]:
    """TRL reward functions for the components with a weight, in ``weights``' order."""
    return [Reward(name, think=think) for name in weights]


# The components as plain functions, for callers that want one by name.
format_reward = Reward("format")
json_reward = Reward("json")
schema_reward = Reward("schema")
field_match_reward = Reward("field_match")
noise_reward = Reward("noise")
grounding_reward = Reward("grounding")
