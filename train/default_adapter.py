"""``thinkjson-edge train default-adapter``: the adapter that makes the default model.

SFT of a LoRA adapter for the embedded SmolLM2-135M on synthetic documents only (the
packaged ``default-adapter`` config: five domains, six layouts, a fixed seed), then the
adapter written as a llama.cpp LoRA GGUF for the bare base, ``smollm2-135m-base``. Its
metadata holds the config as run, so the file says how to make it again. Shipping it means
copying the file over ``thinkjson_edge/models/default-adapter.gguf``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from thinkjson_edge.train.config import TrainConfig
from thinkjson_edge.train.sft import run_sft

from thinkjson_edge.models.choice import BASE_MODEL, DEFAULT_MODEL

COMMAND = "thinkjson-edge train default-adapter"


def build_default_adapter(
    config: TrainConfig, out: Path, say: Callable[[str], None] = print, *, resume: bool = False
) -> Path:
    """Train the adapter as ``config`` says (resuming if asked) and write it to ``out``."""
    from thinkjson_edge.convert.lora_gguf import write_lora_gguf

    result = run_sft(config, say, resume=resume)
    provenance = {
        "thinkjson.recipe": COMMAND,
        "thinkjson.trained_on": _trained_on(config),
        "thinkjson.training_config": json.dumps(config.to_dict(), ensure_ascii=False),
        "thinkjson.training_summary": json.dumps(result.summary, ensure_ascii=False, default=str),
    }
    write_lora_gguf(result.output, BASE_MODEL, out, name=DEFAULT_MODEL, metadata=provenance)
    say(f"default-adapter: wrote {out}; ship it as thinkjson_edge/models/default-adapter.gguf")
    return out


def _trained_on(config: TrainConfig) -> str:
    data = config.data
    domains = ", ".join(data.domains) if data.domains else "all domains"
    layouts = ", ".join(data.layouts) if data.layouts else "all layouts"
    mixed = f", with every example of {', '.join(data.mixed_in)}" if data.mixed_in else ""
    return (
        f"{data.source} documents ({domains}; {layouts}), {data.train_examples} examples"
        f"{mixed}, data seed {data.seed}, training seed {config.seed}"
    )
