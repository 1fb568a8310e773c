"""Merging the objects extracted from the chunks of a long document into one, by the schema.

The rules, applied recursively from the root:

* objects are merged property by property (the schema's property order first);
* arrays are concatenated in document order, less repeats: an item equal, after
  normalisation, to one already taken from another chunk is dropped (repeats within one
  chunk are kept, as the model gave them); two objects that both lie wholly in the text
  two neighbouring chunks share, and agree wherever both have a value, are one record
  seen twice, and are merged into one;
* a scalar takes the first *grounded* value in document order (a string, or the digits
  of a number, found in the chunk it came from), else the first value present; when
  chunks give different grounded values for one path, the disagreement is reported as
  a ``conflict`` finding.

Normalisation is grounding's: whitespace runs count as one space and case is ignored.
Arrays with ``prefixItems`` are positional, so they are taken whole, like scalars.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from thinkjson_edge.pipeline.chunking import Chunk
from thinkjson_edge.pipeline.findings import CONFLICT, Finding, effective_schema
from thinkjson_edge.pipeline.grounding import NormalisedText, normalise
from thinkjson_edge.schema import pointer


@dataclass(frozen=True)
class ChunkValue:
    """The object extracted from one chunk."""

    chunk: Chunk
    value: dict[str, Any]


@dataclass(frozen=True)
class Merged:
    """The merged object (None when no chunk gave one) and the conflicts found on the way."""

    value: dict[str, Any] | None
    conflicts: list[Finding]


def merge_chunk_values(schema: dict[str, Any], parts: Sequence[ChunkValue]) -> Merged:
    """Merge per-chunk objects (in document order) under the root ``schema``."""
    if not parts:
        return Merged(None, [])
    merger = _Merger(schema, parts)
    value = merger.merge(schema, [(part.value, index) for index, part in enumerate(parts)], "")
    return Merged(value, merger.conflicts)


_Candidate = tuple[Any, int]  # a value and the index of the part it came from


class _Merger:
    def __init__(self, root: dict[str, Any], parts: Sequence[ChunkValue]) -> None:
        self.root = root
        self.parts = parts
        self.conflicts: list[Finding] = []
        self._texts: dict[tuple[int, int], NormalisedText | None] = {}

    def merge(self, schema: Any, candidates: list[_Candidate], path: str) -> Any:
        present = [(value, part) for value, part in candidates if value is not None]
        if not present:
            return candidates[0][0] if candidates else None
        resolved = effective_schema(schema, present[0][0], self.root)
        if all(isinstance(value, dict) for value, _ in present):
            return self.merge_objects(resolved, present, path)
        if all(isinstance(value, list) for value, _ in present) and "prefixItems" not in resolved:
            return self.merge_arrays(resolved, present, path)
        return self.merge_scalars(present, path)

    def merge_objects(
        self, schema: dict[str, Any], candidates: list[_Candidate], path: str
    ) -> dict[str, Any]:
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties", {})
        seen = [key for value, _ in candidates for key in value]
        keys = [key for key in properties if key in seen]
        keys += [key for key in dict.fromkeys(seen) if key not in properties]
        merged: dict[str, Any] = {}
        for key in keys:
            subschema = properties.get(key, extra if isinstance(extra, dict) else {})
            values = [(value[key], part) for value, part in candidates if key in value]
            merged[key] = self.merge(subschema, values, _child(path, key))
        return merged

    def merge_arrays(
        self, schema: dict[str, Any], candidates: list[_Candidate], path: str
    ) -> list[Any]:
        items = schema.get("items", {})
        items = items if isinstance(items, dict) else {}
        kept: list[_Candidate] = []
        identities: list[str] = []
        for value, part in candidates:
            for item in value:
                identity = _identity(item)
                if any(
                    known == identity and kept[index][1] != part
                    for index, known in enumerate(identities)
                ):
                    continue
                twin = self.overlap_twin(item, part, kept)
                if twin is None:
                    kept.append((item, part))
                    identities.append(identity)
                    continue
                merged = self.merge(items, [kept[twin], (item, part)], _child(path, str(twin)))
                kept[twin] = (merged, kept[twin][1])
                identities[twin] = _identity(merged)
        return [item for item, _ in kept]

    def merge_scalars(self, candidates: list[_Candidate], path: str) -> Any:
        filled = [(value, part) for value, part in candidates if not _blank(value)]
        if not filled:
            return candidates[0][0]
        grounded = [(value, part) for value, part in filled if self.found(value, part)]
        chosen = (grounded or filled)[0]
        distinct = list({_identity(value): (value, part) for value, part in grounded}.values())
        if len(distinct) > 1:
            listed = ", ".join(f"{value!r} (chunk {self.number(part)})" for value, part in distinct)
            self.conflicts.append(
                Finding(
                    CONFLICT,
                    path,
                    f"the document gives different values in different chunks: {listed}; "
                    f"kept {chosen[0]!r}",
                )
            )
        return chosen[0]

    def overlap_twin(self, item: Any, part: int, kept: list[_Candidate]) -> int | None:
        """The kept object that is ``item`` seen again in the text two chunks share."""
        if not isinstance(item, dict):
            return None
        for index, (other, other_part) in enumerate(kept):
            if other_part == part or not isinstance(other, dict):
                continue
            shared = self.shared_text(other_part, part)
            if (
                shared is not None
                and _agree(other, item)
                and _lies_in(other, shared)
                and _lies_in(item, shared)
            ):
                return index
        return None

    def found(self, value: Any, part: int) -> bool:
        """Whether a scalar occurs in the chunk it came from."""
        text, chunk = _scalar_text(value), self.shared_text(part, part)
        return text is not None and chunk is not None and chunk.find(text) is not None

    def shared_text(self, first: int, second: int) -> NormalisedText | None:
        """The document text both parts' chunks cover (a part with itself: its chunk)."""
        key = (min(first, second), max(first, second))
        if key not in self._texts:
            one, two = self.parts[key[0]].chunk, self.parts[key[1]].chunk
            start, end = max(one.start, two.start), min(one.end, two.end)
            self._texts[key] = (
                NormalisedText(one.text[start - one.start : end - one.start])
                if start < end
                else None
            )
        return self._texts[key]

    def number(self, part: int) -> int:
        return self.parts[part].chunk.number


def _scalar_text(value: Any) -> str | None:
    """How a scalar would be written in the document, if it can be looked up at all."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return json.dumps(value)
    return None


def _scalars(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars(item)
    elif (text := _scalar_text(value)) is not None:
        yield text


def _lies_in(value: Any, text: NormalisedText) -> bool:
    """Every string and number of ``value`` occurs in ``text`` (and there is at least one)."""
    scalars = list(_scalars(value))
    return bool(scalars) and all(text.find(scalar) is not None for scalar in scalars)


def _agree(one: dict[str, Any], two: dict[str, Any]) -> bool:
    """Equal, after normalisation, on every property both give a value."""
    return all(
        _identity(one[key]) == _identity(two[key])
        for key in one.keys() & two.keys()
        if not _blank(one[key]) and not _blank(two[key])
    )


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _identity(value: Any) -> str:
    """A key under which values equal after normalisation coincide."""
    return json.dumps(_canonical(value), sort_keys=True, ensure_ascii=False)


def _canonical(value: Any) -> Any:
    if isinstance(value, str):
        return normalise(value)
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items() if not _blank(item)}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def _child(path: str, key: str) -> str:
    return path + pointer([key])
