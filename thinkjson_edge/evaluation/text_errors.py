"""How far a text read by OCR is from a transcript: edits, in reading order or in any order.

``edit_distance`` counts the insertions, deletions and substitutions that turn one text
into the other: a character error rate (CER) divides it by the transcript's length.

That count depends on the order of the lines. A transcript listing a receipt's column of
item names and then the column of their prices, read by us as name and price on one line,
costs every such line twice although each character was read right. ``line_edits`` counts
errors whatever the order, in the spirit of the flexible character accuracy of Clausner,
Pletschacher and Antonacopoulos (Pattern Recognition Letters 131, 2020): each transcript
line, longest first, is matched to the part of a read line closest to it, which is then
used up; what is left of the read text counts as inserted.
"""

from __future__ import annotations


def spaced(text: str) -> str:
    """Lower case, every whitespace run (newlines, page breaks) one space, trimmed: how a
    read text and its transcript are compared."""
    return " ".join(text.lower().split())


def edit_distance(a: str, b: str) -> int:
    """Insertions, deletions and substitutions turning ``a`` into ``b`` (Levenshtein): what
    a character error rate of OCR against a transcript counts."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        previous = current
    return previous[-1]


def closest_part(wanted: str, text: str) -> tuple[int, int, int]:
    """``(edits, start, end)``: the part ``text[start:end]`` that the fewest edits turn
    into ``wanted``, and that number."""
    # Row i holds, for each end j in text, the edits aligning wanted[:i] to a part of text
    # ending at j, and where that part starts; a part may start anywhere (row 0 is zeros).
    costs = [0] * (len(text) + 1)
    starts = list(range(len(text) + 1))
    for i, char in enumerate(wanted, 1):
        row_costs, row_starts = [i], [0]
        for j, found in enumerate(text, 1):
            candidates = (
                (costs[j - 1] + (found != char), starts[j - 1]),  # kept or substituted
                (costs[j] + 1, starts[j]),  # wanted's character missing from the text
                (row_costs[j - 1] + 1, row_starts[j - 1]),  # an extra character read
            )
            cost, start = min(candidates, key=lambda pair: pair[0])
            row_costs.append(cost)
            row_starts.append(start)
        costs, starts = row_costs, row_starts
    end = min(range(len(text) + 1), key=costs.__getitem__)
    return costs[end], starts[end], end


def line_edits(read: str, transcript: str) -> tuple[int, int]:
    """``(edits, characters)``: the errors of ``read`` against ``transcript`` whatever the
    order of their lines, and the transcript's characters. Both are compared lower-cased,
    each line's whitespace runs as one space."""
    wanted = sorted(_lines(transcript), key=len, reverse=True)
    pieces = _lines(read)
    edits = 0
    for line in wanted:
        best = (len(line), -1, 0, 0)  # nothing matched: every character missing
        for index, piece in enumerate(pieces):
            cost, start, end = closest_part(line, piece)
            if cost < best[0]:
                best = (cost, index, start, end)
        cost, index, start, end = best
        edits += cost
        if index >= 0:
            piece = pieces[index]
            rest = (piece[:start].strip(), piece[end:].strip())
            pieces[index : index + 1] = [part for part in rest if part]
    edits += sum(len(piece.replace(" ", "")) for piece in pieces)  # read but in no line
    return edits, sum(len(line) for line in wanted)


def _lines(text: str) -> list[str]:
    lines = (spaced(line) for line in text.splitlines())
    return [line for line in lines if line]
