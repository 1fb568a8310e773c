"""Splitting a document that is too long for the model's context into overlapping chunks.

A chunk holds at most a given number of tokens and ends on the most natural boundary
that keeps it within that budget: a blank line (paragraph), then a single newline,
then the end of a sentence; a passage with none of these within the budget is cut
by tokens as a last resort. Neighbouring chunks share an overlap of about N tokens of
whole paragraphs (or, when the last paragraph is longer than that, of its last lines
or sentences), so a record that straddles a boundary is seen whole at least once.

Every chunk carries its character offsets in the whole document, so values found in
a chunk can be reported at document-wide positions.

Counting is done by a callable, so the rules can be tested with any tokenizer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from thinkjson_edge.errors import DocumentTooLongError

TokenCounter = Callable[[str], int]

_PARAGRAPH = re.compile(r"\n[^\S\n]*\n\s*")  # a blank line, and any whitespace after it
_LINE = re.compile(r"\n\s*")
_SENTENCE = re.compile(r"(?<=[.!?;:])\s+")
_WORD = re.compile(r"\s+")
_CHARS_PER_TOKEN = 32  # more than any tokenizer's longest usual token
_FINER = (_LINE, _SENTENCE)  # tried in order on a paragraph that is too long
_OVERLAP_FINER = (*_FINER, _WORD)  # an overlap may end mid-sentence, never mid-word


@dataclass(frozen=True)
class Chunk:
    """One part of a document: ``document[start:end] == text``; ``number`` counts from 1."""

    number: int
    start: int
    end: int
    text: str
    tokens: int


@dataclass(frozen=True)
class _Piece:
    start: int
    end: int
    tokens: int


def split_document(
    text: str,
    budget: int,
    count: TokenCounter,
    *,
    overlap: int = 0,
    max_chunks: int = 64,
) -> list[Chunk]:
    """Split ``text`` into chunks of at most ``budget`` tokens, neighbours sharing ``overlap``.

    Raises DocumentTooLongError when it would take more than ``max_chunks`` chunks.
    """
    if budget < 1:
        raise ValueError("the chunk budget must be at least one token")
    overlap = max(0, min(overlap, budget // 2))  # at least half of every chunk is new text
    pieces = _pieces(text, budget - overlap, count)  # so that every chunk has room for its overlap
    total = sum(piece.tokens for piece in pieces)
    if total > max_chunks * budget:
        raise _too_many(total, budget, max_chunks)
    chunks: list[Chunk] = []
    next_piece = 0  # the first piece no chunk has taken yet
    previous_first = 0  # the first new piece of the previous chunk
    while next_piece < len(pieces):
        if len(chunks) == max_chunks:
            raise _too_many(total, budget, max_chunks)
        start, shared = pieces[next_piece].start, 0
        if chunks and overlap:
            start, shared = _overlap_start(text, pieces[previous_first:next_piece], overlap, count)
            if shared == 0:
                start = pieces[next_piece].start
        end_piece = max(_pack(pieces, next_piece, budget - shared), next_piece + 1)
        chunk = _verified_chunk(text, start, pieces, next_piece, end_piece, budget, count)
        chunks.append(replace(chunk, number=len(chunks) + 1))
        previous_first, next_piece = next_piece, _pieces_ending_by(pieces, chunk.end, next_piece)
    return chunks


def _too_many(total: int, budget: int, max_chunks: int) -> DocumentTooLongError:
    return DocumentTooLongError(
        f"the document is about {total} tokens; with {budget} tokens of document per chunk it "
        f"needs more than {max_chunks} chunks (the limit); shorten the document, raise "
        "max_chunks, or use a model with a longer context"
    )


def _pieces(text: str, budget: int, count: TokenCounter) -> list[_Piece]:
    """Paragraphs, each cut further (lines, sentences, tokens) only when over the budget."""
    pieces: list[_Piece] = []
    for start, end in _cut(text, 0, len(text), _PARAGRAPH):
        pieces.extend(_fit(text, start, end, budget, count, 0))
    return pieces


def _fit(
    text: str, start: int, end: int, budget: int, count: TokenCounter, level: int
) -> list[_Piece]:
    tokens = count(text[start:end])
    if tokens <= budget:
        return [_Piece(start, end, tokens)]
    for index in range(level, len(_FINER)):
        parts = _cut(text, start, end, _FINER[index])
        if len(parts) > 1:
            return [
                piece
                for part_start, part_end in parts
                for piece in _fit(text, part_start, part_end, budget, count, index)
            ]
    return _cut_by_tokens(text, start, end, budget, count)


def _cut(text: str, start: int, end: int, separator: re.Pattern[str]) -> list[tuple[int, int]]:
    """The spans between separators (a separator stays with the text before it).

    Spans of whitespace only are left out, and trailing whitespace is trimmed.
    """
    spans: list[tuple[int, int]] = []
    at = start
    for match in separator.finditer(text, start, end):
        spans.append((at, match.end()))
        at = match.end()
    spans.append((at, end))
    trimmed = []
    for span_start, span_end in spans:
        body = text[span_start:span_end]
        stripped = body.strip()
        if stripped:
            lead = len(body) - len(body.lstrip())
            trimmed.append((span_start + lead, span_start + lead + len(stripped)))
    return trimmed


def _cut_by_tokens(
    text: str, start: int, end: int, budget: int, count: TokenCounter
) -> list[_Piece]:
    """Cut a passage with no usable boundary into the longest prefixes within the budget.

    The search looks at most ``_CHARS_PER_TOKEN`` characters per token ahead, so that a
    huge passage is not counted whole for every piece.
    """
    pieces: list[_Piece] = []
    while start < end:
        window = min(end, start + budget * _CHARS_PER_TOKEN)
        tokens = count(text[start:window])
        if tokens <= budget and window == end:
            pieces.append(_Piece(start, end, tokens))
            break
        low, high = start + 1, window  # the longest prefix within the budget, by bisection
        if tokens <= budget:
            low = high
        while low < high:
            middle = (low + high + 1) // 2
            if count(text[start:middle]) <= budget:
                low = middle
            else:
                high = middle - 1
        cut = _last_space(text, start, low) or low
        piece_end = start + len(text[start:cut].rstrip())
        pieces.append(_Piece(start, piece_end, count(text[start:piece_end])))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    return pieces


def _last_space(text: str, start: int, end: int) -> int | None:
    """A cut after the last whitespace in the second half of the span, not inside a word."""
    at = text.rfind(" ", start + (end - start) // 2, end)
    return at + 1 if at > start else None


def _overlap_start(
    text: str, previous: list[_Piece], overlap: int, count: TokenCounter
) -> tuple[int, int]:
    """Where the shared tail of the previous chunk's new text begins, and its tokens.

    Whole paragraphs are taken from the end while they fit in ``overlap``; when even the
    last one is too long, its last lines, sentences or words are taken instead. ``shared``
    is 0 when nothing fits.
    """
    start, shared = previous[-1].end, 0
    for piece in reversed(previous):
        if shared + piece.tokens <= overlap:
            start, shared = piece.start, shared + piece.tokens
            continue
        if shared:
            break  # whole paragraphs only, once one is shared
        for separator in _OVERLAP_FINER:
            parts = _cut(text, piece.start, piece.end, separator)
            if len(parts) > 1:
                for part_start, part_end in reversed(parts[1:]):
                    tokens = count(text[part_start:part_end])
                    if shared + tokens > overlap:
                        break
                    start, shared = part_start, shared + tokens
                break
        break
    return start, shared


def _pack(pieces: list[_Piece], first: int, room: int) -> int:
    """The end (exclusive) of the longest run of pieces from ``first`` within ``room`` tokens."""
    used, end = 0, first
    while end < len(pieces) and used + pieces[end].tokens <= room:
        used += pieces[end].tokens
        end += 1
    return end


def _verified_chunk(
    text: str,
    start: int,
    pieces: list[_Piece],
    first: int,
    end_piece: int,
    budget: int,
    count: TokenCounter,
) -> Chunk:
    """The chunk, counted whole; pieces are dropped from its end while the whole is too long.

    Counting pieces apart can differ slightly from counting them joined.
    """
    while True:
        end = pieces[end_piece - 1].end
        tokens = count(text[start:end])
        if tokens <= budget:
            return Chunk(0, start, end, text[start:end], tokens)
        if end_piece - 1 > first:
            end_piece -= 1
        elif start < pieces[first].start:
            start = pieces[first].start  # last resort: no overlap
        else:
            return Chunk(0, start, end, text[start:end], tokens)  # one piece: within budget


def _pieces_ending_by(pieces: list[_Piece], end: int, first: int) -> int:
    index = first
    while index < len(pieces) and pieces[index].end <= end:
        index += 1
    return index
