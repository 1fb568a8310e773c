"""GGUF -> a plain Hugging Face folder that Trainer, PEFT and TRL accept.

transformers reads a GGUF (dequantizing every tensor) but marks the model as
quantized, and Trainer refuses to train a quantized model. Saving it once as an
ordinary float folder, without that marking, gives a trainable model.
"""

from __future__ import annotations

import json
from pathlib import Path

from thinkjson_edge.environment import bound_openmp_spinning
from thinkjson_edge.errors import ConversionError
from thinkjson_edge.models.gguf import check_gguf, read_header

# Written beside the weights: what the folder came from, and the GGUF tokenizer's
# pre-tokenizer name, which the HF tokenizer does not keep but llama.cpp needs back.
SOURCE_FILE = "thinkjson_source.json"


def gguf_to_hf(gguf_path: Path, out_dir: Path) -> Path:
    """Convert ``gguf_path`` into a float32 Hugging Face folder at ``out_dir``; return it."""
    bound_openmp_spinning()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path).resolve()
    check_gguf(gguf_path)
    metadata = read_tokenizer_hints(gguf_path)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
        )
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    except (ValueError, OSError, KeyError, RuntimeError) as exc:
        raise ConversionError(
            f"{gguf_path} cannot be converted to a Hugging Face model: {exc}"
        ) from exc

    _clear_quantized_marking(model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # The GGUF loader leaves the length unbounded; training truncates to the real context.
    tokenizer.model_max_length = model.config.max_position_embeddings
    model.generation_config.pad_token_id = tokenizer.pad_token_id

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    source = {"gguf": gguf_path.name, **metadata}
    (out_dir / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
    return out_dir


def _clear_quantized_marking(model: object) -> None:
    """Make the dequantized model an ordinary float model (in memory and in its config)."""
    config = model.config  # type: ignore[attr-defined]
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model.hf_quantizer = None  # type: ignore[attr-defined]
    model.is_quantized = False  # type: ignore[attr-defined]
    model.quantization_method = None  # type: ignore[attr-defined]
    # The GGUF's display name lands in these; a name that is not a path would mislead
    # PEFT's adapter config (base_model_name_or_path) and later loads.
    if hasattr(config, "_model_name_or_path"):
        del config._model_name_or_path
    config._name_or_path = ""


def source_hints(model_dir: Path) -> dict[str, object]:
    """What ``gguf_to_hf`` noted about the folder's source GGUF ({} for other folders)."""
    path = Path(model_dir) / SOURCE_FILE
    if not path.is_file():
        return {}
    try:
        hints = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return hints if isinstance(hints, dict) else {}


def read_tokenizer_hints(gguf_path: Path) -> dict[str, object]:
    """The GGUF fields an HF folder does not carry, kept for the way back to GGUF.

    Also refuses a truncated or corrupt file before transformers fails less clearly.
    """
    metadata = read_header(gguf_path).metadata
    hints: dict[str, object] = {}
    for key, name in (
        ("tokenizer.ggml.pre", "tokenizer_pre"),
        ("tokenizer.ggml.add_bos_token", "add_bos_token"),
        ("tokenizer.ggml.add_eos_token", "add_eos_token"),
        ("general.name", "name"),
        ("general.license", "license"),
    ):
        if key in metadata:
            hints[name] = metadata[key]
    return hints
