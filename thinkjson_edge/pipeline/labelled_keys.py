"""Optional properties the model left out although the document prints their label.

A small model tends to close the object after the field it usually sees last, even when
the schema asks for more and the document has it ("QA reviewer: Dr. Helen Okafor" after a
release flag). Such an omission is found here, by the text alone: a line that holds the
property's name (its key split into words, or its ``title``) as a label, followed by a
separator and a value. The extractor then asks again with that property required
(``with_required``), and keeps the answer only where the model is sure of the value.

Only optional scalar properties of the top-level object are considered: the label must
stand for one value, and a nested property's label is ambiguous between its parents.
A label followed by nothing or by a placeholder ("n/a", "-", "____") is no value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_SCALAR_TYPES = {"string", "number", "integer", "boolean"}
# What a form prints where a value is not given: nothing to ask for.
_PLACEHOLDERS = re.compile(
    r"[\s\-_.:/*()\[\]\u2013\u2014]*|(?:n/?a|none|nil|null|tbd|tba|pending|not applicable)\W*",
    re.IGNORECASE,
)
# Between a label and its value: a colon, a dot leader, or a tab or wider gap.
_SEPARATOR = r"[ \t]*(?::|\.{3,}|\t|[ ]{2,})[ \t.:]*"
_MIN_LABEL_LETTERS = 4  # shorter names ("id", "no") stand in too many lines


def labelled_omissions(schema: dict[str, Any], value: dict[str, Any], text: str) -> list[str]:
    """Optional top-level scalar keys missing from ``value`` whose label stands in ``text``
    with a value after it, in the schema's order."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return []
    required = set(schema.get("required") or [])
    lines = text.splitlines()
    return [
        key
        for key, subschema in properties.items()
        if key not in value
        and key not in required
        and is_scalar(subschema)
        and any(_labels_a_value(phrase, lines) for phrase in _label_phrases(key, subschema))
    ]


def with_required(schema: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """The schema with ``keys`` added to its top-level ``required`` (a copy)."""
    required = list(schema.get("required") or [])
    return {**schema, "required": required + [k for k in keys if k not in required]}


def is_scalar(subschema: Any) -> bool:
    """Whether a property holds one number, string or boolean (an enum or const included)."""
    if not isinstance(subschema, dict):
        return False
    if "enum" in subschema or "const" in subschema:
        return True
    declared = subschema.get("type")
    kinds = set(declared) if isinstance(declared, list) else {declared}
    return bool(kinds & _SCALAR_TYPES) and kinds <= _SCALAR_TYPES | {"null"}


def _label_phrases(key: str, subschema: dict[str, Any]) -> Iterator[list[str]]:
    """The words a document may print as the property's label: its key's, and its title's."""
    for name in (key, subschema.get("title")):
        if isinstance(name, str):
            words = _words(name)
            if sum(len(w) for w in words) >= _MIN_LABEL_LETTERS:
                yield words


def _words(name: str) -> list[str]:
    """``qa_reviewer``, ``qaReviewer`` and ``QA reviewer`` all give ``["qa", "reviewer"]``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return [w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]


def _labels_a_value(words: list[str], lines: list[str]) -> bool:
    """Whether a line prints ``words`` as a label, then a value that is not a placeholder."""
    label = r"[\s_\-.]*".join(re.escape(word) for word in words)
    pattern = re.compile(rf"(?<![A-Za-z0-9]){label}(?![A-Za-z0-9]){_SEPARATOR}(.*)$", re.I)
    for line in lines:
        found = pattern.search(line)
        if found and not _PLACEHOLDERS.fullmatch(found.group(1).strip()):
            return True
    return False
