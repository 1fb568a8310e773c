"""A bundle's manifest, checked for shape, and its files, read only as listed regular files.

A bundle comes from elsewhere, so nothing in it is trusted: the manifest must be an object
of the bundle format whose every entry is a plain file name with a sha256 and a size, and a
file is read only when the manifest lists it, it is a regular file (never a symlink, a
FIFO or a device) and its bytes match the entry.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thinkjson_edge.errors import BundleError, IntegrityError
from thinkjson_edge.files import sha256_bytes

BUNDLE_MANIFEST = "manifest.json"
BUNDLE_FORMAT = "thinkjson-edge-bundle/1"
MAX_MANIFEST_BYTES = 1 << 20  # a manifest lists a handful of files
MAX_SIDE_FILE_BYTES = 4 << 20  # a model card or a license text
MAX_NAME_BYTES = 255  # a file name on every common file system
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class BundleEntry:
    """One listed file: a plain name, its sha256 and its size."""

    path: str
    sha256: str
    size: int


def read_manifest(bundle: Path) -> dict[str, Any]:
    """The bundle's manifest, checked for shape (not yet for checksums); BundleError if odd.

    ``files`` comes back as a list of ``BundleEntry``.
    """
    path = Path(bundle) / BUNDLE_MANIFEST
    try:
        raw = read_regular(path, MAX_MANIFEST_BYTES)
    except FileNotFoundError:
        raise BundleError(f"{bundle} is not a model bundle: it has no {BUNDLE_MANIFEST}") from None
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BundleError(f"{path} cannot be read as JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        kind = type(manifest).__name__
        raise BundleError(f"{path} is a JSON {kind}, not a {BUNDLE_FORMAT} manifest object")
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path} is not a {BUNDLE_FORMAT} manifest (its format is not that)")
    files = manifest.get("files")
    if not isinstance(files, list) or not files:
        raise BundleError(f"{path}: 'files' must be a non-empty list of file entries")
    entries = [_entry(path, item) for item in files]
    names = [entry.path for entry in entries]
    if len(set(names)) != len(names):
        raise BundleError(f"{path} lists a file twice")
    if sum(name.endswith(".gguf") for name in names) != 1:
        raise BundleError(f"{path} must list exactly one .gguf file")
    name = manifest.get("name")
    if not isinstance(name, str) or (problem := model_name_problem(name)):
        why = "not a string" if not isinstance(name, str) else problem
        raise BundleError(f"{path}: the model name {_shown(name)} is not usable ({why})")
    for key, kinds in (("source", (dict,)), ("quant", (str, type(None)))):
        if key in manifest and not isinstance(manifest[key], kinds):
            raise BundleError(f"{path}: {key!r} has the wrong type")
    return {**manifest, "files": entries}


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a file name in one folder, or None when it can."""
    if not name or name in (".", ".."):
        return "empty, '.' or '..'"
    if "/" in name or "\\" in name or "\x00" in name:
        return "a path separator or a NUL character"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "not valid Unicode"
    if size > MAX_NAME_BYTES:
        return f"{size} bytes long, more than {MAX_NAME_BYTES}"
    return None


def model_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name an installed model (its files are NAME.gguf and the like)."""
    if problem := name_problem(name + ".manifest.json"):  # the longest of its files' names
        return problem
    if name.startswith(".") or name.endswith(".gguf"):
        return "a hidden name, or one ending in .gguf"
    return None


def read_listed(bundle: Path, entry: BundleEntry, limit: int) -> bytes:
    """A listed file's bytes, checked against its entry (IntegrityError when they differ)."""
    data = read_regular(Path(bundle) / entry.path, limit)
    if len(data) != entry.size:
        raise IntegrityError(f"{entry.path} has {len(data)} bytes, not {entry.size}")
    if (digest := sha256_bytes(data)) != entry.sha256:
        raise IntegrityError(f"{entry.path} has sha256 {digest}, not {entry.sha256}")
    return data


def check_regular(path: Path) -> os.stat_result:
    """The file's status; BundleError unless it is a regular file itself (not a link to one)."""
    info = path.lstat()  # FileNotFoundError: the caller says "missing"
    if stat.S_ISLNK(info.st_mode):
        raise BundleError(f"{path} is a symbolic link; a bundle holds regular files only")
    if not stat.S_ISREG(info.st_mode):
        raise BundleError(f"{path} is not a regular file; a bundle holds regular files only")
    return info


def read_regular(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of a regular file, never through a link; BundleError past it."""
    check_regular(path)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise BundleError(f"{path} cannot be read ({exc.strerror or exc})") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped since the check
            raise BundleError(f"{path} is not a regular file; a bundle holds regular files only")
        chunks, total = [], 0
        while total <= limit and (chunk := os.read(fd, min(1 << 16, limit + 1 - total))):
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    if total > limit:
        raise BundleError(f"{path} is larger than {limit:,} bytes")
    return b"".join(chunks)


def _entry(manifest: Path, item: Any) -> BundleEntry:
    if not isinstance(item, dict):
        raise BundleError(f"{manifest}: a file entry is {_shown(item)}, not an object")
    path, sha256, size = item.get("path"), item.get("sha256"), item.get("size")
    if not isinstance(path, str) or (problem := name_problem(path)):
        why = "not a string" if not isinstance(path, str) else problem
        raise BundleError(f"{manifest}: the file name {_shown(path)} is not usable ({why})")
    if path == BUNDLE_MANIFEST:
        raise BundleError(f"{manifest} lists itself")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise BundleError(f"{manifest}: {path} has no sha256 (64 lowercase hex digits)")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BundleError(f"{manifest}: {path} has no size (a whole number of bytes)")
    return BundleEntry(path, sha256, size)


def _shown(value: Any, width: int = 60) -> str:
    """A short, one-line, printable form of a value from the manifest."""
    text = ascii(value)
    return text if len(text) <= width else text[: width - 3] + "..."
