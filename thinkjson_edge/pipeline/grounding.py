"""Finding extracted strings in the document they came from.

A value is grounded when it occurs in the document exactly, or after
normalising both sides: runs of whitespace (newlines included) count as one
space, and case is ignored. The match gives character offsets into the
original document, so a reviewer can be shown the span.
"""

from __future__ import annotations

from dataclasses import dataclass

from thinkjson_edge.copying.automaton import collapse_whitespace


@dataclass(frozen=True)
class Span:
    """Where a value was found: ``document[start:end]``, and how it matched."""

    start: int
    end: int
    match: str  # "exact", "normalised", or "copied" (written as a span while decoding)


class NormalisedText:
    """A document's normalised form, with a map back to original offsets: the copy
    constraint's collapsed text (``collapse_whitespace``), lower-cased."""

    def __init__(self, text: str) -> None:
        self.text = text
        collapsed, collapsed_origin = collapse_whitespace(text)
        chars: list[str] = []
        origin: list[int] = []
        for char, source in zip(collapsed, collapsed_origin, strict=True):
            for lowered in char.lower():  # lower() may yield more than one char
                chars.append(lowered)
                origin.append(source)
        self.normalised = "".join(chars)
        self._origin = origin

    def find(self, value: str) -> Span | None:
        """The first occurrence of ``value``, exact first, then normalised."""
        start = self.text.find(value)
        if start >= 0:
            return Span(start, start + len(value), "exact")
        needle = normalise(value)
        if not needle:
            return None
        at = self.normalised.find(needle)
        if at < 0:
            return None
        end_char = self._origin[at + len(needle) - 1]
        return Span(self._origin[at], end_char + 1, "normalised")


def normalise(value: str) -> str:
    """Whitespace runs to one space, trimmed, lower case."""
    return " ".join(value.split()).lower()
