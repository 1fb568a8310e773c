"""Training prompts rendered exactly as the runtime renders them, and attempt findings.

The runtime renders ``prompts.extraction_messages`` / ``correction_messages``
with the model's chat template (with the generation prompt) and, with reasoning
on, forces ``<think>\\n`` before the model writes anything. Training prompts are
that same text, so a completion here is what the model writes after the forced
tag at run time, and the *output* (what the runtime records as the attempt's text,
and shows the model in a correction prompt) is ``<think>\\n`` + completion.

The findings of an attempt, and the problems listed in a correction prompt, are
computed as ``extract.Extractor`` computes them: the answer must be a complete
JSON object, then every schema finding, then every value not found in the document,
at most ``MAX_PROBLEMS_IN_PROMPT`` of them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from thinkjson_edge.train.data import Example
from thinkjson_edge.train.rewards import load_schema_text
from thinkjson_edge.train.traces import split_completion

from thinkjson_edge.extract import MAX_PROBLEMS_IN_PROMPT
from thinkjson_edge.findings import (
    INCOMPLETE,
    Finding,
    ground_values,
    grounding_findings,
    schema_findings,
)
from thinkjson_edge.grammar import THINK_OPEN
from thinkjson_edge.grounding import NormalisedText
from thinkjson_edge.prompts import correction_messages, extraction_messages


def render(tokenizer: Any, messages: list[dict[str, str]], *, think: bool) -> str:
    """The prompt text the runtime gives the model, forced reasoning tag included."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return text + (THINK_OPEN if think else "")


def first_prompt(tokenizer: Any, example: Example, *, think: bool) -> str:
    return render(
        tokenizer, extraction_messages(example.schema_text, example.text, think=think), think=think
    )


def correction_prompt(
    tokenizer: Any, example: Example, first_output: str, problems: Sequence[str], *, think: bool
) -> str:
    messages = correction_messages(
        example.schema_text, example.text, first_output, problems, think=think
    )
    return render(tokenizer, messages, think=think)


def output_text(completion: str, *, think: bool) -> str:
    """The attempt's whole output as the runtime records it: the forced tag, then the completion."""
    return THINK_OPEN + completion if think else completion


def attempt_findings(example: Example, output: str, stop_reason: str) -> list[Finding]:
    """What the runtime would find wrong with ``output`` (see the module docstring)."""
    _, answer = split_completion(output)
    try:
        value = json.loads(answer)
    except json.JSONDecodeError as exc:
        return [
            Finding(
                INCOMPLETE, "", f"the output is not complete JSON ({exc.msg}; stop: {stop_reason})"
            )
        ]
    if not isinstance(value, dict):
        return [
            Finding(INCOMPLETE, "", f"the output is a JSON {type(value).__name__}, not an object")
        ]
    schema = load_schema_text(example.schema_text)
    grounded = ground_values(schema, value, NormalisedText(example.text))
    return schema_findings(schema, value) + grounding_findings(grounded)


def problems(findings: Sequence[Finding]) -> list[str]:
    """The lines a correction prompt lists, as the runtime writes them."""
    return [finding.describe() for finding in findings[:MAX_PROBLEMS_IN_PROMPT]]
