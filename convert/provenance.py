"""Where a converted model came from, as ``thinkjson.*`` keys in its GGUF metadata.

Keys: ``thinkjson.base`` and ``thinkjson.base_sha256`` (the base model), ``thinkjson.adapter``
and ``thinkjson.adapter_sha256`` (the LoRA adapter merged in, if any),
``thinkjson.config_sha256`` (the training config file) and ``thinkjson.config_fingerprint``
(training's hash of its settings), ``thinkjson.created`` (UTC), ``thinkjson.tool``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from thinkjson_edge.files import sha256_file

ADAPTER_META = "meta.json"  # written by training beside every adapter


def sha256_weights(folder: Path) -> str:
    """One hash over a folder's weight files, in name order."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.safetensors")) or sorted(Path(folder).glob("*.bin")):
        digest.update(path.name.encode("utf-8"))
        digest.update(bytes.fromhex(sha256_file(path)))
    return digest.hexdigest()


def build_provenance(
    base: Path, adapter: Path | None = None, train_config: Path | None = None
) -> dict[str, str]:
    """The ``thinkjson.*`` keys for a model made from ``base`` (+ ``adapter``)."""
    from thinkjson_edge import __version__

    base = Path(base)
    keys = {
        "thinkjson.base": base.name,
        "thinkjson.base_sha256": sha256_file(base) if base.is_file() else sha256_weights(base),
        "thinkjson.created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "thinkjson.tool": f"thinkjson-edge {__version__}",
    }
    meta = _adapter_meta(adapter) if adapter else {}
    if adapter:
        keys["thinkjson.adapter"] = Path(adapter).name
        keys["thinkjson.adapter_sha256"] = sha256_weights(Path(adapter))
    if train_config is None and isinstance(meta.get("config"), str):
        candidate = Path(meta["config"])
        train_config = candidate if candidate.is_file() else None
    if train_config is not None:
        keys["thinkjson.config_sha256"] = sha256_file(train_config)
    if isinstance(meta.get("config_fingerprint"), str):
        keys["thinkjson.config_fingerprint"] = meta["config_fingerprint"]
    return keys


def _adapter_meta(adapter: Path) -> dict[str, Any]:
    path = Path(adapter) / ADAPTER_META
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}
