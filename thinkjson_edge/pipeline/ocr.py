"""The OCR engine: a page image in, recognised text boxes out.

RapidOCR (``rapidocr-onnxruntime``, Apache-2.0) runs the PaddleOCR detection, orientation
and recognition models through ONNX Runtime on the CPU. Its wheel carries the models, so
nothing is downloaded at run time, and it installs with pip alone (the ``ocr`` extra);
BENCHMARKS.md has its error rate and speed on the development scans.

The engine is imported and loaded on the first page read, once per process, so
``import thinkjson_edge`` and reading text documents never load ONNX Runtime.

Its recognition model (trained mostly on Chinese, where words are not spaced) often runs
the words of small Latin print together: "SOONHUATMACHINERY". Where it does, the spaces
are put back from where it saw each character: a step between two characters well over
the line's usual step is a space (``_respaced``). Only boxes in capitals are respaced,
where letters are of even width (a lower-case "m" steps wider than an "i"), and never
between two digits or signs, so a figure such as "1,327.00" is never split.
"""

from __future__ import annotations

import itertools
import statistics
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from thinkjson_edge.errors import InputError
from thinkjson_edge.pipeline.ocr_lines import TextBox

if TYPE_CHECKING:
    from PIL.Image import Image

OCR_EXTRA_HINT = "install the OCR engine with `pip install 'thinkjson-edge[ocr]'`"

# A step between character centres this many times the line's median step is a space
# (measured on the development scans: see BENCHMARKS.md).
SPACE_STEP = 1.4
_MIN_CHARACTERS = 4  # fewer give no usable median step

_engine: Any = None
_engine_lock = threading.Lock()  # the batch and the TUI may read from worker threads


def recognise(image: Image) -> list[TextBox]:
    """The text boxes RapidOCR finds on an RGB page image, in pixel coordinates."""
    engine = _load_engine()
    found, _timings = engine(image, return_word_box=True)
    boxes: list[TextBox] = []
    for quad, text, score, *characters in found or ():
        corners = tuple((float(x), float(y)) for x, y in quad)
        if len(characters) >= 2 and _upright(corners):
            text = _respaced(str(text), characters[1], characters[0])
        boxes.append(TextBox(str(text), corners, float(score)))  # type: ignore[arg-type]
    return boxes


def _respaced(text: str, characters: Sequence[str], places: Sequence[Any]) -> str:
    """``text`` with a space wherever the step from one character to the next is over
    ``SPACE_STEP`` times the line's median step, one of them is a letter, and no space
    was read there; a text with lower-case letters is left as it is."""
    if len(characters) != len(places) or "".join(characters) != text:
        return text  # the engine's character list does not match its text: leave it
    if any(character.islower() for character in text):
        return text
    centres = [sum(point[0] for point in quad) / len(quad) for quad in places]
    glyphs = [(c, x) for c, x in zip(characters, centres, strict=True) if not c.isspace()]
    if len(glyphs) < _MIN_CHARACTERS:
        return text
    step = statistics.median(b[1] - a[1] for a, b in itertools.pairwise(glyphs))
    if step <= 0:
        return text
    out: list[str] = []
    previous: tuple[str, float] | None = None
    for character, centre in zip(characters, centres, strict=True):
        if character.isspace():
            previous = None  # a space read here already
            out.append(character)
            continue
        if (
            previous is not None
            and centre - previous[1] > SPACE_STEP * step
            and (character.isalpha() or previous[0].isalpha())
        ):
            out.append(" ")
        previous = (character, centre)
        out.append(character)
    return "".join(out)


def _upright(corners: Sequence[tuple[float, float]]) -> bool:
    """Whether a box reads left to right (wider than tall), so x steps are character steps."""
    xs = [x for x, _ in corners]
    ys = [y for _, y in corners]
    return max(xs) - min(xs) > max(ys) - min(ys)


def ocr_available() -> bool:
    """Whether the OCR engine can be imported (the ``ocr`` extra is installed)."""
    from importlib.util import find_spec

    return all(find_spec(name) is not None for name in ("rapidocr_onnxruntime", "PIL"))


def require_ocr(source: str, what: str) -> None:
    """Raise InputError saying how to install OCR when ``what`` needs it and it is missing."""
    if not ocr_available():
        raise InputError(f"{source}: {what}, which is read by OCR; {OCR_EXTRA_HINT}")


def _load_engine() -> Any:
    global _engine
    with _engine_lock:
        if _engine is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError as exc:
                message = f"the OCR engine cannot be loaded ({exc}); {OCR_EXTRA_HINT}"
                raise InputError(message) from exc
            _engine = RapidOCR()
        return _engine
