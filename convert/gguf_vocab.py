"""A Hugging Face tokenizer folder -> GGUF tokenizer metadata (vocabulary, merges, chat template).

Byte-level BPE only (SmolLM, Qwen2, Llama 3): the tokenizers of the architectures we ship.
llama.cpp splits text before BPE with a regex it picks by name (``tokenizer.ggml.pre``);
the name comes from the folder's source GGUF when it has one, else from the pre-tokenizer
in ``tokenizer.json``. Verification then checks that both sides tokenize alike.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from thinkjson_edge.convert.to_hf import source_hints

from thinkjson_edge.errors import ConversionError

# GGUF token types (llama.cpp's llama_token_type)
NORMAL, CONTROL, USER_DEFINED, UNUSED = 1, 3, 4, 5

# The split regexes of the pre-tokenizers we recognise, as tokenizer.json spells them.
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_SPLIT_NAMES = {_QWEN2_SPLIT: "qwen2", _LLAMA3_SPLIT: "llama-bpe"}


def add_tokenizer(writer: Any, model_dir: Path, tokenizer: Any, n_vocab: int) -> None:
    """Write ``tokenizer`` (loaded from ``model_dir``) into the GGUF ``writer``."""
    import gguf

    spec = _tokenizer_json(model_dir)
    tokens, types = token_table(tokenizer, n_vocab)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre_tokenizer_name(model_dir, spec))
    writer.add_token_list(tokens)
    writer.add_token_types(types)

    special = gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=n_vocab)
    if not special.merges:
        raise ConversionError(f"{model_dir}/tokenizer.json has no BPE merges")
    # The loaded tokenizer is the truth the HF model is verified with; the files may lag it.
    for kind in ("bos", "eos", "unk", "pad"):
        token_id = getattr(tokenizer, f"{kind}_token_id", None)
        if token_id is not None:
            special.special_token_ids[kind] = token_id
    if "pad" not in special.special_token_ids and tokenizer.eos_token_id is not None:
        special.special_token_ids["pad"] = tokenizer.eos_token_id
    special.chat_template = tokenizer.chat_template
    special.add_special_token = {}  # decided below from behaviour, not guessed from files
    special.add_to_gguf(writer, quiet=True)
    adds_bos, adds_eos = _added_specials(tokenizer)
    writer.add_add_bos_token(adds_bos)
    writer.add_add_eos_token(adds_eos)


def token_table(tokenizer: Any, n_vocab: int) -> tuple[list[str], list[int]]:
    """Token texts and GGUF types by id, padded with unused tokens up to the model's rows."""
    by_id = {index: text for text, index in tokenizer.get_vocab().items()}
    added = tokenizer.added_tokens_decoder  # id -> AddedToken
    if by_id and max(by_id) >= n_vocab:
        raise ConversionError(
            f"the tokenizer has token id {max(by_id)} but the model has only {n_vocab} "
            "embedding rows; resize the embeddings before converting"
        )
    tokens: list[str] = []
    types: list[int] = []
    for index in range(n_vocab):
        if index not in by_id:
            tokens.append(f"[PAD{index}]")
            types.append(UNUSED)
        elif index in added:
            tokens.append(added[index].content)
            types.append(CONTROL if added[index].special else USER_DEFINED)
        else:
            tokens.append(by_id[index])
            types.append(NORMAL)
    return tokens, types


def pre_tokenizer_name(model_dir: Path, spec: dict[str, Any]) -> str:
    """llama.cpp's name for the folder's pre-tokenizer (see the module docstring)."""
    name = source_hints(model_dir).get("tokenizer_pre")
    if isinstance(name, str) and name:
        return name
    steps = _pre_steps(spec.get("pre_tokenizer"))
    kinds = [step.get("type") for step in steps]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits"):
        return "smollm"
    if kinds == ["Split", "ByteLevel"]:
        pattern = steps[0].get("pattern", {}).get("Regex")
        if pattern in _SPLIT_NAMES:
            return _SPLIT_NAMES[pattern]
    raise ConversionError(
        f"the pre-tokenizer of {model_dir}/tokenizer.json ({kinds}) is not one llama.cpp "
        "is known to match here (gpt-2, smollm, qwen2, llama-bpe)"
    )


def _pre_steps(pre: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not pre:
        return []
    if pre.get("type") == "Sequence":
        return list(pre.get("pretokenizers", []))
    return [pre]


def _tokenizer_json(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "tokenizer.json"
    if not path.is_file():
        raise ConversionError(f"{model_dir} has no tokenizer.json (a fast tokenizer is needed)")
    spec = json.loads(path.read_text(encoding="utf-8"))
    model = spec.get("model", {})
    decoder = (spec.get("decoder") or {}).get("type")
    if model.get("type") != "BPE" or model.get("byte_fallback") or decoder != "ByteLevel":
        raise ConversionError(
            f"{path}: only byte-level BPE tokenizers (SmolLM, Qwen2, Llama 3) can be written "
            f"to GGUF here; this one is {model.get('type')} with a {decoder} decoder"
        )
    return spec


def _added_specials(tokenizer: Any) -> tuple[bool, bool]:
    """Whether encoding adds BOS / EOS, read from what the tokenizer actually does."""
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    adds_bos = len(ids) > len(bare) and ids[0] == tokenizer.bos_token_id
    adds_eos = len(ids) > len(bare) and ids[-1] == tokenizer.eos_token_id
    return adds_bos, adds_eos
