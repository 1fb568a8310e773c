"""One JSON string value followed through a document's span index, byte by byte.

The model writes the value as JSON, so escapes are decoded first (``\\"`` is a
quote, ``\\u00e9`` is é, ``\\n`` is a newline). Whitespace in the value (a space, or
a decoded newline, tab, carriage return or form feed) stands for one space, as in
the collapsed document. A value may not begin with a space or end with one, and it
may not be empty: the trimmed spans are the values worth copying.

A cursor is immutable: ``feed`` returns the next cursor, or None when the byte would
take the value out of the document, so callers can try a token without undoing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from thinkjson_edge.copying.automaton import ROOT, SuffixAutomaton

QUOTE = 0x22
BACKSLASH = 0x5C
SPACE = 0x20
_SIMPLE_ESCAPES = {
    ord('"'): b'"',
    ord("\\"): b"\\",
    ord("/"): b"/",
    ord("b"): b"\b",
    ord("f"): b" ",  # whitespace: one space, as in the collapsed document
    ord("n"): b" ",
    ord("r"): b" ",
    ord("t"): b" ",
}
_HEX = frozenset(b"0123456789abcdefABCDEF")


@dataclass(frozen=True)
class CopyCursor:
    """Where a value written so far sits in the document: its state and length in bytes."""

    state: int = ROOT
    length: int = 0
    last_space: bool = False
    escape: bytes = b""  # an escape sequence begun but not finished, backslash included

    @property
    def may_close(self) -> bool:
        """Whether the value may end here: not empty, no trailing space, no open escape."""
        return self.length > 0 and not self.last_space and not self.escape

    def feed(self, automaton: SuffixAutomaton, byte: int) -> CopyCursor | None:
        """The cursor after one raw byte of the value (never the closing quote)."""
        if self.escape:
            return self._feed_escape(automaton, byte)
        if byte == BACKSLASH:
            return replace(self, escape=b"\\")
        return self._advance(automaton, b" " if byte == SPACE else bytes((byte,)))

    def _feed_escape(self, automaton: SuffixAutomaton, byte: int) -> CopyCursor | None:
        sequence = self.escape + bytes((byte,))
        if len(sequence) == 2:
            if byte in _SIMPLE_ESCAPES:
                return replace(self, escape=b"")._advance(automaton, _SIMPLE_ESCAPES[byte])
            return replace(self, escape=sequence) if byte == ord("u") else None
        if byte not in _HEX:
            return None
        if len(sequence) < 6:
            return replace(self, escape=sequence)
        code = int(sequence[2:], 16)
        if 0xD800 <= code <= 0xDFFF:
            return None  # surrogate pairs are not followed; such characters stay generated
        char = chr(code)
        decoded = b" " if char.isspace() else char.encode("utf-8")
        return replace(self, escape=b"")._advance(automaton, decoded)

    def _advance(self, automaton: SuffixAutomaton, data: bytes) -> CopyCursor | None:
        state, length, last_space = self.state, self.length, self.last_space
        for byte in data:
            if byte == SPACE and (length == 0 or last_space):
                return None  # no leading space, and the document has no double space
            next_state = automaton.step(state, byte)
            if next_state is None:
                return None
            state, length, last_space = next_state, length + 1, byte == SPACE
        return CopyCursor(state, length, last_space)
