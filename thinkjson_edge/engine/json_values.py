"""Where the JSON being generated is: the path of the value under way, and each leaf's bytes.

The engine feeds every JSON byte it writes to a ``JsonValues``. It tells the copy
guard when a string value begins and at which path (so the schema can say whether
it is copied), and it records each finished leaf (string, number, boolean, null)
with the tokens that wrote it, from which the leaf's confidence is computed.

Paths are tuples of object keys and array indices, as JSON Pointers use them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

PathPart = str | int
Path = tuple[PathPart, ...]

_WHITESPACE = frozenset(b" \t\r\n")
_SCALAR_END = frozenset(b",]}") | _WHITESPACE


@dataclass
class _Frame:
    """An open object or array: the key or index of the member under way, and what comes."""

    is_object: bool
    key: PathPart | None = None
    expecting_key: bool = False


@dataclass
class OpenLeaf:
    """A scalar being written: its path, kind and raw JSON bytes so far."""

    path: Path
    kind: str  # "string", "number", "boolean" or "null"
    raw: bytearray = field(default_factory=bytearray)
    tokens: list[int] = field(default_factory=list)  # indices of the tokens that wrote it


@dataclass(frozen=True)
class Leaf:
    """A finished scalar of the output, and the generated tokens that wrote it."""

    path: Path
    kind: str
    raw: bytes
    tokens: tuple[int, ...]


class JsonValues:
    """Follows JSON bytes; knows the current path and collects finished leaves."""

    def __init__(self) -> None:
        self.stack: list[_Frame] = []
        self.leaf: OpenLeaf | None = None
        self.in_key = False
        self.escaped = False
        self._key = bytearray()
        self.leaves: list[Leaf] = []
        self.token_index = -1  # the index of the token whose bytes are being fed

    def clone(self) -> JsonValues:
        """A copy to try bytes on without changing this one (leaves are not copied)."""
        copy = JsonValues.__new__(JsonValues)
        copy.stack = [_Frame(f.is_object, f.key, f.expecting_key) for f in self.stack]
        copy.leaf = (
            OpenLeaf(self.leaf.path, self.leaf.kind, bytearray(self.leaf.raw))
            if self.leaf
            else None
        )
        copy.in_key, copy.escaped, copy._key = self.in_key, self.escaped, bytearray(self._key)
        copy.leaves, copy.token_index = [], self.token_index
        return copy

    def snapshot(self) -> JsonValues:
        """A full copy, leaves included, to come back to (see ``item_check``)."""
        copy = self.clone()
        if copy.leaf is not None and self.leaf is not None:
            copy.leaf.tokens = list(self.leaf.tokens)
        copy.leaves = list(self.leaves)
        return copy

    @property
    def in_string_value(self) -> bool:
        return self.leaf is not None and self.leaf.kind == "string"

    def path(self) -> Path:
        return tuple(frame.key for frame in self.stack if frame.key is not None)

    def feed(self, byte: int) -> str | None:
        """Take one byte; say what happened to a string value: "open", "close" or None."""
        if self.leaf is not None:
            return self._feed_leaf(byte)
        if self.in_key:
            self._feed_key(byte)
            return None
        return self._feed_structure(byte)

    def _feed_leaf(self, byte: int) -> str | None:
        leaf = self.leaf
        assert leaf is not None
        if leaf.kind == "string":
            self._note_token(leaf)
            if self.escaped:
                self.escaped = False
            elif byte == 0x5C:
                self.escaped = True
            elif byte == 0x22:
                self._finish_leaf()
                return "close"
            leaf.raw.append(byte)
            return None
        if byte in _SCALAR_END:
            self._finish_leaf()
            return self._feed_structure(byte)
        self._note_token(leaf)
        leaf.raw.append(byte)
        return None

    def _feed_key(self, byte: int) -> None:
        if self.escaped:
            self.escaped = False
        elif byte == 0x5C:
            self.escaped = True
        elif byte == 0x22:
            self.in_key = False
            key = json.loads(b'"' + bytes(self._key) + b'"')
            self.stack[-1].key = key
            self.stack[-1].expecting_key = False
            return
        self._key.append(byte)

    def _feed_structure(self, byte: int) -> str | None:
        if byte in _WHITESPACE or byte == ord(":"):
            return None
        top = self.stack[-1] if self.stack else None
        if byte == ord(","):
            if top is not None and top.is_object:
                top.expecting_key, top.key = True, None
            elif top is not None:
                top.key = int(top.key or 0) + 1
            return None
        if byte in b"]}":
            if self.stack:
                self.stack.pop()
            return None
        if byte == 0x22 and top is not None and top.is_object and top.expecting_key:
            self.in_key, self._key = True, bytearray()
            return None
        if byte == ord("{"):
            self.stack.append(_Frame(is_object=True, expecting_key=True))
            return None
        if byte == ord("["):
            self.stack.append(_Frame(is_object=False, key=0))
            return None
        kind = {0x22: "string", ord("t"): "boolean", ord("f"): "boolean", ord("n"): "null"}
        self.leaf = OpenLeaf(self.path(), kind.get(byte, "number"))
        if byte == 0x22:
            return "open"
        self._note_token(self.leaf)
        self.leaf.raw.append(byte)
        return None

    def _note_token(self, leaf: OpenLeaf) -> None:
        if not leaf.tokens or leaf.tokens[-1] != self.token_index:
            leaf.tokens.append(self.token_index)

    def _finish_leaf(self) -> None:
        leaf = self.leaf
        assert leaf is not None
        self.leaves.append(Leaf(leaf.path, leaf.kind, bytes(leaf.raw), tuple(leaf.tokens)))
        self.leaf = None

    def finish(self) -> None:
        """End of output: a number at the very end (no delimiter followed) is a leaf too."""
        if self.leaf is not None and self.leaf.kind != "string":
            self._finish_leaf()
