"""Refuse, before any work, an output that would write over an input.

Every command names what it reads and what it writes (files and folders, each with the
option that gave it); ``check_paths`` compares them by resolved path and by device and
inode, so a symlink, a hard link or a bind mount to an input is caught as well as the
input's own name. Two outputs may not name one file, and an input folder and an output
folder may not contain each other. A refusal is a ``UsageError`` (exit 2) naming both paths.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from thinkjson_edge.errors import UsageError


@dataclass(frozen=True)
class Place:
    """A path a command reads or writes, with the option that named it ("--out", "FILE")."""

    label: str
    path: Path
    folder: bool = False


def file_place(label: str, path: Path | str | None) -> list[Place]:
    """A file place, or nothing for an option left unset."""
    return [] if path is None else [Place(label, Path(path))]


def folder_place(label: str, path: Path | str | None) -> list[Place]:
    """A folder place, or nothing for an option left unset."""
    return [] if path is None else [Place(label, Path(path), folder=True)]


def model_place(spec: str | None) -> list[Place]:
    """The model as an input when ``--model`` names an existing file (a name reads the store)."""
    if not spec:
        return []
    path = Path(spec).expanduser()
    return [Place("--model", path)] if path.is_file() else []


def check_paths(inputs: Iterable[Place], outputs: Iterable[Place]) -> None:
    """Raise UsageError when an output is, holds or lies inside an input, or two outputs meet."""
    ins = [_Resolved.of(place) for place in inputs]
    outs = [_Resolved.of(place) for place in outputs]
    for number, out in enumerate(outs):
        for other in outs[:number]:
            if out.same_as(other):
                raise UsageError(_same(out, other, "both are written"))
        for source in ins:
            if out.same_as(source):
                raise UsageError(_same(out, source, "the input would be overwritten"))
            if out.place.folder and out.holds(source):
                raise UsageError(_inside(source, out, "results would be written among inputs"))
            if source.place.folder and source.holds(out):
                raise UsageError(_inside(out, source, "results would become inputs"))


@dataclass(frozen=True)
class _Resolved:
    place: Place
    real: Path
    ident: tuple[int, int] | None  # (st_dev, st_ino) of what exists there, else None
    # The identities of the existing folders that hold ``real``, nearest first.
    parents: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, place: Place) -> _Resolved:
        real = _real(place.path)
        return cls(place, real, _identity(real), tuple(_parent_identities(real)))

    def same_as(self, other: _Resolved) -> bool:
        if self.real == other.real:
            return True
        return self.ident is not None and self.ident == other.ident

    def holds(self, other: _Resolved) -> bool:
        """Whether ``other`` lies inside this folder (the folder itself counts as well)."""
        if self.same_as(other) or self.real in other.real.parents:
            return True
        return self.ident is not None and self.ident in other.parents


def _real(path: Path) -> Path:
    """The absolute path with every symlink that exists followed."""
    try:
        return path.expanduser().resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL: the name as given
        return Path(os.path.abspath(path.expanduser()))


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def _parent_identities(path: Path) -> Iterator[tuple[int, int]]:
    for parent in path.parents:
        if (ident := _identity(parent)) is not None:
            yield ident


def _same(a: _Resolved, b: _Resolved, why: str) -> str:
    kind = "folder" if a.place.folder or b.place.folder else "file"
    named = [os.path.abspath(place.path.expanduser()) for place in (a.place, b.place)]
    link = "" if named[0] == named[1] else " through a link"
    return (
        f"{a.place.label} {a.place.path} must not be {b.place.label} {b.place.path}: it is the "
        f"same {kind}{link} and {why}; choose another path"
    )


def _inside(inner: _Resolved, outer: _Resolved, why: str) -> str:
    if inner.same_as(outer):
        return _same(inner, outer, why)
    return (
        f"{inner.place.label} {inner.place.path} must not be inside {outer.place.label} "
        f"{outer.place.path}: {why}; choose another path"
    )
