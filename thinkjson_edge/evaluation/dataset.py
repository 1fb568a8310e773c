"""A labelled data folder: ``schema.json``, the documents, and one gold object per document.

Gold ``NAME.json`` belongs to document ``NAME.*``. Documents sit either at the top of the
folder or in a ``documents/`` subfolder; gold files sit beside them or in a ``gold/``
subfolder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from thinkjson_edge.errors import InputError

if TYPE_CHECKING:
    pass

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
    without a document and several documents of one name are listed as skipped. Files
    named README*, LICENSE*, NOTICE*, COPYING* and hidden files are not documents.
    """
    if not data_dir.is_dir():
        raise InputError(f"{data_dir}: no such data folder")
    documents_dir = data_dir / DOCUMENTS_FOLDER
    if not documents_dir.is_dir():
        documents_dir = data_dir
    gold_dir = data_dir / GOLD_FOLDER
    if not gold_dir.is_dir():
        gold_dir = documents_dir
    by_name: dict[str, list[Path]] = {}
    for path in sorted(documents_dir.iterdir()):
        if _is_document(path, documents_dir == gold_dir):
            by_name.setdefault(path.stem, []).append(path)
    cases: list[Case] = []
    skipped: list[Skipped] = []
    for name, paths in sorted(by_name.items()):
        gold = gold_dir / f"{name}.json"
        shown = str(paths[0].relative_to(data_dir))
        if len(paths) > 1:
            files = ", ".join(p.name for p in paths)
            skipped.append(Skipped(name, shown, f"several documents share the name ({files})"))
        elif not gold.is_file():
            skipped.append(Skipped(name, shown, f"no gold file {gold.relative_to(data_dir)}"))
        else:
            cases.append(Case(name, paths[0], gold))
    for gold in sorted(gold_dir.glob("*.json")):
        if gold.name != SCHEMA_FILE and gold.stem not in by_name:
            shown = str(gold.relative_to(data_dir))
            skipped.append(Skipped(gold.stem, shown, "gold file without a document"))
    return Dataset(data_dir, data_dir / SCHEMA_FILE, cases, skipped)


def _is_document(path: Path, gold_beside: bool) -> bool:
    if not path.is_file() or path.name.startswith("."):
        return False
    if path.name == SCHEMA_FILE or (gold_beside and path.suffix.lower() == ".json"):
        return False
    return not path.stem.lower().startswith(_NOT_DOCUMENTS)


def load_gold(case: Case) -> Any:
    """The parsed gold object; InputError naming the file and place when it is not JSON."""
    try:
        text = case.gold.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{case.gold}: the gold file cannot be read ({exc})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{case.gold}: the gold file is not valid JSON at line {exc.lineno}, "
            f"column {exc.colno}: {exc.msg}"
        ) from exc
