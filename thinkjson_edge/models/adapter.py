"""LoRA adapter GGUFs: telling one from a model, and checking the base it is applied to.

An adapter (``general.type = adapter``) holds only low-rank weight deltas; llama.cpp adds
them to a base model when it loads. Applied to any other weights of the same shapes it
loads without complaint and writes nonsense, so an adapter made here
(``convert.lora_gguf``) names its base (``thinkjson.base_name``: the default model or an
installed one) and carries the sha256 of that exact file, checked before every load.

Hashing a base costs a read of the whole file; the hashes and headers are kept per
(path, size, mtime) for the life of the process, so resolving a model again is cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from thinkjson_edge.errors import ConversionError, ModelLoadError
from thinkjson_edge.files import sha256_file
from thinkjson_edge.models.gguf import GGUFHeader, read_header

ADAPTER_TYPE = "adapter"  # general.type of an adapter; models say "model" or nothing
BASE_NAME_KEY = "thinkjson.base_name"
BASE_SHA256_KEY = "thinkjson.base_sha256"

T = TypeVar("T")
_CACHE: dict[tuple[str, str, int, int], Any] = {}


@dataclass(frozen=True)
class AdapterInfo:
    """What an adapter file says about itself and its base."""

    path: Path
    base_name: str
    base_sha256: str
    alpha: float
    rank: int | None  # from the tensors' shapes; None when the file has no pairs
    targets: tuple[str, ...]  # the base tensors it changes, by kind: attn_q, ffn_down, ...
    layers: int  # how many blocks it changes


def is_adapter(metadata: dict[str, Any]) -> bool:
    return metadata.get("general.type") == ADAPTER_TYPE


def read_adapter(path: Path) -> AdapterInfo | None:
    """The adapter facts of a GGUF; None for a model.

    A file whose header cannot be read counts as a model here: loading it then says why.
    An adapter that does not name its base (made by another tool) is refused.
    """
    header = cached_header(path)
    if header is None or not is_adapter(header.metadata):
        return None
    return adapter_info(header)


def cached_header(path: Path) -> GGUFHeader | None:
    """The GGUF header of ``path`` (read once per size and mtime); None when unreadable."""
    try:
        return _cached("header", Path(path), read_header)
    except ConversionError:
        return None


def adapter_info(header: GGUFHeader) -> AdapterInfo:
    """The facts of an adapter's header, or ModelLoadError when it cannot be applied here."""
    meta, path = header.metadata, header.path
    if meta.get("adapter.type") != "lora":
        raise ModelLoadError(
            f"{path} is a {meta.get('adapter.type')!r} adapter; only LoRA adapters are applied"
        )
    base_name, base_sha256 = meta.get(BASE_NAME_KEY), meta.get(BASE_SHA256_KEY)
    if not isinstance(base_name, str) or not isinstance(base_sha256, str):
        raise ModelLoadError(
            f"{path} is a LoRA adapter that does not say which base model file it was made "
            f"for (no {BASE_NAME_KEY} and {BASE_SHA256_KEY}), so it cannot be checked against "
            "one; write it from its PEFT folder with thinkjson-edge "
            "(`thinkjson-edge convert --base BASE --adapter FOLDER --lora-gguf --out FILE`), "
            "or merge it into its base (`thinkjson-edge convert ... --adapter FOLDER`)"
        )
    pairs = [t for t in header.tensors if t.name.endswith(".lora_b")]
    return AdapterInfo(
        path=path,
        base_name=base_name,
        base_sha256=base_sha256,
        alpha=float(meta.get("adapter.lora.alpha", 0.0)),
        rank=pairs[0].shape[0] if pairs else None,  # ggml order: lora_b is (r, out)
        targets=tuple(sorted({t.name.split(".")[-3] for t in pairs})),
        layers=len({t.name.split(".")[1] for t in pairs if t.name.startswith("blk.")}),
    )


def check_base(info: AdapterInfo, base: Path) -> None:
    """Raise ModelLoadError unless ``base`` is the very file ``info``'s adapter was made for."""
    actual = cached_sha256(base)
    if actual != info.base_sha256:
        raise ModelLoadError(
            f"adapter {info.path} was made for the base model {info.base_name!r} with sha256 "
            f"{info.base_sha256[:12]}…, but {info.base_name!r} is {base}, whose sha256 is "
            f"{actual[:12]}…: another file under that name. Install the file the adapter was "
            f"made from as {info.base_name!r}, or write the adapter again for this base"
        )


def cached_sha256(path: Path) -> str:
    """The sha256 of a file, computed once per (path, size, mtime) in this process."""
    return _cached("sha256", Path(path), sha256_file)


def _cached(kind: str, path: Path, compute: Callable[[Path], T]) -> T:
    try:
        stat = path.stat()
    except OSError:
        return compute(path)  # let the computation report the missing file its own way
    key = (kind, str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _CACHE:
        _CACHE[key] = compute(path)
    return _CACHE[key]
