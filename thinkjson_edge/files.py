"""Files written so that a reader never sees half of one: atomic writes, checks, and hashes.

Every file the package writes (results, reports, job manifests, models, bundles) goes
through ``write_atomically`` or ``atomic_target``: the data goes to a temporary file in the
same folder, is fsynced, renamed over the target, and the folder is fsynced, so the target is
always either the old file or the whole new one, even after a power cut.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from thinkjson_edge.errors import OutputWriteError

TEMPORARY_SUFFIX = ".tmp"
# What a killed write leaves behind: ".<name>.<8 random characters>.tmp" (mkstemp's form).
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
_HASH_CHUNK = 1 << 20


def check_writable(path: Path) -> None:
    """Raise OutputWriteError unless ``path`` can be created (its folder may be made)."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise OutputWriteError(f"{path}: cannot be written ({folder} is not a writable folder)")
    if path.is_dir():
        raise OutputWriteError(f"{path}: is a directory")


def write_atomically(path: Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` so a reader never sees a half-written file."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_target(path) as temporary, temporary.open("wb") as stream:
        stream.write(payload)


@contextlib.contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; fill it, and on success it replaces ``path``.

    For writers that need a path of their own (llama.cpp's quantizer, the GGUF writer). On
    any failure, or Ctrl-C, the temporary file is removed and ``path`` is untouched.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX
        )
        os.fchmod(handle, 0o666 & ~_umask())  # mkstemp makes 0600; a result is an ordinary file
        os.close(handle)
    except OSError as exc:
        raise OutputWriteError(f"{path}: cannot be written ({exc.strerror or exc})") from exc
    temporary = Path(name)
    try:
        yield temporary
        publish(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise OutputWriteError(f"{path}: cannot be written ({exc.strerror or exc})") from exc
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def publish(finished: Path, path: Path) -> None:
    """Rename a finished file (same folder) over ``path``, durably: file, rename and folder."""
    _fsync_file(finished)
    os.replace(finished, path)
    fsync_folder(path.parent)


def is_temporary(name: str) -> bool:
    """Whether ``name`` is a temporary file that an interrupted atomic write left behind."""
    return bool(_TEMPORARY.match(name))


def fsync_folder(folder: Path) -> None:
    """Sync a folder's entries, so a rename in it survives a power cut."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # a folder cannot be opened for syncing everywhere (Windows)
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes, read in 1 MiB pieces (models are gigabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while piece := stream.read(_HASH_CHUNK):
            digest.update(piece)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    """The sha256 of a text's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
