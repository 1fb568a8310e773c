"""The result pane: the extracted object as a tree, each node marked with its status.

A node's data is its JSON Pointer, the path findings and grounding use, so selecting a
node is enough to find its problems and its span in the document. A value the model wrote
shows its confidence after it (``0.87``), marked when under the review threshold; a value
the reviewer edited shows ``edited`` instead: it has no model confidence.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from thinkjson_edge.schema import pointer
from thinkjson_edge.tui.review import LOW_CONFIDENCE, NOT_FOUND, SCHEMA_ERROR, VALID, Review

GLYPHS = {
    VALID: ("✓", "green"),
    LOW_CONFIDENCE: ("!", "medium_orchid"),
    NOT_FOUND: ("?", "yellow"),
    SCHEMA_ERROR: ("✗", "red"),
}
_MAX_LEAF_CHARS = 80


class ResultTree(Tree[str]):
    """The object under review; ``show`` redraws it and keeps the cursor on the same path."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("result", data="", id=id)
        self.guide_depth = 3

    def show(self, review: Review | None) -> None:
        """Draw ``review``'s object: labels in place when only values changed, else anew."""
        if review is None or review.value is None:
            self.clear()
            self.root.set_label(Text("no result yet", style="dim"))
            return
        rows = list(_rows(review.value, "", review))
        if [path for path, _, _ in rows] == [node.data for node in self._nodes_below_root()]:
            for node, (_, label, _) in zip(self._nodes_below_root(), rows, strict=True):
                node.set_label(label)
        else:
            selected = self.cursor_node.data if self.cursor_node is not None else None
            self.clear()
            _build(self.root, rows)
            self.root.expand_all()
            self.call_after_refresh(self._move_to, selected)
        self.root.set_label(_label("result", review.status("")))

    def select_path(self, path: str) -> bool:
        """Put the cursor on the node of ``path`` (opening its parents); False if none."""
        found = next((n for n in self._nodes_below_root() if n.data == path), None)
        if found is None:
            return False
        closed = []
        parent = found.parent
        while parent is not None:
            if not parent.is_expanded:
                closed.append(parent.expand())
            parent = parent.parent
        if closed:  # the opened lines get their numbers on the next refresh
            self.call_after_refresh(self._move_to, path)
        else:
            self.move_cursor(found)
        return True

    def _nodes_below_root(self) -> list[TreeNode[str]]:
        """Every node below the root, depth first."""
        found: list[TreeNode[str]] = []
        pending = list(reversed(self.root.children))
        while pending:
            node = pending.pop()
            found.append(node)
            pending.extend(reversed(node.children))
        return found

    def _move_to(self, path: str | None) -> None:
        found = next((n for n in self._nodes_below_root() if n.data == path), None)
        if found is not None:
            self.move_cursor(found)


def _rows(value: Any, path: str, review: Review) -> Iterator[tuple[str, Text, bool]]:
    """(path, label, is a branch) of every node under ``value``, depth first."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        child_path = path + pointer([key])
        status = review.status(child_path)
        if isinstance(child, dict | list) and child:
            yield child_path, _label(str(key), status), True
            yield from _rows(child, child_path, review)
        else:
            label = _label(str(key), status, _short(child))
            yield child_path, label.append_text(confidence_note(review, child_path)), False


def _build(root: TreeNode[str], rows: list[tuple[str, Text, bool]]) -> None:
    nodes = {"": root}
    for path, label, branch in rows:
        parent = nodes[path[: path.rindex("/")]]  # keys' own slashes are escaped as ~1
        nodes[path] = parent.add(label, data=path) if branch else parent.add_leaf(label, data=path)


def _label(key: str, status: str, shown: str | None = None) -> Text:
    """``✓ key: value``; a branch shows no value."""
    glyph, colour = GLYPHS[status]
    label = Text.assemble((glyph, f"bold {colour}"), " ", (key, "bold"))
    if shown is not None:
        label.append(": ")
        label.append(shown, style="dim" if shown == "null" else "")
    return label


def confidence_note(review: Review, path: str) -> Text:
    """After a value: ``  0.87`` (in the ! colour under the threshold), ``  edited``, or nothing."""
    if review.edited(path):
        return Text("  edited", style="italic dim")
    trace = review.confidence(path)
    if trace is None:
        return Text()
    if trace.confidence < review.review_below:
        _, colour = GLYPHS[LOW_CONFIDENCE]
        return Text(f"  {trace.confidence:.2f}", style=f"bold {colour}")
    return Text(f"  {trace.confidence:.2f}", style="dim")


def _short(value: Any) -> str:
    if isinstance(value, dict | list):
        return "{}" if isinstance(value, dict) else "[]"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _MAX_LEAF_CHARS else text[: _MAX_LEAF_CHARS - 1] + "…"
