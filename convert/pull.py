"""``models pull``: the one network access of the product.

Download a known model from the Hugging Face Hub at a pinned revision, check its sha256,
quantize and verify it (``convert``), and install it in the store (``models.store``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thinkjson_edge.errors import IntegrityError, ModelExistsError, PullError
from thinkjson_edge.files import sha256_file
from thinkjson_edge.models.store import (
    CARD_SUFFIX,
    LICENSE_SUFFIX,
    InstalledModel,
    install_file,
    install_side_file,
    store_dir,
)

STORE_INSTALL = "pip install 'thinkjson-edge[store]'"


@dataclass(frozen=True)
class KnownModel:
    """A model ``pull`` knows by name: where it lives on the Hub and what to do with it."""

    name: str
    repo: str
    revision: str  # a commit sha pins the download; a branch name is resolved and recorded
    description: str
    filename: str | None = None  # None: the repository's one .gguf file
    sha256: str | None = None  # of that file; None: checked against the Hub's LFS sha256
    quant: str | None = "q4_k_m"  # quantize after download (None: install as downloaded)


REGISTRY: dict[str, KnownModel] = {
    model.name: model
    for model in (
        KnownModel(
            name="thinkjson-1.5b",
            repo="MasterControlAIML/"
            "DeepSeek-R1-Qwen2.5-1.5b-SFT-R1-JSON-Unstructured-To-Structured-GGUF",
            # Not yet pinned to a commit: the Hub could not be reached when this entry was
            # written. `pull` records the commit it resolved in the manifest.
            revision="main",
            description="ThinkJSON (Qwen2.5-1.5B, GRPO + SFT), published as one F16 GGUF; "
            "quantized here to Q4_K_M after download",
        ),
    )
}








def pull(
    name: str,
    *,
    revision: str | None = None,
    endpoint: str | None = None,
    registry: dict[str, KnownModel] | None = None,
    force: bool = False,
    verify: bool = True,
    say: Callable[[str], None] = lambda _line: None,
) -> InstalledModel:
    """Download a known model from the Hub, check its sha256, quantize, verify, install.

    ``endpoint`` (or ``HF_ENDPOINT``) points at another Hub-compatible server.
    """
    known = (registry or REGISTRY).get(name)
    if known is None:
        raise PullError(f"unknown model {name!r}; known: {', '.join(sorted(registry or REGISTRY))}")
    if (store_dir() / f"{name}.gguf").exists() and not force:
        raise ModelExistsError(f"model {name!r} is already installed; pass --force to replace it")
    hub = _hub()
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None
    api = hub.HfApi(endpoint=endpoint)
    wanted = revision or known.revision
    say(f"asking the Hub for {known.repo} at {wanted} ...")
    try:
        info = api.model_info(known.repo, revision=wanted, files_metadata=True)
    except Exception as exc:  # the Hub client raises many kinds; all mean "cannot pull"
        raise PullError(f"cannot reach {known.repo} on the Hub: {exc}") from exc
    commit = info.sha or wanted
    files = {s.rfilename: s for s in info.siblings or []}
    filename = known.filename or _single_gguf(known.repo, files)
    if filename not in files:
        raise PullError(f"{known.repo}@{commit} has no file {filename}")
    lfs = getattr(files[filename], "lfs", None)
    expected = known.sha256 or (getattr(lfs, "sha256", None) if lfs else None)
    store = store_dir()
    store.mkdir(parents=True, exist_ok=True)
    work = store / f".pull-{name}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        say(f"downloading {filename} ({_size(files[filename])}) at commit {commit} ...")
        local = _download(hub, known.repo, filename, commit, endpoint, work)
        digest = sha256_file(local)
        if expected and digest != expected:
            raise IntegrityError(
                f"{filename} from {known.repo}@{commit} has sha256 {digest}, expected "
                f"{expected}; nothing was installed"
            )
        say(f"sha256 {digest} {'matches' if expected else '(no published checksum to compare)'}")
        extras = {n: _download(hub, known.repo, n, commit, endpoint, work) for n in files
                  if n in ("README.md", "LICENSE", "LICENSE.md", "LICENSE.txt")}  # fmt: skip
        installed_file = local
        record: dict[str, Any] = {
            "source": {"repo": known.repo, "revision": commit, "file": filename,
                       "sha256": digest, "endpoint": endpoint or "https://huggingface.co"},
            "license": getattr(info.card_data, "license", None),
        }  # fmt: skip
        if known.quant and not _unquantized(local):
            say(f"{filename} is already quantized; installing it as it is")
        elif known.quant:
            from thinkjson_edge.convert.pipeline import convert_model

            target = work / f"{name}.gguf"
            outcome = convert_model(local, target, quant=known.quant, verify=verify, say=say)
            installed_file = target
            record["quant"] = known.quant
            if outcome.report is not None:
                record["verification"] = outcome.report.to_dict()
        model = install_file(installed_file, name, record, move=True, force=force)
        for extra_name, extra_path in extras.items():
            suffix = CARD_SUFFIX if extra_name == "README.md" else LICENSE_SUFFIX
            install_side_file(name, suffix, extra_path.read_bytes())  # recorded: exported
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if len(commit) != 40:
        say(f"note: revision {wanted!r} is not a commit; it resolved to {commit}")
    return model


def _unquantized(path: Path) -> bool:
    from thinkjson_edge.models.gguf import read_header

    return read_header(path).file_type in ("f32", "f16", "bf16")


def _hub() -> Any:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise PullError("HF_HUB_OFFLINE is set: `models pull` needs the network; unset it")
    try:
        import huggingface_hub
        from huggingface_hub import constants
    except ImportError as exc:
        raise PullError(f"`models pull` needs huggingface-hub: {STORE_INSTALL}") from exc
    # The client reads HF_HUB_OFFLINE once, at import; follow the environment as it is now.
    constants.HF_HUB_OFFLINE = False
    return huggingface_hub


def _download(hub: Any, repo: str, filename: str, commit: str, endpoint: str | None,
              work: Path) -> Path:  # fmt: skip
    try:
        return Path(
            hub.hf_hub_download(
                repo, filename, revision=commit, endpoint=endpoint, local_dir=work / "files"
            )
        )
    except Exception as exc:  # network, HTTP and Hub errors alike
        raise PullError(f"downloading {filename} from {repo}@{commit} failed: {exc}") from exc


def _single_gguf(repo: str, files: dict[str, Any]) -> str:
    ggufs = [name for name in files if name.endswith(".gguf")]
    if len(ggufs) != 1:
        raise PullError(f"{repo} has {len(ggufs)} .gguf files; the registry must name one")
    return ggufs[0]


def _size(sibling: Any) -> str:
    size = getattr(sibling, "size", None)
    return f"{size / 1e6:,.0f} MB" if size else "size unknown"
