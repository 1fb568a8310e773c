"""Training prompts rendered exactly as the runtime renders them, and attempt findings.

The runtime renders ``prompts.extraction_messages`` / ``correction_messages``
with the model's chat template (with the generation prompt) and, with reasoning
on, forces ``<think>\\n`` before the model writes anything. Training prompts are
that same text, so a completion here is what the model writes after the forced
tag at run time, and the *output* (what the runtime records as the attempt's text,
and shows the model in a correction prompt) is ``<think>\\n`` + completion.

The findings of an attempt come from the runtime's own ``extract.assess_output``, and
the problems listed in a correction prompt are the first ``MAX_PROBLEMS_IN_PROMPT``
of them, as the runtime lists them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from thinkjson_edge.train.data import Example
from thinkjson_edge.train.rewards import load_schema_text
from thinkjson_edge.train.traces import split_completion

from thinkjson_edge.grammar.compiler import THINK_OPEN
from thinkjson_edge.pipeline.assessment import MAX_PROBLEMS_IN_PROMPT, assess_output
from thinkjson_edge.pipeline.findings import Finding
from thinkjson_edge.pipeline.grounding import NormalisedText
from thinkjson_edge.pipeline.prompts import correction_messages, extraction_messages


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
    """What the runtime finds wrong with ``output``: the same function judges both."""
    _, answer = split_completion(output)
    schema = load_schema_text(example.schema_text)
    _, findings, _ = assess_output(answer, stop_reason, schema, NormalisedText(example.text))
    return findings


def problems(findings: Sequence[Finding]) -> list[str]:
    """The lines a correction prompt lists, as the runtime writes them."""
    return [finding.describe() for finding in findings[:MAX_PROBLEMS_IN_PROMPT]]
