"""The bytes one generation has written, split into the reasoning block and the JSON,
with the JSON's nesting level after each byte (closing mode and loop cuts read it)."""

from __future__ import annotations

from copy import deepcopy

from thinkjson_edge.grammar.compiler import THINK_CLOSE, THINK_OPEN


class Output:
    """The bytes generated so far, split into the reasoning block and the JSON."""

    def __init__(self, think: bool) -> None:
        self.in_think = think
        self.think = bytearray()
        self.json = bytearray()
        self._depth = 0
        self._in_string = False
        self._escaped = False
        self.json_done = False
        # Nesting level after each JSON byte: 2 per open object or array, +1 inside a string.
        self.levels: list[int] = []

    @property
    def level(self) -> int:
        return self._depth * 2 + self._in_string

    def add(self, data: bytes) -> bytes:
        """Take a token's bytes; return those that went into the JSON."""
        start = len(self.json)
        for byte in data:
            if self.in_think:
                self.think.append(byte)
                if self.think.endswith(THINK_CLOSE.encode()):
                    self.in_think = False
                continue
            if self.json_done:
                continue  # trailing bytes of the last token (whitespace) are dropped
            self.json.append(byte)
            self._scan(byte)
            self.levels.append(self.level)
        return bytes(self.json[start:])

    def _scan(self, byte: int) -> None:
        if self._in_string:
            if self._escaped:
                self._escaped = False
            elif byte == 0x5C:  # backslash
                self._escaped = True
            elif byte == 0x22:
                self._in_string = False
        elif byte == 0x22:
            self._in_string = True
        elif byte in b"{[":
            self._depth += 1
        elif byte in b"}]":
            self._depth -= 1
            self.json_done = self._depth == 0

    def pending_think_close(self) -> str:
        """What is left to write of the closing tag (the model may have started it)."""
        tag = THINK_CLOSE
        for size in range(len(tag) - 1, 0, -1):
            if self.think.endswith(tag[:size].encode()):
                return tag[size:]
        return tag

    def reasoning(self) -> str:
        body = self.think.decode("utf-8", errors="replace")
        return body.removeprefix(THINK_OPEN).removesuffix(THINK_CLOSE).strip()

    def json_text(self) -> str:
        return self.json.decode("utf-8", errors="replace").strip()

    def text(self) -> str:
        return (bytes(self.think) + bytes(self.json)).decode("utf-8", errors="replace")

    def copy(self) -> Output:
        """An independent copy (the decoding keeps one to go back to; see ``item_check``)."""
        return deepcopy(self)
