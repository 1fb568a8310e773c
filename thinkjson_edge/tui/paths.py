"""How the interface writes a path: short, and the same on every machine where it can be."""

from __future__ import annotations

from pathlib import Path


def shown_path(path: Path) -> str:
    """A path as the interface shows it: relative to the working folder when under it."""
    try:
        relative = path.resolve().relative_to(Path.cwd().resolve())
    except (OSError, ValueError):
        return str(path)
    return relative.as_posix()
