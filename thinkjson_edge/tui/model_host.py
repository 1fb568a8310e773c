"""The one loaded model of the interface, and the live output of the running extraction.

Screens share one ``Extractor``; llama.cpp's context is not thread-safe, so every use holds
``ModelHost.lock``. Loading is lazy (the first run pays it, in a worker thread), and
choosing another model only drops the loaded one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from thinkjson_edge.models.choice import BASE_MODEL, DEFAULT_MODEL, choose_model
from thinkjson_edge.models.store import list_models
from thinkjson_edge.pipeline.extractor import ExtractOptions, Extractor, LazyExtractor


class ModelHost:
    """Which model to use, and the extractor once loaded."""

    def __init__(self, model: str | None, device: str, options: ExtractOptions) -> None:
        self.device = device
        self.options = options
        self.lock = threading.Lock()
        self._lazy = LazyExtractor(model, device, options)

    @property
    def spec(self) -> str | None:
        return None if self._lazy.model is None else str(self._lazy.model)

    @property
    def loaded(self) -> bool:
        return self._lazy.loaded

    @property
    def name(self) -> str:
        """The model's name as reports give it, resolved without loading it."""
        try:
            return choose_model(self.spec).name
        except Exception as exc:
            return f"{self.spec} (unusable: {exc})"

    def choices(self) -> list[tuple[str, str]]:
        """(spec, description) of the default model and every installed one."""
        rows = [
            (DEFAULT_MODEL, "the default model: the embedded base with its extraction adapter"),
            (BASE_MODEL, "the embedded base model alone"),
        ]
        rows += [(m.name, f"{m.size / 1e6:.0f} MB  {m.path}") for m in list_models()]
        return rows

    def choose(self, spec: str | None) -> None:
        """Use another model from the next run on (call while holding the lock)."""
        self.close()
        self._lazy = LazyExtractor(spec, self.device, self.options)

    def extractor(self) -> Extractor:
        """The loaded extractor; loads it first if needed (call while holding the lock)."""
        return self._lazy.get()

    def close(self) -> None:
        self._lazy.close()


@dataclass(frozen=True)
class Piece:
    attempt: int
    text: str
    reasoning: bool


class LiveOutput:
    """Text the worker thread writes and the interface reads on a timer.

    A timer rather than one message per token: the model never waits for the screen.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pieces: list[Piece] = []
        self.written = 0  # characters so far, for the progress line

    def add(self, attempt: int, text: str, reasoning: bool) -> None:
        with self._lock:
            self._pieces.append(Piece(attempt, text, reasoning))
            self.written += len(text)

    def take(self) -> list[Piece]:
        with self._lock:
            pieces, self._pieces = self._pieces, []
        return pieces
