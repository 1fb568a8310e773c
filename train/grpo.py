"""ThinkJSON stage 1: GRPO with schema rewards (TRL ``GRPOTrainer``, LoRA or full).

Each step samples ``grpo.num_generations`` completions per prompt, scores each with
the weighted reward components (``rewards``), normalises the rewards within the
group, and takes a policy-gradient step with a KL penalty ``grpo.beta`` to the
starting policy. Prompts are the runtime's prompts (``prompting``), rendered as
text, so the trainer applies no chat template of its own.

Writes ``<output_dir>/grpo/``: ``adapter/`` (or ``model/``) with ``meta.json``,
``metrics.csv``, ``tensorboard/`` and ``rewards.png``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from thinkjson_edge.train.base_model import load_policy
from thinkjson_edge.train.config import TrainConfig
from thinkjson_edge.train.data import Example
from thinkjson_edge.train.logs import MetricsLog, trainer_callback
from thinkjson_edge.train.prompting import first_prompt
from thinkjson_edge.train.rewards import reward_functions
from thinkjson_edge.train.sources import fitting, load_split
from thinkjson_edge.train.stage import StageResult, run_trainer, trainer_arguments

STAGE = "grpo"


def grpo_rows(examples: list[Example], tokenizer: Any, *, think: bool) -> list[dict[str, str]]:
    """Dataset rows: the prompt, and the columns the rewards read."""
    return [
        {
            "prompt": first_prompt(tokenizer, example, think=think),
            "schema": example.schema_text,
            "gold": example.gold_text,
            "document": example.text,
        }
        for example in examples
    ]


def run_grpo(config: TrainConfig, say: Callable[[str], None] = print) -> StageResult:
    """Train with GRPO as the config says; returns where the results are."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    settings = config.grpo
    policy = load_policy(config, settings.init_from)
    fitted = fitting(load_split(config).train, policy.tokenizer, config)
    say(
        f"grpo: {len(fitted.examples)} training examples ({fitted.dropped} too long), "
        f"{settings.max_steps} steps, groups of {settings.num_generations}"
    )
    args = GRPOConfig(
        **trainer_arguments(config, STAGE, settings.save_steps),
        max_steps=settings.max_steps,
        learning_rate=settings.learning_rate,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        num_generations=settings.num_generations,
        max_completion_length=settings.max_completion_length,
        temperature=settings.temperature,
        beta=settings.beta,
        reward_weights=list(config.rewards.values()),
        log_completions=False,
    )
    log = MetricsLog(config.stage_dir(STAGE), tensorboard=config.tensorboard)
    trainer = GRPOTrainer(
        model=policy.model,
        reward_funcs=reward_functions(config.rewards, think=config.think),
        args=args,
        train_dataset=Dataset.from_list(
            grpo_rows(fitted.examples, policy.tokenizer, think=config.think)
        ),
        processing_class=policy.tokenizer,
        callbacks=[trainer_callback(log)],
    )
    return run_trainer(
        trainer,
        policy,
        config,
        STAGE,
        log,
        {"examples": len(fitted.examples), "dropped_too_long": fitted.dropped},
    )
