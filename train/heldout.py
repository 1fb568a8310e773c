"""Held-out evaluation of a trained stage: first attempts, greedy, scored by the rewards.

The model answers each held-out example's first prompt (as the runtime renders it)
with greedy decoding and no grammar, so the figures show what the weights
learned, not what the runtime's grammar enforces. Each output gets every reward
component; the summary gives their means, the share of schema-valid objects and
the ThinkJSON corpus figures (``metrics.aggregate``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from thinkjson_edge.train.data import Example
from thinkjson_edge.train.prompting import first_prompt, output_text
from thinkjson_edge.train.rewards import COMPONENTS, Scored, score_output

from thinkjson_edge.evaluation.metrics import aggregate, score_document


@dataclass
class HeldOut:
    """Mean reward components and corpus figures over held-out examples."""

    examples: int
    means: dict[str, float]
    valid_share: float  # parsed objects with no schema finding
    corpus: dict[str, Any]
    outputs: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "means": self.means,
            "valid_share": self.valid_share,
            "corpus": self.corpus,
        }


def evaluate(
    model: Any,
    tokenizer: Any,
    examples: Sequence[Example],
    *,
    think: bool,
    max_new_tokens: int,
    batch_size: int = 4,
) -> HeldOut:
    """Greedy first attempts on ``examples``, scored."""
    outputs: list[str] = []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        prompts = [first_prompt(tokenizer, example, think=think) for example in chunk]
        completions = _greedy(model, tokenizer, prompts, max_new_tokens)
        outputs += [output_text(text, think=think) for text in completions]
    scored: list[Scored] = [
        score_output(output, e.schema_text, e.gold_text, e.text, think=think)
        for output, e in zip(outputs, examples, strict=True)
    ]
    n = len(examples)
    corpus = aggregate(
        [score_document(e.gold, s.parsed) for e, s in zip(examples, scored, strict=True)]
    )
    return HeldOut(
        examples=n,
        means={c: sum(s.rewards[c] for s in scored) / n for c in COMPONENTS},
        valid_share=sum(s.valid for s in scored) / n,
        corpus={
            "no_json_output": corpus.no_json_output,
            "mean_match_pct": corpus.mean_match_pct,
            "mean_noise_pct": corpus.mean_noise_pct,
            "exact_match_pct": corpus.exact_match_pct,
        },
        outputs=outputs,
    )


def _greedy(model: Any, tokenizer: Any, prompts: list[str], max_new_tokens: int) -> list[str]:
    import torch

    tokenizer.padding_side = "left"
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    batch = {k: v.to(model.device) for k, v in batch.items()}
    model.eval()
    with torch.no_grad():
        generated = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
    tokenizer.padding_side = "right"
    width = batch["input_ids"].shape[1]
    return [tokenizer.decode(row[width:], skip_special_tokens=True) for row in generated]
