"""The model a stage trains: the base (a Hugging Face folder or id, or a GGUF), LoRA or full.

A GGUF base (``default``, a model name, or a ``.gguf`` path) is converted once to a
trainable folder (``convert.to_hf.gguf_to_hf``) under ``<output_dir>/base-hf/``
and reused by every later stage and run with the same output folder.

Stages chain through ``init_from``: a stage starts from another stage's output
(``<output_dir>/<stage>/adapter`` for LoRA, ``.../model`` for full fine-tuning)
or from a folder given by path. With LoRA every stage goes on training the same
adapter, so the last stage's adapter applies to the original base and
``thinkjson-edge convert --base BASE --adapter DIR`` merges it in one step.
torch, transformers and peft are imported inside functions only.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from thinkjson_edge.train.config import STAGES, TrainConfig

from thinkjson_edge.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

ADAPTER = "adapter"
FULL_MODEL = "model"
META_FILE = "meta.json"
_CONVERTED_MARK = "thinkjson_source.json"  # written by gguf_to_hf beside the weights


@dataclass
class Policy:
    """The model being trained, its tokenizer, and where it started."""

    model: Any  # a PeftModel with LoRA, else a PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    base: str  # the trainable base folder or model id
    init_from: Path | None
    lora: bool


def resolve_base(config: TrainConfig) -> str:
    """A trainable Hugging Face folder or model id for ``config.base_model``."""
    spec = config.base_model
    if Path(spec).expanduser().is_dir():
        return str(Path(spec).expanduser())
    if spec == "default" or spec.endswith(".gguf") or _is_installed_model(spec):
        return str(_converted(spec, Path(config.output_dir) / "base-hf"))
    return spec  # a model id; transformers resolves it (from its cache when offline)


def _is_installed_model(spec: str) -> bool:
    from thinkjson_edge.models.choice import BASE_MODEL, DEFAULT_MODEL, models_dir

    return spec in (BASE_MODEL, DEFAULT_MODEL) or (models_dir() / f"{spec}.gguf").is_file()


def _converted(spec: str, cache: Path) -> Path:
    from thinkjson_edge.convert.to_hf import gguf_to_hf

    from thinkjson_edge.models.choice import DEFAULT_MODEL, choose_model

    choice = choose_model(spec)
    if choice.adapter is not None and spec not in ("default", DEFAULT_MODEL):
        raise ConfigError(
            f"base_model {spec!r} is a LoRA adapter on {choice.base_name!r}; train on that "
            "base (base_model: its name), or merge the adapter first (`thinkjson-edge convert`)"
        )
    gguf = choice.path  # for "default": the embedded base, without the default's adapter
    stat = gguf.stat()
    folder = cache / f"{gguf.stem}-{stat.st_size}-{int(stat.st_mtime)}"
    if not (folder / _CONVERTED_MARK).is_file() or not (folder / "config.json").is_file():
        print(f"converting {gguf} to a trainable folder in {folder} (once)", flush=True)
        gguf_to_hf(gguf, folder)
    return folder


def stage_output(config: TrainConfig, stage: str) -> Path:
    """Where a stage writes its adapter (LoRA) or whole model (full fine-tuning)."""
    return config.stage_dir(stage) / (ADAPTER if config.lora.enabled else FULL_MODEL)


def resolve_init(config: TrainConfig, init_from: str | None) -> Path | None:
    """The adapter or model folder a stage starts from; None: the base model."""
    if init_from in (None, "", "base"):
        return None
    if init_from in STAGES:
        path = stage_output(config, init_from)
        if not path.is_dir():
            command = "score --stage 1" if init_from == "score1" else init_from
            raise ConfigError(
                f"this stage starts from the {init_from} stage's output, {path}, which does "
                f"not exist; run `thinkjson-edge train {command}` with this config first, or "
                "set init_from to null (start from the base model) or to a folder"
            )
        return path
    path = Path(init_from).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"init_from: {init_from} is neither a stage ({', '.join(STAGES)}) nor a folder"
        )
    return path


def torch_device(config: TrainConfig) -> str:
    import torch

    if config.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return config.device


def load_policy(config: TrainConfig, init_from: str | None) -> Policy:
    """The trainable model of a stage: the base plus a new or continued LoRA adapter, or full."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = resolve_base(config)
    start = resolve_init(config, init_from)
    dtype = getattr(torch, config.dtype)
    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    weights = start if (start is not None and not config.lora.enabled) else base
    model: Any = AutoModelForCausalLM.from_pretrained(str(weights), dtype=dtype)
    if config.gradient_checkpointing:  # memory for time, on long sequences of big models
        model.activation_checkpointing_enable()
    if config.lora.enabled:
        from peft import LoraConfig, PeftModel, get_peft_model

        if start is not None:
            model = PeftModel.from_pretrained(model, str(start), is_trainable=True)
        else:
            lora = config.lora
            model = get_peft_model(
                model,
                LoraConfig(
                    r=lora.r,
                    lora_alpha=lora.alpha,
                    lora_dropout=lora.dropout,
                    target_modules=list(lora.target_modules),
                    task_type="CAUSAL_LM",
                ),
            )
    return Policy(model, tokenizer, base, start, config.lora.enabled)


def trainable_snapshot(model: PreTrainedModel) -> dict[str, Any]:
    """A copy of every trainable parameter (to show that training moved them)."""
    return {
        name: param.detach().clone()
        for name, param in model.named_parameters()
        if param.requires_grad
    }


def save_stage(policy: Policy, config: TrainConfig, stage: str, summary: dict[str, Any]) -> Path:
    """Save the stage's adapter (or model) and tokenizer, with a ``meta.json`` sidecar."""
    out = stage_output(config, stage)
    out.mkdir(parents=True, exist_ok=True)
    if policy.lora:
        # Only the trained adapter: a frozen reference copy ("ref") is not part of the result.
        policy.model.save_pretrained(str(out), selected_adapters=["default"])
    else:
        policy.model.save_pretrained(str(out))
    policy.tokenizer.save_pretrained(str(out))
    meta = {
        "stage": stage,
        "base_model": config.base_model,
        "base_folder": policy.base,
        "init_from": str(policy.init_from) if policy.init_from else None,
        "lora": policy.lora,
        "config": config.source,
        "config_name": config.name,
        "config_fingerprint": config.fingerprint(),
        "think": config.think,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": _versions(),
        "python": platform.python_version(),
        **summary,
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    return out


def load_for_inference(config: TrainConfig, trained: Path | None) -> Policy:
    """A stage's result (or the base, with ``trained=None``) in evaluation mode."""
    policy = load_policy(config, str(trained) if trained is not None else None)
    policy.model.eval()
    return policy


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("thinkjson-edge", "torch", "transformers", "trl", "peft"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found
