"""A PEFT LoRA adapter folder -> a llama.cpp LoRA GGUF, applied to its base GGUF at load time.

Nothing is merged: llama.cpp computes ``W x + scale * B (A x)`` with ``scale = alpha / r``
(times the caller's scale), so one base file serves many small adapters. The layout it
checks on load (``llama_adapter_lora_init``): for a base tensor ``G.weight`` the adapter has
``G.weight.lora_a`` with ggml shape ``[in, r]`` and ``G.weight.lora_b`` with ``[r, out]``, that
is PEFT's ``lora_A`` ``(r, in)`` and ``lora_B`` ``(out, r)`` as numpy arrays.

Everything about the base comes from the base GGUF itself (architecture, head counts, tensor
shapes): it is the file the adapter will run on. For llama, the rows of ``lora_B`` of q and k
are interleaved like the base's q/k rows were (``rope_interleave``), so ``B A`` lines up with
the permuted base weight.

The base is recorded by name and sha256 (``thinkjson.base_name``, ``thinkjson.base_sha256``):
the runtime finds it by that name and refuses any other file under it.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
from thinkjson_edge.convert.provenance import build_provenance
from thinkjson_edge.convert.to_gguf import SUPPORTED, gguf_name, rope_interleave

from thinkjson_edge.errors import ConversionError
from thinkjson_edge.files import atomic_target
from thinkjson_edge.models.adapter import BASE_NAME_KEY, BASE_SHA256_KEY
from thinkjson_edge.models.choice import (
    BASE_MODEL,
    DEFAULT_MODEL,
    choose_model,
    known_model_name,
)
from thinkjson_edge.models.gguf import GGUFHeader, read_header

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
_F16_FILE_TYPE = 1
# PEFT keys: "base_model.model.<module>.lora_A.weight" (the adapter's own name is dropped).
_LORA_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<part>[AB])\.weight$")
# Settings whose effect llama.cpp's plain LoRA cannot reproduce, with the value that means
# "not used" (empty and null values mean that too).
_REFUSED: dict[str, tuple[str, Any]] = {
    "use_dora": ("DoRA (use_dora)", False),
    "modules_to_save": ("fully trained modules (modules_to_save)", None),
    "rank_pattern": ("per-module ranks (rank_pattern)", {}),
    "alpha_pattern": ("per-module alphas (alpha_pattern)", {}),
    "bias": ("trained biases (bias)", "none"),
    "lora_bias": ("a bias on lora_B (lora_bias)", False),
    "fan_in_fan_out": ("transposed base weights (fan_in_fan_out)", False),
    "trainable_token_indices": ("trained token embeddings (trainable_token_indices)", None),
    "target_parameters": ("adapted parameters (target_parameters)", None),
    "layer_replication": ("replicated layers (layer_replication)", None),
    "alora_invocation_tokens": ("activated LoRA (alora_invocation_tokens)", None),
    "use_qalora": ("QALoRA (use_qalora)", False),
}


def write_lora_gguf(
    adapter_dir: Path,
    base: str | Path,
    out: Path,
    *,
    name: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write the PEFT adapter in ``adapter_dir`` as a LoRA GGUF for ``base``; return ``out``.

    ``base`` is what ``--model`` accepts (the default model's name, an installed model's
    name, or a path to one of those files): the runtime finds the base by that name, so an
    adapter for a file it cannot find by name is refused. ``name`` is ``general.name``
    (default: the file's stem); ``metadata`` adds string keys (training provenance, config).
    The file is written atomically.
    """
    adapter_dir, out = Path(adapter_dir), Path(out)
    config = read_adapter_config(adapter_dir)
    base_path, base_name = _base_model(base)
    header = read_header(base_path)
    tensors = lora_tensors(adapter_dir, header)
    keys = build_provenance(base_path, adapter_dir)
    keys[BASE_NAME_KEY] = base_name
    clashes = sorted(set(metadata or {}) & {BASE_NAME_KEY, BASE_SHA256_KEY})
    if clashes:
        raise ConversionError(f"metadata may not set {clashes}: they describe the base file")
    keys.update(metadata or {})
    with atomic_target(out) as partial:
        _write(partial, header, name or out.stem, _alpha(config), keys, tensors)
    return out


def read_adapter_config(adapter_dir: Path) -> dict[str, Any]:
    """The adapter's config, or ConversionError when llama.cpp could not apply it as trained."""
    path = Path(adapter_dir) / ADAPTER_CONFIG
    if not path.is_file():
        raise ConversionError(f"{adapter_dir} is not a PEFT adapter folder (no {ADAPTER_CONFIG})")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConversionError(f"{path} cannot be read: {exc}") from exc
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        kind = config.get("peft_type") if isinstance(config, dict) else None
        raise ConversionError(f"{adapter_dir} is a {kind!r} adapter; only LoRA can be converted")
    used = [what for key, (what, off) in _REFUSED.items() if config.get(key) and config[key] != off]
    if used:
        raise ConversionError(
            f"adapter {adapter_dir} uses {', '.join(used)}, which llama.cpp's LoRA cannot "
            "apply; merge it into its base instead (`thinkjson-edge convert --adapter`)"
        )
    rank, alpha = config.get("r"), config.get("lora_alpha")
    if not isinstance(rank, int) or not isinstance(alpha, int | float):
        raise ConversionError(f"{path} gives no rank (r) and lora_alpha")
    return config


def lora_tensors(adapter_dir: Path, header: GGUFHeader) -> list[tuple[str, np.ndarray]]:
    """(GGUF name, F16 array) of every lora_a / lora_b pair, checked against the base's shapes."""
    import gguf

    arch = header.architecture
    if arch not in SUPPORTED:
        raise ConversionError(f"LoRA adapters for {arch!r} models cannot be written here")
    meta = header.metadata
    blocks = int(meta[f"{arch}.block_count"])
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.upper()], blocks)
    heads = int(meta[f"{arch}.attention.head_count"])
    kv_heads = int(meta.get(f"{arch}.attention.head_count_kv", heads))
    rope_heads = {"attn_q": heads, "attn_k": kv_heads}
    base_shapes = {t.name: t.shape for t in header.tensors}
    tensors: list[tuple[str, np.ndarray]] = []
    for module, (a, b) in _pairs(adapter_dir).items():
        target = gguf_name(names, f"{module}.weight")
        _check_fit(module, target, base_shapes.get(target), a.shape, b.shape)
        if arch == "llama" and (kind := target.split(".")[-2]) in rope_heads:
            b = rope_interleave(b, rope_heads[kind])
        tensors.append((f"{target}.lora_a", _f16(a, module)))
        tensors.append((f"{target}.lora_b", _f16(b, module)))
    return tensors


def _check_fit(module: str, target: str, base: tuple[int, ...] | None, a: Any, b: Any) -> None:
    """The checks llama.cpp makes on load, made here with a message that names the module."""
    if base is None:
        raise ConversionError(
            f"the adapter trains {module}, whose weight {target} is not a tensor of the "
            "base file (a tied output layer?); llama.cpp cannot apply it"
        )
    # ggml order: the base is (in, out); numpy order: A is (r, in), B is (out, r).
    if len(base) != 2 or (a[1], b[0]) != base or a[0] != b[1]:
        raise ConversionError(
            f"{module}: lora_A {tuple(a)} and lora_B {tuple(b)} do not fit the base's "
            f"{target} ({base[-1]} x {base[0]}); the adapter was trained on another model"
        )


def _pairs(adapter_dir: Path) -> dict[str, tuple[Any, Any]]:
    """module name -> (lora_A, lora_B) as float32 torch tensors; other tensors are refused."""
    import torch
    from safetensors import safe_open

    path = Path(adapter_dir) / ADAPTER_WEIGHTS
    if not path.is_file():
        raise ConversionError(f"{adapter_dir} has no {ADAPTER_WEIGHTS} (save it with safetensors)")
    parts: dict[str, dict[str, Any]] = {}
    with safe_open(str(path), framework="pt") as weights:
        for key in weights.keys():  # noqa: SIM118 (safe_open is not a mapping)
            match = _LORA_KEY.match(key)
            if match is None:
                raise ConversionError(f"adapter tensor {key!r} is not a LoRA A/B matrix of a "
                                      "linear layer; llama.cpp cannot apply it")  # fmt: skip
            tensor = weights.get_tensor(key).to(torch.float32)
            parts.setdefault(match["module"], {})[match["part"]] = tensor
    if not parts:
        raise ConversionError(f"{path} holds no LoRA weights")
    missing = sorted(module for module, ab in parts.items() if len(ab) != 2)
    if missing:
        raise ConversionError(f"{path}: {missing[0]} lacks its lora_A or lora_B matrix")
    return {module: (ab["A"], ab["B"]) for module, ab in parts.items()}


def _f16(tensor: Any, module: str) -> np.ndarray:
    array = tensor.contiguous().numpy().astype(np.float16)
    if not np.isfinite(array).all():
        raise ConversionError(f"{module}: LoRA weights overflow F16 (or are not finite)")
    return array


def _alpha(config: dict[str, Any]) -> float:
    """The alpha llama.cpp divides by the rank: rsLoRA scales by alpha / sqrt(r) instead."""
    alpha = float(config["lora_alpha"])
    return alpha * math.sqrt(config["r"]) if config.get("use_rslora") else alpha


def _base_model(base: str | Path) -> tuple[Path, str]:
    """The base GGUF and the name the runtime will find it by."""
    choice = choose_model(str(base))
    if str(base) in ("default", DEFAULT_MODEL):
        # Training's "default" base is the default model's weights: the bare embedded base.
        return choice.path, BASE_MODEL
    if choice.adapter is not None:
        raise ConversionError(f"{base} is a LoRA adapter itself; give the model it applies to")
    name = known_model_name(choice.path)
    if name is None:
        raise ConversionError(
            f"{choice.path} is neither the default model nor an installed one, so an adapter "
            "for it could not find it at run time; install it first (`thinkjson-edge models "
            "export FILE BUNDLE`, then `models import BUNDLE --name NAME`) and name it as the base"
        )
    return choice.path, name


def _write(
    partial: Path, header: GGUFHeader, name: str, alpha: float, keys: dict[str, str],
    tensors: list[tuple[str, np.ndarray]],
) -> None:  # fmt: skip
    import gguf

    writer = gguf.GGUFWriter(partial, header.architecture)
    try:
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_name(name)
        writer.add_file_type(_F16_FILE_TYPE)
        licence = header.metadata.get("general.license")
        if isinstance(licence, str) and licence:
            writer.add_license(licence)  # an adapter is a derivative of its base
        for key, value in keys.items():
            writer.add_string(key, value)
        for tensor_name, array in tensors:
            writer.add_tensor(tensor_name, array)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
