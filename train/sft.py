"""ThinkJSON stage 2: SFT on reasoning traces (TRL ``SFTTrainer``, LoRA or full).

Each example is a prompt (the runtime's first prompt, rendered, forced
``<think>\\n`` included) and a completion: the reasoning, ``</think>``, and the
gold JSON, as the runtime's grammar shapes the output, then the end-of-turn
token. Loss is on the completion only. Traces come from the synthetic generator,
a teacher (``train data --teacher``), or the published reasoning dataset's layout
(``data.source``: a file with a ``reasoning`` column); an example without reasoning
is trained on the JSON alone after an empty reasoning block.

Examples longer than ``sft.max_length`` tokens are dropped (and counted): cutting
one would teach the model to stop in the middle of the JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from thinkjson_edge.train.base_model import load_policy
from thinkjson_edge.train.budget import TimeBudget, budget_callback, last_complete_checkpoint
from thinkjson_edge.train.config import TrainConfig
from thinkjson_edge.train.data import Example
from thinkjson_edge.train.logs import MetricsLog, trainer_callback
from thinkjson_edge.train.prompting import first_prompt
from thinkjson_edge.train.sources import fitting, load_split
from thinkjson_edge.train.stage import StageResult, run_trainer, trainer_arguments
from thinkjson_edge.train.traces import completion_text

from thinkjson_edge.grammar.compiler import THINK_OPEN

STAGE = "sft"


def sft_rows(
    examples: list[Example], tokenizer: Any, *, think: bool, reasoning: bool = True
) -> list[dict[str, str]]:
    """Prompt / completion rows; the completion is what follows the prompt (forced tag excluded).

    ``reasoning`` False trains the reasoning block empty, whatever the examples carry.
    """
    rows = []
    for example in examples:
        trace = example.reasoning if reasoning else None
        output = completion_text(trace, example.gold, think=think)
        rows.append(
            {
                "prompt": first_prompt(tokenizer, example, think=think),
                "completion": output.removeprefix(THINK_OPEN) if think else output,
            }
        )
    return rows


def _fits(row: dict[str, str], tokenizer: Any, max_length: int) -> bool:
    text = row["prompt"] + row["completion"] + (tokenizer.eos_token or "")
    return len(tokenizer(text).input_ids) <= max_length


def run_sft(
    config: TrainConfig, say: Callable[[str], None] = print, *, resume: bool = False
) -> StageResult:
    """Train with SFT as the config says; returns where the results are.

    ``resume``: go on from the stage's last complete checkpoint, if there is one.
    """
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    settings = config.sft
    policy = load_policy(config, settings.init_from)
    fitted = fitting(load_split(config).train, policy.tokenizer, config)
    rows = sft_rows(
        fitted.examples, policy.tokenizer, think=config.think, reasoning=settings.reasoning
    )
    kept = [row for row in rows if _fits(row, policy.tokenizer, settings.max_length)]
    if not kept:
        raise ValueError(f"no example fits sft.max_length ({settings.max_length} tokens); raise it")
    dropped = fitted.dropped + len(rows) - len(kept)
    say(f"sft: {len(kept)} examples ({dropped} too long), {settings.max_steps} steps")
    checkpoints = config.stage_dir(STAGE) / "checkpoints"
    start = last_complete_checkpoint(checkpoints) if resume else None
    budget = TimeBudget(settings.time_budget_minutes * 60, start[1] if start else 0.0)
    if start:
        say(f"sft: resuming from {start[0].name} ({start[1] / 60:.1f} min already spent)")
    log = MetricsLog(config.stage_dir(STAGE), tensorboard=config.tensorboard)
    callbacks = [trainer_callback(log)]
    budgeted = settings.time_budget_minutes > 0
    if budgeted:
        rate = budget_callback(budget, settings.learning_rate, settings.warmup_steps, say)
        callbacks.insert(0, rate)  # first: it corrects the logged rate before it is written
    arguments = trainer_arguments(config, STAGE, save_steps=settings.save_steps)
    arguments["disable_tqdm"] = budgeted  # the budget's own lines give the time left
    args = SFTConfig(
        **arguments,
        save_total_limit=2 if settings.save_steps else None,
        lr_scheduler_type="constant" if budgeted else "linear",
        max_steps=settings.max_steps,
        learning_rate=settings.learning_rate,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        max_length=settings.max_length,
        completion_only_loss=True,
        packing=False,
    )
    trainer = SFTTrainer(
        model=policy.model,
        args=args,
        train_dataset=Dataset.from_list(kept),
        processing_class=policy.tokenizer,
        callbacks=callbacks,
    )
    extra = {
        "examples": len(kept),
        "dropped_too_long": dropped,
        "resumed_from": str(start[0]) if start else None,
    }
    resume_from = start[0] if start else None
    return run_trainer(trainer, policy, config, STAGE, log, extra, resume_from=resume_from)
