"""Reading and writing example sets as CSV, JSONL or Parquet, in the ThinkJSON column layout.

The published ThinkJSON data (``JSON-Unstructured-Structured``: unstructured
text, schema, structured JSON; ``R1-Reasoning-Unstructured-To-Structured``: the
same with reasoning) is read from a local file; nothing is downloaded. Columns
are matched by name, ignoring case, spaces and underscores, under the names its
copies use:

* the document: ``text``, ``unstructured_text``, ``document``;
* the schema: ``schema``, ``json_schema``, ``blank_schema``;
* the gold object: ``object``, ``structured_json``, ``json``, ``filled_schema``;
* the reasoning (optional): ``reasoning``, ``think``, ``response``, ``r1_response``;
  a value holding ``<think>…</think>`` gives what is inside the block.

JSON columns may hold JSON text or (JSONL, Parquet) parsed values. Rows written
here use ``text``, ``schema``, ``object``, ``reasoning`` and provenance columns.
The format is chosen by suffix: ``.csv``, ``.jsonl`` (or ``.json``), ``.parquet``.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from thinkjson_edge.train.data import Example
from thinkjson_edge.train.traces import split_completion

from thinkjson_edge.errors import DatasetFormatError

TEXT_COLUMNS = ("text", "unstructuredtext", "document")
SCHEMA_COLUMNS = ("schema", "jsonschema", "blankschema")
OBJECT_COLUMNS = ("object", "structuredjson", "json", "filledschema")
REASONING_COLUMNS = ("reasoning", "think", "response", "r1response")
SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")



def write_examples(examples: Iterable[Example], path: Path) -> int:
    """Write examples to ``path`` in the format its suffix names; returns the count."""
    rows = [example.to_row() for example in examples]
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = _suffix(path)
    if suffix == ".csv":
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["text"])
            writer.writeheader()
            writer.writerows(rows)
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        with path.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)


def read_examples(path: Path, limit: int | None = None) -> list[Example]:
    """Examples from a CSV, JSONL or Parquet file in the ThinkJSON column layout."""
    if not path.is_file():
        raise DatasetFormatError(f"{path}: no such data file")
    examples = []
    for number, row in enumerate(_rows(path), start=1):
        if limit is not None and len(examples) >= limit:
            break
        examples.append(_example(row, f"{path}:{number}", path.stem, number))
    if not examples:
        raise DatasetFormatError(f"{path}: holds no rows")
    return examples


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DatasetFormatError(
            f"{path}: unknown data format {suffix!r}; use one of {', '.join(SUFFIXES)}"
        )
    return suffix


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    suffix = _suffix(path)
    if suffix == ".csv":
        csv.field_size_limit(sys.maxsize)  # documents and reasoning run to megabytes
        with path.open(encoding="utf-8-sig", newline="") as handle:
            yield from csv.DictReader(handle)
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from pq.read_table(path).to_pylist()
    else:
        with path.open(encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetFormatError(f"{path}:{number}: not JSON ({exc.msg})") from exc
                if not isinstance(row, dict):
                    raise DatasetFormatError(f"{path}:{number}: a row must be a JSON object")
                yield row


def _column(row: dict[str, Any], names: tuple[str, ...]) -> Any:
    by_key = {str(k).lower().replace("_", "").replace(" ", ""): v for k, v in row.items()}
    for name in names:
        value = by_key.get(name)
        if value not in (None, ""):
            return value
    return None


def _json_value(value: Any, where: str, column: str) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise DatasetFormatError(f"{where}: the {column} is not JSON ({exc.msg})") from exc
    if not isinstance(value, dict):
        raise DatasetFormatError(f"{where}: the {column} must be a JSON object")
    return value


def _reasoning(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    reasoning, _ = split_completion(value)
    return reasoning if reasoning is not None else value.strip()


def _example(row: dict[str, Any], where: str, stem: str, number: int) -> Example:
    text = _column(row, TEXT_COLUMNS)
    schema = _column(row, SCHEMA_COLUMNS)
    gold = _column(row, OBJECT_COLUMNS)
    missing = [
        name
        for name, value in (("text", text), ("schema", schema), ("object", gold))
        if value is None
    ]
    if missing:
        raise DatasetFormatError(
            f"{where}: no {' / '.join(missing)} column; the columns are {sorted(row)}, and "
            "a row needs the document (text), the schema and the gold object (object)"
        )
    return Example(
        id=str(row.get("id") or f"{stem}-{number}"),
        schema=_json_value(schema, where, "schema"),
        text=str(text),
        gold=_json_value(gold, where, "object"),
        reasoning=_reasoning(_column(row, REASONING_COLUMNS)),
        domain=str(row.get("domain") or ""),
        layout=str(row.get("layout") or ""),
    )
