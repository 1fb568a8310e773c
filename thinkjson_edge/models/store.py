"""The user's model store: installed GGUF files, each with a sha256 manifest.

Layout of ``models_dir()``: ``NAME.gguf`` (what ``--model NAME`` runs),
``NAME.manifest.json`` (sha256, size, where it came from), and optionally
``NAME.card.md`` and ``NAME.license.txt``.

A LoRA adapter GGUF (``models.adapter``) is installed, listed, carried and verified like a
model; it runs on the base model it names, which must be installed too (or be the default).

A *bundle* carries one model to an offline site: a folder with ``NAME.gguf``,
``README.md`` (model card), ``LICENSE`` and ``manifest.json`` listing every file's
sha256 and size. ``import_bundle`` checks every checksum before installing anything.

Everything here works offline. Downloading from the Hugging Face Hub, the one network
access, is ``convert/pull.py``: it quantizes what it downloads, then installs it here.
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

from thinkjson_edge.errors import (
    BundleError,
    IntegrityError,
    ModelExistsError,
    ModelLoadError,
    ModelNotInstalledError,
    OutputWriteError,
)
from thinkjson_edge.files import atomic_target, sha256_bytes, sha256_file, write_atomically
from thinkjson_edge.models.adapter import (
    BASE_NAME_KEY,
    BASE_SHA256_KEY,
    adapter_info,
    cached_header,
    is_adapter,
    read_adapter,
)
from thinkjson_edge.models.bundle_files import (
    BUNDLE_FORMAT,
    BUNDLE_MANIFEST,
    MAX_SIDE_FILE_BYTES,
    BundleEntry,
    check_regular,
    model_name_problem,
    read_listed,
    read_manifest,
    read_regular,
)
from thinkjson_edge.models.choice import (
    BASE_MODEL,
    DEFAULT_MODEL,
    adapter_base,
    default_adapter_path,
    embedded_model_path,
    models_dir,
)

MANIFEST_SUFFIX = ".manifest.json"
CARD_SUFFIX = ".card.md"
LICENSE_SUFFIX = ".license.txt"
# A bundle's side files and where the store keeps them; the store's manifest records each
# one's sha256 under "extras", and only a file that still matches it is exported.
SIDE_FILES = {"README.md": CARD_SUFFIX, "LICENSE": LICENSE_SUFFIX}
EXTRAS_KEY = "extras"


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
    """A GGUF path for a model name, the default model (its adapter), the base, or a path."""
    if spec in (DEFAULT_MODEL, "default"):
        return default_adapter_path()
    if spec == BASE_MODEL:
        return embedded_model_path()
    if (store_dir() / f"{spec}.gguf").is_file():
        return store_dir() / f"{spec}.gguf"
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    if spec.endswith(".gguf") or "/" in spec or os.sep in spec:
        raise ModelLoadError(f"model file {spec} does not exist")
    return installed(spec).path  # raises with the how-to message


def resolve_source(spec: str) -> Path:
    """A path as given when it exists, else an installed model name or the default model."""
    path = Path(spec).expanduser()
    if path.exists():
        return path
    return resolve_model_file(spec)


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
    try:
        with atomic_target(target) as partial:
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
                from thinkjson_edge.models.gguf import read_header

                manifest["quant"] = read_header(partial).file_type
            # The manifest first: a model file never sits in the store without its checksum.
            _write_json(folder / f"{name}{MANIFEST_SUFFIX}", manifest)
    except OSError as exc:
        raise OutputWriteError(f"cannot install {name!r} into {folder}: {exc}") from exc
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
    from thinkjson_edge.errors import ConversionError
    from thinkjson_edge.models.gguf import read_header

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


def adapter_summary(path: Path) -> dict[str, Any] | None:
    """For a LoRA adapter file: its base, rank, alpha and targets; None for a model.

    An adapter that cannot be run here (no base named) gets ``base`` None and a ``problem``.
    """
    header = cached_header(path)
    if header is None or not is_adapter(header.metadata):
        return None
    try:
        info = adapter_info(header)
    except ModelLoadError as exc:
        return {"base": None, "base_sha256": None, "problem": str(exc)}
    return {
        "base": info.base_name,
        "base_sha256": info.base_sha256,
        "rank": info.rank,
        "alpha": info.alpha,
        "targets": list(info.targets),
        "layers": info.layers,
    }


def model_info(spec: str) -> dict[str, Any]:
    """What a model file is: architecture, quantization, sizes, tokenizer, provenance.

    For a LoRA adapter: its rank, alpha and targets, its base, and whether that base is found.
    """
    from thinkjson_edge.models.gguf import read_header, read_provenance

    path = resolve_model_file(spec)
    header = read_header(path)
    meta = header.metadata
    arch = header.architecture
    params = sum(_count(t.shape) for t in header.tensors)
    name = spec if (store_dir() / f"{spec}.gguf").is_file() else None
    if is_adapter(meta):
        return {
            "path": str(path),
            "size": header.file_size,
            "type": "LoRA adapter",
            "architecture": arch,
            "quant": header.file_type,
            "name": meta.get("general.name"),
            "parameters": params,
            "tensors": len(header.tensors),
            **_adapter_details(path),
            "license": meta.get("general.license"),
            "provenance": read_provenance(meta),
            "manifest": installed(name).manifest if name else {},
        }
    return {
        "path": str(path),
        "size": header.file_size,
        "type": "model",
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


def _adapter_details(path: Path) -> dict[str, Any]:
    """The adapter's summary, and whether its base is found and is the file it was made for."""
    try:
        info = read_adapter(path)
        check = f"ok: {adapter_base(info)} is the file it was made for" if info else "-"
    except ModelLoadError as exc:
        check = f"not usable: {exc}"
    summary = adapter_summary(path) or {}
    summary.pop("problem", None)  # base_check says it
    return {**summary, "base_check": check}


def _count(shape: tuple[int, ...]) -> int:
    total = 1
    for dim in shape:
        total *= dim
    return total


# -- bundles -----------------------------------------------------------------


def export_bundle(spec: str, dest: Path, *, name: str | None = None) -> Path:
    """Write a bundle for the model ``spec`` (name or path) into the folder ``dest``.

    An installed model ships only what the store verified: its file must still match the
    sha256 of its manifest, and its card and license theirs (else new ones are written).
    """
    from thinkjson_edge.models.gguf import read_header

    source = resolve_model_file(spec)
    embedded = {"default": DEFAULT_MODEL, DEFAULT_MODEL: DEFAULT_MODEL, BASE_MODEL: BASE_MODEL}
    name = name or embedded.get(spec, source.stem)
    _check_name(name)
    stored = store_dir() / f"{name}.gguf"
    manifest = installed(name).manifest if stored.is_file() else {}
    header = read_header(source)
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        if any(dest.iterdir()):
            raise OutputWriteError(f"bundle folder {dest} is not empty")
        shutil.copyfile(source, dest / f"{name}.gguf")
        model_entry = _file_entry(dest, f"{name}.gguf")
        expected = manifest.get("sha256")
        if source == stored and expected and model_entry["sha256"] != expected:
            (dest / f"{name}.gguf").unlink()
            raise IntegrityError(
                f"{source} has sha256 {model_entry['sha256']}, its manifest says {expected}; "
                f"nothing was exported (check it with `thinkjson-edge models verify {name}`)"
            )
        license_text = _side_text(name, LICENSE_SUFFIX, manifest) or _license_note(header.metadata)
        (dest / "LICENSE").write_text(license_text, encoding="utf-8")
        card = _side_text(name, CARD_SUFFIX, manifest) or model_card(
            name, header.metadata, manifest
        )
        (dest / "README.md").write_text(card, encoding="utf-8")
        files = [model_entry, *(_file_entry(dest, f) for f in ("LICENSE", "README.md"))]
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


def import_bundle(
    bundle: Path,
    *,
    name: str | None = None,
    force: bool = False,
    warn: Callable[[str], None] | None = None,
) -> InstalledModel:
    """Check every file of ``bundle`` against its manifest, then install the model.

    Nothing is installed unless every listed file is a regular file whose checksum and size
    match. Only listed files are installed (the model, and its README.md and LICENSE as the
    store's card and license); ``warn`` hears of any other file in the folder.
    """
    from thinkjson_edge.errors import ConversionError
    from thinkjson_edge.models.gguf import read_header

    bundle = Path(bundle)
    manifest = read_bundle_manifest(bundle)
    entries: list[BundleEntry] = manifest["files"]
    side_files, problems = _check_bundle_files(bundle, entries)
    if problems:
        raise IntegrityError(
            f"bundle {bundle} does not match its manifest, nothing was installed: "
            + "; ".join(problems)
        )
    if warn is not None:
        for unlisted in _unlisted(bundle, entries):
            warn(f"{bundle / unlisted} is not listed in the bundle's manifest; not installed")
    gguf_entry = next(e for e in entries if e.path.endswith(".gguf"))
    gguf_path = bundle / gguf_entry.path
    try:
        read_header(gguf_path)
    except ConversionError as exc:
        raise IntegrityError(f"bundle {bundle}: {exc}") from exc
    name = name or manifest["name"]
    record = {
        "sha256": gguf_entry.sha256,
        "source": {**manifest.get("source", {}), "bundle": str(bundle.resolve())},
        "quant": manifest.get("quant"),
    }
    install_file(gguf_path, name, record, force=force)
    for file_name, suffix in SIDE_FILES.items():
        if file_name in side_files:
            install_side_file(name, suffix, side_files[file_name])
        else:  # a card or license of a model installed before under this name is not its own
            _remove_side_file(name, suffix)
    return installed(name)


def _check_bundle_files(
    bundle: Path, entries: list[BundleEntry]
) -> tuple[dict[str, bytes], list[str]]:
    """Every listed file checked (BundleError for a link or a non-regular file): the side
    files' verified bytes, and what does not match the manifest."""
    side_files: dict[str, bytes] = {}
    problems: list[str] = []
    for entry in entries:
        path = bundle / entry.path
        try:
            if entry.path in SIDE_FILES:
                side_files[entry.path] = read_listed(bundle, entry, MAX_SIDE_FILE_BYTES)
                continue
            size = check_regular(path).st_size
        except FileNotFoundError:
            problems.append(f"{entry.path} is missing")
            continue
        except IntegrityError as exc:
            problems.append(str(exc))
            continue
        if size != entry.size:
            problems.append(f"{entry.path} has {size} bytes, not {entry.size}")
        elif (digest := sha256_file(path)) != entry.sha256:
            problems.append(f"{entry.path} has sha256 {digest}, not {entry.sha256}")
    return side_files, problems


def _unlisted(bundle: Path, entries: list[BundleEntry]) -> list[str]:
    listed = {entry.path for entry in entries} | {BUNDLE_MANIFEST}
    try:
        return sorted(child.name for child in bundle.iterdir() if child.name not in listed)
    except OSError:
        return []


def install_side_file(name: str, suffix: str, data: bytes) -> None:
    """Install a model's card or license and record its sha256 in the model's manifest."""
    folder = store_dir()
    manifest_path = folder / f"{name}{MANIFEST_SUFFIX}"
    manifest = installed(name).manifest
    write_atomically(folder / f"{name}{suffix}", data)
    extras = dict(manifest.get(EXTRAS_KEY) or {})
    extras[suffix] = {"sha256": sha256_bytes(data), "size": len(data)}
    _write_json(manifest_path, {**manifest, EXTRAS_KEY: extras})


def _remove_side_file(name: str, suffix: str) -> None:
    (store_dir() / f"{name}{suffix}").unlink(missing_ok=True)
    manifest = installed(name).manifest
    extras = dict(manifest.get(EXTRAS_KEY) or {})
    if extras.pop(suffix, None) is not None:
        _write_json(store_dir() / f"{name}{MANIFEST_SUFFIX}", {**manifest, EXTRAS_KEY: extras})


def read_bundle_manifest(bundle: Path) -> dict[str, Any]:
    """The bundle's manifest, checked for shape (not yet for checksums); see bundle_files."""
    return read_manifest(bundle)


def model_card(name: str, metadata: dict[str, Any], manifest: dict[str, Any]) -> str:
    """A short model card for a bundle that brings none of its own."""
    from thinkjson_edge.models.gguf import FILE_TYPES, read_provenance

    arch = metadata.get("general.architecture", "unknown")
    adapter = is_adapter(metadata)
    lines = [f"# {name}", ""]
    if adapter:
        base = metadata.get(BASE_NAME_KEY, "unknown")
        lines.append(
            f"- type: LoRA adapter for the base model {base} (sha256 "
            f"{metadata.get(BASE_SHA256_KEY, 'unknown')}); install that exact file as {base} "
            "too, the adapter runs on it"
        )
    lines += [
        f"- architecture: {arch}",
        f"- quantization: {FILE_TYPES.get(metadata.get('general.file_type'), 'unknown')}",
    ]
    if not adapter:  # an adapter has no context length of its own
        lines.append(f"- context length: {metadata.get(f'{arch}.context_length', 'unknown')}")
    lines.append(f"- license: {metadata.get('general.license', 'see LICENSE')}")
    if source := manifest.get("source"):
        lines.append(f"- source: {json.dumps(source)}")
    lines += [f"- {key}: {value}" for key, value in read_provenance(metadata).items()]
    lines += ["", "Install at the site with `thinkjson-edge models import THIS_FOLDER`.", ""]
    return "\n".join(lines)


# -- helpers -----------------------------------------------------------------


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


def _side_text(name: str, suffix: str, manifest: dict[str, Any]) -> str | None:
    """The installed card or license, only when it is the file the store verified."""
    record = (manifest.get(EXTRAS_KEY) or {}).get(suffix)
    if not isinstance(record, dict):
        return None  # installed without a checksum: not shipped, a new one is written
    path = store_dir() / f"{name}{suffix}"
    try:
        data = read_regular(path, MAX_SIDE_FILE_BYTES)
    except FileNotFoundError:
        return None
    except BundleError as exc:
        raise IntegrityError(f"{exc}; reinstall {name!r}") from exc
    if sha256_bytes(data) != record.get("sha256"):
        raise IntegrityError(
            f"{path} is not the file that was installed (its sha256 differs); reinstall {name!r}"
        )
    return data.decode("utf-8", errors="replace")


def _license_note(metadata: dict[str, Any]) -> str:
    licence = metadata.get("general.license")
    if licence:
        return f"This model is distributed under the license: {licence}\n"
    return "The model file names no license; check its source before distributing it.\n"


def _file_entry(folder: Path, name: str) -> dict[str, Any]:
    path = folder / name
    return {"path": name, "sha256": sha256_file(path), "size": path.stat().st_size}


def _check_name(name: str) -> None:
    if model_name_problem(name):
        raise ModelLoadError(f"{name!r} is not a usable model name (a plain name, no .gguf)")


def _write_json(path: Path, value: Any) -> None:
    write_atomically(path, json.dumps(value, indent=2) + "\n")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
