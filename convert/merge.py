"""Base model (HF folder or GGUF) + optional PEFT LoRA adapter -> one merged model in memory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thinkjson_edge.convert.to_hf import gguf_to_hf

from thinkjson_edge.environment import bound_openmp_spinning
from thinkjson_edge.errors import ConversionError


@dataclass
class Merged:
    """The merged model, its tokenizer, and the HF folder the tokenizer files live in."""

    model: Any
    tokenizer: Any
    model_dir: Path


def trainable_folder(base: Path, work_dir: Path) -> Path:
    """``base`` as a Hugging Face folder: itself, or converted from GGUF under ``work_dir``."""
    base = Path(base)
    if base.is_dir():
        if not (base / "config.json").is_file():
            raise ConversionError(f"{base} is not a Hugging Face model folder (no config.json)")
        return base
    if base.is_file():
        return gguf_to_hf(base, Path(work_dir) / "base-hf")
    raise ConversionError(f"base model {base} does not exist")


def load_merged(model_dir: Path, adapter: Path | None = None) -> Merged:
    """Load ``model_dir`` in float32; merge ``adapter`` into its weights (``merge_and_unload``)."""
    bound_openmp_spinning()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError, KeyError) as exc:
        raise ConversionError(f"{model_dir} cannot be loaded: {exc}") from exc
    if adapter is not None:
        model = _merge(model, Path(adapter))
    return Merged(model=model.eval(), tokenizer=tokenizer, model_dir=Path(model_dir))


def save_merged(merged: Merged, out_dir: Path) -> Path:
    """Write the merged model as a plain Hugging Face folder (weights, config, tokenizer)."""
    import shutil

    from thinkjson_edge.convert.to_hf import SOURCE_FILE

    out_dir = Path(out_dir)
    merged.model.save_pretrained(out_dir)
    merged.tokenizer.save_pretrained(out_dir)
    if (merged.model_dir / SOURCE_FILE).is_file():
        shutil.copyfile(merged.model_dir / SOURCE_FILE, out_dir / SOURCE_FILE)
    return out_dir


def _merge(model: Any, adapter: Path) -> Any:
    from peft import PeftModel

    if not (adapter / "adapter_config.json").is_file():
        raise ConversionError(f"{adapter} is not a PEFT adapter folder (no adapter_config.json)")
    try:
        with_adapter = PeftModel.from_pretrained(model, adapter)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ConversionError(
            f"adapter {adapter} does not fit this base model: {exc}"
        ) from exc
    return with_adapter.merge_and_unload()
