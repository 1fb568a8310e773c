"""A Hugging Face causal LM (llama or qwen2 architecture) -> an F16 GGUF file.

Tensor names come from the ``gguf`` package's name map. Two layout facts matter:

- llama: HF stores each attention head's q/k rows as two halves (rotate-half rotary),
  llama.cpp's ``llama`` graph rotates adjacent pairs, so q and k rows are interleaved
  per head on the way out (``rope_interleave``). qwen2 runs with the half layout in
  llama.cpp too, so its q/k are written as they are.
- Tied embeddings: no ``output.weight`` is written; llama.cpp then reuses ``token_embd``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from thinkjson_edge.convert.gguf_vocab import add_tokenizer
from thinkjson_edge.convert.to_hf import source_hints

from thinkjson_edge.errors import ConversionError
from thinkjson_edge.files import atomic_target

SUPPORTED = ("llama", "qwen2")
_F16_FILE_TYPE = 1  # llama_ftype MOSTLY_F16: 1-D tensors stay F32


def write_gguf(
    model: Any,
    tokenizer: Any,
    tokenizer_dir: Path,
    out_path: Path,
    *,
    name: str | None = None,
    metadata: dict[str, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``model`` and ``tokenizer`` to ``out_path`` (atomically); return the path.

    ``tokenizer_dir`` is the folder the tokenizer was loaded from (merges, source hints).
    ``name`` is ``general.name`` (default: the file's stem); ``metadata`` adds string keys
    (provenance); ``progress(done, total)`` follows the tensors as they are written.
    """

    config = model.config
    arch = config.model_type
    if arch not in SUPPORTED:
        raise ConversionError(
            f"architecture {arch!r} cannot be written to GGUF here; supported: {SUPPORTED}"
        )
    n_vocab = model.get_input_embeddings().weight.shape[0]
    tensors = gguf_tensors(model)

    out_path = Path(out_path)
    with atomic_target(out_path) as partial:
        _write_gguf(partial, arch, name or out_path.stem, config, tokenizer_dir, tokenizer,
                    n_vocab, metadata, tensors, progress)  # fmt: skip
    return out_path


def _write_gguf(
    partial: Path, arch: str, name: str, config: Any, tokenizer_dir: Path | str, tokenizer: Any,
    n_vocab: int, metadata: dict[str, str] | None, tensors: list[Any],
    progress: Callable[[int, int], None] | None,
) -> None:  # fmt: skip
    import gguf

    writer = gguf.GGUFWriter(partial, arch)
    try:
        writer.add_name(name)
        licence = source_hints(Path(tokenizer_dir)).get("license")
        if isinstance(licence, str) and licence:
            writer.add_license(licence)  # the base's license travels with the weights
        _add_hparams(writer, config, n_vocab)
        add_tokenizer(writer, Path(tokenizer_dir), tokenizer, n_vocab)
        for key, value in (metadata or {}).items():
            writer.add_string(key, value)
        for tensor in tensors:
            writer.add_tensor_info(tensor.name, tensor.shape, tensor.dtype, tensor.nbytes)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for done, tensor in enumerate(tensors, start=1):  # one converted tensor in memory at a time
            writer.write_tensor_data(tensor.array())
            if progress:
                progress(done, len(tensors))
    finally:
        writer.close()


@dataclass(frozen=True)
class GGUFTensor:
    """One weight on its way out: its GGUF name, the HF tensor, and how to lay it out."""

    name: str
    source: Any  # torch.Tensor
    rope_heads: int | None = None  # interleave rotary rows per head (llama q/k)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float16 if self.source.ndim >= 2 else np.float32)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.source.shape)

    @property
    def nbytes(self) -> int:
        return self.source.numel() * self.dtype.itemsize

    def array(self) -> np.ndarray:
        """2-D weights in F16, 1-D ones (norms, biases) in F32, as llama.cpp expects."""
        import torch

        data = self.source.detach().to(torch.float32)
        if self.rope_heads:
            data = rope_interleave(data, self.rope_heads)
        return data.to(torch.float16 if self.dtype == np.float16 else torch.float32).numpy()


def gguf_tensors(model: Any) -> list[GGUFTensor]:
    """Every weight of ``model`` with its GGUF name, in the model's order."""
    import gguf

    config = model.config
    arch = gguf.MODEL_ARCH[config.model_type.upper()]
    names = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    heads = {
        "attn_q": config.num_attention_heads,
        "attn_k": getattr(config, "num_key_value_heads", None) or config.num_attention_heads,
    }
    tensors = []
    for hf_name, weight in model.state_dict().items():
        if tied and hf_name == "lm_head.weight":
            continue
        name = gguf_name(names, hf_name)
        kind = name.split(".")[-2]
        rope_heads = heads.get(kind) if config.model_type == "llama" else None
        tensors.append(GGUFTensor(name, weight, rope_heads))
    return tensors


def gguf_name(names: Any, hf_name: str) -> str:
    """The GGUF name of an HF tensor, or ConversionError for a tensor llama.cpp would not load."""
    name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
    if name is None:
        raise ConversionError(f"tensor {hf_name!r} has no GGUF name for this architecture")
    return name


def rope_interleave(weight: Any, heads: int) -> Any:
    """Reorder q/k rows per head from rotate-half halves to adjacent rotary pairs.

    Row ``i`` of the first half and row ``i`` of the second half of a head form rotary
    pair ``i``; llama.cpp wants them at rows ``2i`` and ``2i + 1``.
    """
    rows = weight.shape[0]
    head_dim = rows // heads
    rest = weight.shape[1:]
    return weight.reshape(heads, 2, head_dim // 2, *rest).transpose(1, 2).reshape(rows, *rest)


def _add_hparams(writer: Any, config: Any, n_vocab: int) -> None:
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(getattr(config, "num_key_value_heads", None) or heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(_F16_FILE_TYPE)
    if head_dim * heads != config.hidden_size:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    if config.model_type == "llama":
        writer.add_rope_dimension_count(head_dim)
    _add_rope(writer, config)


def _add_rope(writer: Any, config: Any) -> None:
    import gguf

    rope = dict(getattr(config, "rope_parameters", None) or {})
    if not rope:  # configs written before rope_parameters existed
        rope = dict(getattr(config, "rope_scaling", None) or {})
        rope.setdefault("rope_theta", getattr(config, "rope_theta", 10000.0))
    writer.add_rope_freq_base(float(rope.get("rope_theta", 10000.0)))
    kind = rope.get("rope_type") or rope.get("type") or "default"
    if kind == "default":
        return
    if kind == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))
    elif kind == "yarn":
        writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        writer.add_rope_scaling_factor(float(rope["factor"]))
        writer.add_rope_scaling_orig_ctx_len(int(rope["original_max_position_embeddings"]))
    else:
        raise ConversionError(f"rope scaling {kind!r} cannot be written to GGUF here")
