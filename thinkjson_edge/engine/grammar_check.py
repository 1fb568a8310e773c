"""Whether llama.cpp loads a grammar, asked of llama.cpp itself without loading a model.

Generation makes its grammar sampler with ``llama_sampler_init_grammar``; that call parses
the GBNF, refuses left recursion and over-long repetitions, and builds the first parse
stacks, all without reading the vocabulary (only sampling reads it). So the same call with
no vocabulary answers exactly "would generation accept this grammar" in about a
millisecond per 10 KB of grammar, where loading even a vocabulary-only model takes longer.

llama.cpp reports a refusal through its log and partly with a plain ``fprintf`` to the
process's standard error; both are collected here, so the caller gets one line to show.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import tempfile
from collections.abc import Iterator


def grammar_refusal(gbnf: str, root: str = "root") -> str | None:
    """None when llama.cpp loads ``gbnf`` as generation would, else llama.cpp's reason."""
    import llama_cpp
    from llama_cpp import _logger

    if "\0" in gbnf:  # C would read the grammar only up to it
        return "the grammar holds a NUL character"
    messages: list[str] = []

    @llama_cpp.llama_log_callback
    def collect(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        messages.append(text.decode("utf-8", "replace"))

    with _stderr_collected() as printed:
        llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
        try:
            sampler = llama_cpp.llama_sampler_init_grammar(
                None, gbnf.encode("utf-8"), root.encode("utf-8")
            )
        finally:
            llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
    if sampler:
        llama_cpp.llama_sampler_free(sampler)
        return None
    return _reason("".join(messages) + printed.read())


def _reason(log: str) -> str:
    """The first line that says what is wrong, without llama.cpp's function prefixes."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    line = next((line for line in lines if "error" in line or "unsupported" in line), None)
    line = line or (lines[0] if lines else "no reason given")
    for prefix in ("parse: ", "error parsing grammar: ", "llama_grammar_init_impl: "):
        line = line.removeprefix(prefix)
    return line[:300]


@contextlib.contextmanager
def _stderr_collected() -> Iterator[_Collected]:
    """Send what C code prints on file descriptor 2 to a temporary file while inside."""
    collected = _Collected()
    with tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(sink.fileno(), 2)
            yield collected
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        collected.text = sink.read(64 * 1024).decode("utf-8", "replace")


class _Collected:
    text = ""

    def read(self) -> str:
        return self.text
