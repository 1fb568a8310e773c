"""A labelled data folder: ``schema.json``, the documents, and one gold object per document.

Gold ``NAME.json`` belongs to document ``NAME.*``. Documents sit either at the top of the
folder or in a ``documents/`` subfolder; gold files sit beside them or in a ``gold/``
subfolder. Only regular files inside the folder are read: a link that leads out of it, a
pipe, a socket or a device is listed as skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thinkjson_edge.errors import InputError
from thinkjson_edge.files import leads_outside, read_bounded, special_file_kind
from thinkjson_edge.pipeline.documents import document_limit

SCHEMA_FILE = "schema.json"
DOCUMENTS_FOLDER = "documents"
GOLD_FOLDER = "gold"
# Files of a data folder that are about the data, not documents to extract from.
_NOT_DOCUMENTS = ("readme", "license", "upstream_license", "notice", "copying", "licence")


@dataclass(frozen=True)
class Case:
    """One document and its gold file."""

    name: str
    document: Path
    gold: Path


@dataclass(frozen=True)
class Skipped:
    """A file of the data folder that is not evaluated, and why."""

    name: str
    path: str
    reason: str


@dataclass(frozen=True)
class Dataset:
    root: Path
    schema_path: Path
    cases: list[Case]
    skipped: list[Skipped]


def find_dataset(data_dir: Path) -> Dataset:
    """Pair every document of ``data_dir`` with its gold file, sorted by name.

    Raises InputError for a folder that is not there. Documents without gold, gold
    without a document, several documents of one name, and files that are not read (links
    out of ``data_dir``, pipes, devices) are listed as skipped. Files named README*,
    LICENSE*, NOTICE*, COPYING* and hidden files are not documents.
    """
    if not data_dir.is_dir():
        raise InputError(f"{data_dir}: no such data folder")
    documents_dir = data_dir / DOCUMENTS_FOLDER
    if not documents_dir.is_dir():
        documents_dir = data_dir
    gold_dir = data_dir / GOLD_FOLDER
    if not gold_dir.is_dir():
        gold_dir = documents_dir
    root = data_dir.resolve()
    by_name: dict[str, list[Path]] = {}
    cases: list[Case] = []
    skipped: list[Skipped] = []
    for path in sorted(documents_dir.iterdir()):
        if not _is_document(path, documents_dir == gold_dir):
            continue
        problem = _unreadable(path, root)
        if problem:
            skipped.append(Skipped(path.stem, str(path.relative_to(data_dir)), problem))
        else:
            by_name.setdefault(path.stem, []).append(path)
    for name, paths in sorted(by_name.items()):
        gold = gold_dir / f"{name}.json"
        shown = str(paths[0].relative_to(data_dir))
        if len(paths) > 1:
            files = ", ".join(p.name for p in paths)
            skipped.append(Skipped(name, shown, f"several documents share the name ({files})"))
        elif problem := _gold_problem(gold, data_dir, root):
            skipped.append(Skipped(name, shown, problem))
        else:
            cases.append(Case(name, paths[0], gold))
    documents = by_name.keys() | {entry.name for entry in skipped}  # unreadable ones too
    for gold in sorted(gold_dir.glob("*.json")):
        if gold.name != SCHEMA_FILE and gold.stem not in documents:
            shown = str(gold.relative_to(data_dir))
            skipped.append(Skipped(gold.stem, shown, "gold file without a document"))
    return Dataset(data_dir, data_dir / SCHEMA_FILE, cases, skipped)


def _is_document(path: Path, gold_beside: bool) -> bool:
    """Whether the name (and not being a folder) makes a file a document; whether it can be
    read is checked apart, so a pipe named like a document is listed, not dropped."""
    if path.is_dir() or path.name.startswith("."):
        return False
    if path.name == SCHEMA_FILE or (gold_beside and path.suffix.lower() == ".json"):
        return False
    return not path.stem.lower().startswith(_NOT_DOCUMENTS)


def _gold_problem(gold: Path, data_dir: Path, root: Path) -> str | None:
    shown = gold.relative_to(data_dir)
    if not gold.exists():
        return f"no gold file {shown}"
    problem = _unreadable(gold, root)
    return f"the gold file {shown} {problem}" if problem else None


def _unreadable(path: Path, root: Path) -> str | None:
    """Why a file of the data folder is not read (a link out of it, not a regular file)."""
    if leads_outside(path, root):
        return "is a link to a file outside the data folder; copy the file in to evaluate it"
    try:
        kind = special_file_kind(path.stat().st_mode)
    except OSError as exc:  # a broken link
        return f"cannot be read ({exc.strerror or exc})"
    return None if kind is None else f"is {kind}, not a regular file"


def load_gold(case: Case) -> Any:
    """The parsed gold object; InputError naming the file and place when it is not JSON."""
    # Bounded like a document, and only a regular file: a pipe never blocks the run.
    data = read_bounded(case.gold, document_limit(), error=InputError, noun="gold file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{case.gold}: the gold file cannot be read ({exc})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{case.gold}: the gold file is not valid JSON at line {exc.lineno}, "
            f"column {exc.colno}: {exc.msg}"
        ) from exc
