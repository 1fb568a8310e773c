"""The user's model store: installed GGUF files, each with a sha256 manifest.

Layout of ``models_dir()``: ``NAME.gguf`` (what ``--model NAME`` runs),
``NAME.manifest.json`` (sha256, size, where it came from), and optionally
``NAME.card.md`` and ``NAME.license.txt``.

A *bundle* carries one model to an offline site: a folder with ``NAME.gguf``,
``README.md`` (model card), ``LICENSE`` and ``manifest.json`` listing every file's
sha256 and size. ``import_bundle`` checks every checksum before installing anything.

``pull`` is the only function that talks to the network (the Hugging Face Hub, through
``huggingface-hub``); every other one works offline.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from thinkjson_edge.errors import InputError, ModelLoadError, OutputWriteError, ThinkJsonError
from thinkjson_edge.models import DEFAULT_MODEL, embedded_model_path, models_dir

MANIFEST_SUFFIX = ".manifest.json"
CARD_SUFFIX = ".card.md"
LICENSE_SUFFIX = ".license.txt"
BUNDLE_MANIFEST = "manifest.json"
BUNDLE_FORMAT = "thinkjson-edge-bundle/1"
EXIT_INTEGRITY = 8
EXIT_PULL = 9
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


class ModelNotInstalledError(ModelLoadError):
    """The named model is not in the store."""


class IntegrityError(ThinkJsonError):
    """A file's checksum or size is not what its manifest says."""

    exit_code = EXIT_INTEGRITY


class BundleError(InputError):
    """A bundle folder is missing, incomplete or malformed."""


class ModelExistsError(OutputWriteError):
    """Installing would replace a model that is already installed."""


class PullError(ThinkJsonError):
    """The Hub could not be reached, or does not have what the registry names."""

    exit_code = EXIT_PULL


@dataclass
class InstalledModel:
    name: str
    path: Path
    size: int
    manifest: dict[str, Any] = field(default_factory=dict)


@dataclass
class IntegrityReport:
    name: str
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


# -- the store ---------------------------------------------------------------


def store_dir() -> Path:
    return models_dir()


def list_models() -> list[InstalledModel]:
    """Installed models in name order (the embedded default is not listed here)."""
    folder = store_dir()
    if not folder.is_dir():
        return []
    return [_installed(path) for path in sorted(folder.glob("*.gguf"))]


def installed(name: str) -> InstalledModel:
    """The installed model ``name``, or an error saying how to get it."""
    path = store_dir() / f"{name}.gguf"
    if not path.is_file():
        raise ModelNotInstalledError(
            f"model {name!r} is not installed in {store_dir()}. Nothing is downloaded at run "
            f"time: on a connected machine run `thinkjson-edge models pull {name}` (or "
            "`models export` there), then `thinkjson-edge models import BUNDLE` here"
        )
    return _installed(path)


def resolve_model_file(spec: str) -> Path:
    """A GGUF path for a model name, the default model, or a path."""
    if spec in (DEFAULT_MODEL, "default"):
        return embedded_model_path()
    if (store_dir() / f"{spec}.gguf").is_file():
        return store_dir() / f"{spec}.gguf"
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    if spec.endswith(".gguf") or "/" in spec or os.sep in spec:
        raise ModelLoadError(f"model file {spec} does not exist")
    return installed(spec).path  # raises with the how-to message


def install_file(
    source: Path, name: str, record: dict[str, Any], *, move: bool = False, force: bool = False
) -> InstalledModel:
    """Copy (or move) a GGUF into the store as ``name`` and write its manifest."""
    _check_name(name)
    folder = store_dir()
    target = folder / f"{name}.gguf"
    if target.exists() and not force:
        raise ModelExistsError(
            f"model {name!r} is already installed ({target}); remove it first or pass --force"
        )
    partial = folder / f".{name}.gguf.partial"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if move:
            shutil.move(str(source), partial)
        else:
            shutil.copyfile(source, partial)
        digest = sha256_file(partial)
        expected = record.get("sha256")
        if expected and digest != expected:
            raise IntegrityError(f"{source} changed while it was copied into the store")
        manifest = {
            "name": name,
            "file": target.name,
            "sha256": digest,
            "size": partial.stat().st_size,
            "installed": _now(),
            **{k: v for k, v in record.items() if k not in ("sha256", "size")},
        }
        if not manifest.get("quant"):
            from thinkjson_edge.convert.gguf_info import read_header

            manifest["quant"] = read_header(partial).file_type
        # The manifest first: a model file never sits in the store without its checksum.
        _write_json(folder / f"{name}{MANIFEST_SUFFIX}", manifest)
        os.replace(partial, target)
    except OSError as exc:
        raise OutputWriteError(f"cannot install {name!r} into {folder}: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return _installed(target)


def remove(name: str) -> list[Path]:
    """Delete an installed model and its side files; return what was deleted."""
    model = installed(name)
    removed = []
    for path in (model.path, *_side_files(name)):
        if path.exists():
            path.unlink()
            removed.append(path)
    return removed


def verify_integrity(name: str) -> IntegrityReport:
    """Check an installed model against its manifest (sha256, size) and its GGUF structure."""
    from thinkjson_edge.convert.errors import ConversionError
    from thinkjson_edge.convert.gguf_info import read_header

    model = installed(name)
    report = IntegrityReport(name)
    expected = model.manifest.get("sha256")
    if not expected:
        report.problems.append(f"{name} has no manifest with a sha256; reinstall it")
    else:
        digest = sha256_file(model.path)
        report.checked.append(f"sha256 {digest}")
        if digest != expected:
            report.problems.append(f"sha256 is {digest}, the manifest says {expected}")
    try:
        header = read_header(model.path)
        report.checked.append(f"GGUF complete: {len(header.tensors)} tensors")
    except ConversionError as exc:
        report.problems.append(str(exc))
    return report


def model_info(spec: str) -> dict[str, Any]:
    """What a model file is: architecture, quantization, sizes, tokenizer, provenance."""
    from thinkjson_edge.convert.gguf_info import read_header
    from thinkjson_edge.convert.provenance import read_provenance

    path = resolve_model_file(spec)
    header = read_header(path)
    meta = header.metadata
    arch = header.architecture
    params = sum(_count(t.shape) for t in header.tensors)
    name = spec if (store_dir() / f"{spec}.gguf").is_file() else None
    return {
        "path": str(path),
        "size": header.file_size,
        "architecture": arch,
        "quant": header.file_type,
        "name": meta.get("general.name"),
        "parameters": params,
        "tensors": len(header.tensors),
        "context_length": meta.get(f"{arch}.context_length"),
        "layers": meta.get(f"{arch}.block_count"),
        "vocabulary": header.array_lengths.get("tokenizer.ggml.tokens"),
        "tokenizer": f"{meta.get('tokenizer.ggml.model')} / {meta.get('tokenizer.ggml.pre')}",
        "chat_template": "tokenizer.chat_template" in meta,
        "license": meta.get("general.license"),
        "provenance": read_provenance(meta),
        "manifest": installed(name).manifest if name else {},
    }


def _count(shape: tuple[int, ...]) -> int:
    total = 1
    for dim in shape:
        total *= dim
    return total


# -- pull (the only network access) -------------------------------------------


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
            shutil.copyfile(extra_path, store / f"{name}{suffix}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if len(commit) != 40:
        say(f"note: revision {wanted!r} is not a commit; it resolved to {commit}")
    return model


def _unquantized(path: Path) -> bool:
    from thinkjson_edge.convert.gguf_info import read_header

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


# -- bundles -----------------------------------------------------------------


def export_bundle(spec: str, dest: Path, *, name: str | None = None) -> Path:
    """Write a bundle for the model ``spec`` (name or path) into the folder ``dest``."""
    from thinkjson_edge.convert.gguf_info import read_header

    source = resolve_model_file(spec)
    name = name or (DEFAULT_MODEL if spec in (DEFAULT_MODEL, "default") else source.stem)
    _check_name(name)
    manifest = installed(name).manifest if (store_dir() / f"{name}.gguf").is_file() else {}
    header = read_header(source)
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        if any(dest.iterdir()):
            raise OutputWriteError(f"bundle folder {dest} is not empty")
        shutil.copyfile(source, dest / f"{name}.gguf")
        license_text = _side_text(name, LICENSE_SUFFIX) or _license_note(header.metadata)
        (dest / "LICENSE").write_text(license_text, encoding="utf-8")
        card = _side_text(name, CARD_SUFFIX) or model_card(name, header.metadata, manifest)
        (dest / "README.md").write_text(card, encoding="utf-8")
        files = [_file_entry(dest, f) for f in (f"{name}.gguf", "LICENSE", "README.md")]
        _write_json(
            dest / BUNDLE_MANIFEST,
            {
                "format": BUNDLE_FORMAT,
                "name": name,
                "created": _now(),
                "architecture": header.architecture,
                "quant": header.file_type,
                "source": manifest.get("source", {"file": str(source)}),
                "files": files,
            },
        )
    except OSError as exc:
        raise OutputWriteError(f"cannot write the bundle to {dest}: {exc}") from exc
    return dest


def import_bundle(bundle: Path, *, name: str | None = None, force: bool = False) -> InstalledModel:
    """Check every file of ``bundle`` against its manifest, then install the model.

    Nothing is installed unless every checksum and size matches.
    """
    from thinkjson_edge.convert.errors import ConversionError
    from thinkjson_edge.convert.gguf_info import read_header

    bundle = Path(bundle)
    manifest = read_bundle_manifest(bundle)
    problems = []
    for entry in manifest["files"]:
        path = bundle / entry["path"]
        if not path.is_file():
            problems.append(f"{entry['path']} is missing")
        elif path.stat().st_size != entry["size"]:
            problems.append(f"{entry['path']} has {path.stat().st_size} bytes, not {entry['size']}")
        elif (digest := sha256_file(path)) != entry["sha256"]:
            problems.append(f"{entry['path']} has sha256 {digest}, not {entry['sha256']}")
    if problems:
        raise IntegrityError(
            f"bundle {bundle} does not match its manifest, nothing was installed: "
            + "; ".join(problems)
        )
    gguf_entry = next(e for e in manifest["files"] if e["path"].endswith(".gguf"))
    gguf_path = bundle / gguf_entry["path"]
    try:
        read_header(gguf_path)
    except ConversionError as exc:
        raise IntegrityError(f"bundle {bundle}: {exc}") from exc
    name = name or manifest["name"]
    record = {
        "sha256": gguf_entry["sha256"],
        "source": {**manifest.get("source", {}), "bundle": str(bundle.resolve())},
        "quant": manifest.get("quant"),
    }
    model = install_file(gguf_path, name, record, force=force)
    for file_name, suffix in (("README.md", CARD_SUFFIX), ("LICENSE", LICENSE_SUFFIX)):
        if (bundle / file_name).is_file():
            shutil.copyfile(bundle / file_name, store_dir() / f"{name}{suffix}")
    return model


def read_bundle_manifest(bundle: Path) -> dict[str, Any]:
    """The bundle's manifest, checked for shape (not yet for checksums)."""
    path = Path(bundle) / BUNDLE_MANIFEST
    if not path.is_file():
        raise BundleError(f"{bundle} is not a model bundle: it has no {BUNDLE_MANIFEST}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BundleError(f"{path} cannot be read: {exc}") from exc
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if manifest.get("format") != BUNDLE_FORMAT or not isinstance(files, list):
        raise BundleError(f"{path} is not a {BUNDLE_FORMAT} manifest")
    for entry in files:
        ok = isinstance(entry, dict) and isinstance(entry.get("path"), str)
        ok = ok and isinstance(entry.get("sha256"), str) and isinstance(entry.get("size"), int)
        if not ok or Path(entry["path"]).name != entry["path"]:  # no folders, no "../"
            raise BundleError(f"{path}: bad file entry {entry!r}")
    if sum(e["path"].endswith(".gguf") for e in files) != 1:
        raise BundleError(f"{path} must list exactly one .gguf file")
    if not isinstance(manifest.get("name"), str):
        raise BundleError(f"{path} has no model name")
    return manifest


def model_card(name: str, metadata: dict[str, Any], manifest: dict[str, Any]) -> str:
    """A short model card for a bundle that brings none of its own."""
    from thinkjson_edge.convert.gguf_info import FILE_TYPES
    from thinkjson_edge.convert.provenance import read_provenance

    arch = metadata.get("general.architecture", "unknown")
    lines = [
        f"# {name}",
        "",
        f"- architecture: {arch}",
        f"- quantization: {FILE_TYPES.get(metadata.get('general.file_type'), 'unknown')}",
        f"- context length: {metadata.get(f'{arch}.context_length', 'unknown')}",
        f"- license: {metadata.get('general.license', 'see LICENSE')}",
    ]
    if source := manifest.get("source"):
        lines.append(f"- source: {json.dumps(source)}")
    lines += [f"- {key}: {value}" for key, value in read_provenance(metadata).items()]
    lines += ["", "Install at the site with `thinkjson-edge models import THIS_FOLDER`.", ""]
    return "\n".join(lines)


# -- helpers -----------------------------------------------------------------


def sha256_file(path: Path) -> str:
    from thinkjson_edge.convert.provenance import sha256_file as digest

    return digest(path)


def _installed(path: Path) -> InstalledModel:
    manifest_path = path.with_name(path.stem + MANIFEST_SUFFIX)
    manifest: dict[str, Any] = {}
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            manifest = {"error": f"{manifest_path.name} cannot be read"}
    return InstalledModel(path.stem, path, path.stat().st_size, manifest)


def _side_files(name: str) -> list[Path]:
    return [store_dir() / f"{name}{s}" for s in (MANIFEST_SUFFIX, CARD_SUFFIX, LICENSE_SUFFIX)]


def _side_text(name: str, suffix: str) -> str | None:
    path = store_dir() / f"{name}{suffix}"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _license_note(metadata: dict[str, Any]) -> str:
    licence = metadata.get("general.license")
    if licence:
        return f"This model is distributed under the license: {licence}\n"
    return "The model file names no license; check its source before distributing it.\n"


def _file_entry(folder: Path, name: str) -> dict[str, Any]:
    path = folder / name
    return {"path": name, "sha256": sha256_file(path), "size": path.stat().st_size}


def _check_name(name: str) -> None:
    if not name or Path(name).name != name or name.startswith(".") or name.endswith(".gguf"):
        raise ModelLoadError(f"{name!r} is not a usable model name (a plain name, no .gguf)")


def _write_json(path: Path, value: Any) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
