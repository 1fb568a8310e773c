"""What every stage shares: trainer arguments from the config, and finishing a stage.

Finishing saves the adapter (or model) with its ``meta.json``, draws the reward
plot, and counts the trainable parameters that training moved (the evidence
that rewards or targets changed the policy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thinkjson_edge.train.base_model import (
    Policy,
    save_stage,
    stage_output,
    torch_device,
    trainable_snapshot,
)
from thinkjson_edge.train.config import TrainConfig
from thinkjson_edge.train.logs import MetricsLog
from thinkjson_edge.train.plots import plot_rewards


@dataclass
class StageResult:
    """Where a stage put its results, and its summary (also in ``meta.json``)."""

    stage: str
    output: Path
    metrics_csv: Path
    plot: Path | None
    summary: dict[str, Any] = field(default_factory=dict)


def trainer_arguments(config: TrainConfig, stage: str, save_steps: int = 0) -> dict[str, Any]:
    """Keyword arguments every TRL config of a stage shares."""
    device = torch_device(config)
    return {
        "output_dir": str(config.stage_dir(stage) / "checkpoints"),
        "logging_steps": config.logging_steps,
        "report_to": [],  # MetricsLog writes CSV and TensorBoard itself, the same for every stage
        "save_strategy": "steps" if save_steps else "no",
        "save_steps": save_steps or 500,
        "seed": config.seed,
        "use_cpu": device == "cpu",
        "bf16": config.dtype == "bfloat16",
        "fp16": config.dtype == "float16",
        "activation_checkpointing": config.gradient_checkpointing,
        "dataloader_num_workers": 0,
        "disable_tqdm": False,
    }


def changed_parameters(model: Any, before: dict[str, Any]) -> tuple[int, int]:
    """(trainable tensors that moved, trainable tensors) against a ``trainable_snapshot``."""
    import torch

    current = dict(model.named_parameters())
    moved = sum(
        not torch.equal(tensor, current[name].detach().to(tensor.device))
        for name, tensor in before.items()
    )
    return moved, len(before)


def finish_stage(
    policy: Policy,
    config: TrainConfig,
    stage: str,
    log: MetricsLog,
    before: dict[str, Any],
    extra: dict[str, Any],
    *,
    main_process: bool = True,
) -> StageResult:
    """Save and summarise a trained stage (only the main process writes, under accelerate)."""
    moved, trainable = changed_parameters(policy.model, before)
    if not main_process:
        log.close()
        return StageResult(stage, stage_output(config, stage), log.csv_path, None, {})
    plot = plot_rewards(
        log.rows, f"{config.name}: {stage}", config.stage_dir(stage) / "rewards.png"
    )
    summary = {
        "parameters_changed": moved,
        "parameters_trainable": trainable,
        "last_logged": log.rows[-1] if log.rows else {},
        "metrics_csv": str(log.csv_path),
        "plot": str(plot) if plot else None,
        **extra,
    }
    log.close()
    output = save_stage(policy, config, stage, summary)
    return StageResult(stage, output, log.csv_path, plot, summary)


def run_trainer(
    trainer: Any,
    policy: Policy,
    config: TrainConfig,
    stage: str,
    log: MetricsLog,
    extra: dict[str, Any],
    *,
    resume_from: Path | None = None,
) -> StageResult:
    """Train with a TRL trainer (SFT, GRPO), then finish the stage with what it moved."""
    before = trainable_snapshot(policy.model)
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    policy.model = trainer.model
    return finish_stage(
        policy,
        config,
        stage,
        log,
        before,
        extra,
        main_process=trainer.is_world_process_zero(),
    )
