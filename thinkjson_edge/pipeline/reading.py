"""How documents are read: the OCR mode, and who hears about each page read by OCR.

Kept apart from the readers so that the command line can build these options without
importing any of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from thinkjson_edge.errors import UsageError

OCR_AUTO = "auto"  # images, and PDF pages without a text layer
OCR_ALWAYS = "always"  # also PDF pages that have a text layer (it is ignored)
OCR_NEVER = "never"  # nothing: images are refused, PDF pages without text stay empty
OCR_MODES = (OCR_AUTO, OCR_ALWAYS, OCR_NEVER)


@dataclass(frozen=True)
class PageRead:
    """One page read by OCR: which of how many, how long it took, how much text it gave."""

    source: str
    page: int  # from 1
    pages: int
    seconds: float
    characters: int


PageListener = Callable[[PageRead], None]


@dataclass(frozen=True)
class ReadOptions:
    """How a document is read; the defaults are the command line's."""

    ocr: str = OCR_AUTO
    # Hears each page read by OCR (seconds per page: a long scan shows its progress).
    on_page: PageListener | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.ocr not in OCR_MODES:
            raise UsageError(f"ocr={self.ocr!r}: expected one of {', '.join(OCR_MODES)}")

    def heard(self, page: PageRead) -> None:
        if self.on_page is not None:
            self.on_page(page)
