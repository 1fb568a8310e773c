"""Ending an array instead of writing an item the document does not hold.

After a real item, a small model often goes on: the grammar lets an array grow, and the
model's next likeliest move is one more item shaped like the last. Under the copy
constraint such an item cannot be invented, so it is filled with whatever span comes
closest (a stray letter as a deviation's id), and it looks like data.

So when a later item of an array (its second or after) begins, the decoding keeps a copy
of its state from just before the token that began it, and holds back the pieces it shows
(the live output) until the item's first value is chosen. When that value is copied and
the span search's confidence in it (the model's mass on the first tokens the copy admits
times the value's share of the likelihood of the values tried) is under
``ITEM_MIN_CONFIDENCE`` (the model did not believe the document holds such a value), the
decoding goes back to the copy and closes the array there, in closing mode. It does the
same when that value, once written, is text the document holds once and begins where the
same field of an earlier item of the array began ("DEV-2291, label printer jam" after
"DEV-2291"): the item reads again a place already read. Otherwise the held pieces are
shown and decoding goes on. The first item of an array is never judged: an empty array is
a different claim, left to the model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from thinkjson_edge.engine.json_values import JsonValues, Path

# The same bar as the default review threshold: a first value the model gives less than an
# even chance of being in the document does not open an item.
ITEM_MIN_CONFIDENCE = 0.5

State = TypeVar("State")


@dataclass
class PendingItem(Generic[State]):
    """An array item begun but not judged yet, and how to come back to before it."""

    path: Path  # the item's path: the array's, then its index
    array_level: int  # the output's nesting level inside the array: closing stops below it
    saved: State  # the decoding just before the token that began the item
    held: list[tuple[bytes, bool]] = field(default_factory=list)  # pieces not shown yet

    def holds(self, path: Path) -> bool:
        """Whether a value at ``path`` belongs to this item."""
        return path[: len(self.path)] == self.path

    def same_field_earlier(self, path: Path) -> Callable[[Path], bool]:
        """A test of whether a path is the field at ``path`` (in this item) in an earlier
        item of the same array."""
        at = len(self.path) - 1
        index = self.path[at]
        assert isinstance(index, int)

        def test(other: Path) -> bool:
            earlier = other[at] if len(other) == len(path) else None
            return (
                isinstance(earlier, int)
                and earlier < index
                and other[:at] == path[:at]
                and other[at + 1 :] == path[at + 1 :]
            )

        return test


def later_item_begun(values: JsonValues, piece: bytes) -> tuple[Path, int] | None:
    """The path and array level of an item at index 1 or more that ``piece`` begins when
    written next (None when it begins none). ``values`` is left as it is."""
    trial = values.clone()
    for byte in piece:
        depth = len(trial.stack)
        top = trial.stack[-1] if trial.stack else None
        index = top.key if top is not None and not top.is_object else None
        trial.feed(byte)
        if (
            isinstance(index, int)
            and len(trial.stack) == depth
            and trial.stack[-1] is top
            and top.key != index
        ):
            return trial.path(), 2 * depth
    return None
