"""Files written so that a reader never sees half of one: atomic writes, checks, and hashes.

Every file the package writes (results, reports, job manifests, models, bundles) goes
through ``write_atomically`` or ``atomic_target``: the data goes to a temporary file in the
same folder, is fsynced, renamed over the target, and the folder is fsynced, so the target is
always either the old file or the whole new one, even after a power cut.

Every input file is read through ``read_bounded`` (or ``open_regular``): only regular files
are opened, without ever blocking on a named pipe or a device, and no more bytes are read
than the ``ReadLimit`` in force, whatever size the file reports.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import math
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from thinkjson_edge.errors import OutputWriteError, ThinkJsonError, UsageError

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
    return sha256_bytes(text.encode("utf-8"))


def sha256_bytes(data: bytes) -> str:
    """The sha256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


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


# --- bounded reads ----------------------------------------------------------------

MB = 1 << 20  # the "MB" of every size limit
# Non-blocking, so opening a named pipe that has no writer returns at once (to be refused);
# a terminal named by mistake does not become the controlling one.
_READ_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_SPECIAL_FILES = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


@dataclass(frozen=True)
class ReadLimit:
    """A bound on what is read, and the environment variable (and option) that sets another.

    With ``unit`` "MB", ``default`` is in bytes and the variable counts MB of 2**20 bytes
    (fractions allowed); otherwise both count ``unit`` ("characters", "members").
    """

    subject: str  # what is bounded, as messages say it: "one document"
    variable: str
    default: int
    unit: str = "MB"
    option: str = ""  # the command-line option that sets the variable, where there is one

    def value(self) -> int:
        """The limit in force: the variable's value when it is set, else the default."""
        raw = os.environ.get(self.variable, "").strip()
        if not raw:
            return self.default
        try:
            number = float(raw) if self.unit == "MB" else int(raw)
        except ValueError:
            number = 0
        if not 0 < number < math.inf:  # NaN is refused here too
            kind = "number" if self.unit == "MB" else "whole number"
            raise UsageError(f"{self.variable}={raw!r}: expected a positive {kind} of {self.unit}")
        return max(1, round(number * MB)) if self.unit == "MB" else int(number)

    def describe(self) -> str:
        """The limit in force as a reader says it: "50 MB", "10,000,000 characters"."""
        value = self.value()
        return format_size(value) if self.unit == "MB" else f"{value:,} {self.unit}"

    def refusal(self) -> str:
        """The end of a refusal message: which limit, and how to raise it."""
        how = f"{self.variable}=N" + (f" or {self.option} N" if self.option else "")
        return f"the {self.describe()} limit for {self.subject}; raise it with {how}"


def format_size(size: int) -> str:
    """A size in MB as limits are given ("50 MB", "0.5 MB", "1536 MB"); a tiny one in bytes."""
    megabytes = size / MB
    if megabytes < 0.01:
        return f"{size:,} bytes"
    return f"{megabytes:.0f} MB" if megabytes >= 100 else f"{megabytes:.3g} MB"


def read_bounded(
    path: Path, limit: ReadLimit, *, error: type[ThinkJsonError], noun: str = "file"
) -> bytes:
    """The bytes of the regular file ``path``; ``error`` when it is anything else or too large.

    The size is checked as the bytes arrive, never taken from what the file reports, so a
    file that grows while it is read is refused as well.
    """
    maximum = limit.value()
    with open_regular(path, error=error, noun=noun) as stream:
        reported = os.fstat(stream.fileno()).st_size
        if reported > maximum:  # refused without reading a byte
            raise error(f"{path}: {format_size(reported)} is larger than {limit.refusal()}")
        try:
            data = _read_at_most(stream, maximum + 1, reported)
        except OSError as exc:
            raise error(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if len(data) > maximum:
        raise error(f"{path}: grew past {limit.refusal()} while it was read")
    return data


def sha256_regular(
    path: Path, limit: ReadLimit, *, error: type[ThinkJsonError], noun: str = "file"
) -> str:
    """The sha256 of the regular file ``path``, read in pieces no further than ``limit``;
    ``error`` when it is anything else, too large, or cannot be read."""
    maximum, read = limit.value(), 0
    digest = hashlib.sha256()
    with open_regular(path, error=error, noun=noun) as stream:
        try:
            while piece := _read_now(stream, _HASH_CHUNK):
                read += len(piece)
                if read > maximum:
                    raise error(f"{path}: is larger than {limit.refusal()}")
                digest.update(piece)
        except OSError as exc:
            raise error(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return digest.hexdigest()


@contextlib.contextmanager
def open_regular(
    path: Path, *, error: type[ThinkJsonError], noun: str = "file"
) -> Iterator[BinaryIO]:
    """Open a regular file for reading; refuse anything else (``error``) without blocking.

    The file is checked before it is opened, since opening a device can have effects of its
    own, and again after, since it may have been swapped for something else in between.
    """
    try:
        _require_regular(path, os.stat(path), error, noun)
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError as exc:
        raise error(_missing(path, noun)) from exc
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        raise error(f"{path}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from exc
    try:
        _require_regular(path, os.fstat(fd), error, noun)
        stream = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with stream:
        yield stream


def special_file_kind(mode: int) -> str | None:
    """What a file that is not regular is ("a named pipe (FIFO)"), or None for a regular one."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    return next((kind for test, kind in _SPECIAL_FILES if test(mode)), "not a regular file")


def _missing(path: Path, noun: str) -> str:
    try:
        target = os.readlink(path)
    except OSError:  # not a link: simply not there
        return f"{path}: no such {noun}"
    return f"{path}: cannot be read (it is a link to {target}, which is missing)"


def _require_regular(
    path: Path, info: os.stat_result, error: type[ThinkJsonError], noun: str
) -> None:
    kind = special_file_kind(info.st_mode)
    if kind is None:
        return
    if kind == "a directory":
        raise error(f"{path}: is a directory, expected a {noun}")
    raise error(
        f"{path}: is {kind}, not a regular file; only regular files are read "
        "(copy the content into a file first)"
    )


def _read_at_most(stream: BinaryIO, count: int, reported: int) -> bytes:
    """Up to ``count`` bytes: one read of the reported size, then pieces if there is more."""
    parts = [_read_now(stream, min(reported + 1, count))]
    total = len(parts[0])
    while total < count and (piece := _read_now(stream, min(_HASH_CHUNK, count - total))):
        parts.append(piece)
        total += len(piece)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _read_now(stream: BinaryIO, count: int) -> bytes:
    # Opened non-blocking: a "regular" file that waits for data (/proc/kmsg) reads as None.
    piece = stream.read(count)
    if piece is None:
        raise BlockingIOError(errno.EAGAIN, "it waits for data that may never come")
    return piece


def leads_outside(path: Path, folder: Path) -> bool:
    """Whether ``path``, every link followed, lies outside ``folder`` (an absolute, resolved
    path); a link loop counts as outside."""
    try:
        return not path.resolve().is_relative_to(folder)
    except (OSError, RuntimeError, ValueError):
        return True
