"""The OCR engine: a page image in, recognised text boxes out.

RapidOCR (``rapidocr``, Apache-2.0) runs the PaddleOCR PP-OCRv6 detection and recognition
models through ONNX Runtime on the CPU. Its wheel carries the models, so nothing is
downloaded at run time, and it installs with pip alone (the ``ocr`` extra). Its
multilingual recognition model keeps the spaces between Latin words, which the earlier
Chinese PP-OCRv4 model ran together ("SOONHUATMACHINERY"); BENCHMARKS.md has the error
rates of both and the speed on the development scans.

The engine is imported and loaded on the first page read, once per process, so
``import thinkjson_edge`` and reading text documents never load ONNX Runtime.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

from thinkjson_edge.errors import InputError
from thinkjson_edge.pipeline import ocr_lines
from thinkjson_edge.pipeline.ocr_lines import TextBox

if TYPE_CHECKING:
    from PIL.Image import Image

OCR_EXTRA_HINT = "install the OCR engine with `pip install 'thinkjson-edge[ocr]'`"

# The orientation model, which turns a line it judges upside down before recognition, is
# off: on a development receipt it turned short upright figures over ("0.00" read as
# "00.0"; BENCHMARKS.md). Pages are read upright anyway: the line builder straightens a
# slant, not a page turned over.
#
# Boxes recognised with a score under 0.7 are left out (the engine's default is 0.5). On the
# 40 development scans, all but one of the 11 boxes under 0.7 were marks misread as text (a
# logo read as "Va 1 fect 3 llatd 1.", rows of asterisks, a speck read as a CJK character),
# the other a lone letter. The model took such a line for a company name, and a value read
# that unsurely would be wrong anyway.
_ENGINE_SETTINGS = {
    "Global.log_level": "error",  # its progress lines would mix with ours on stderr
    "Global.use_cls": False,
    "Global.text_score": 0.7,
}

_engine: Any = None
_engine_lock = threading.Lock()  # the batch and the TUI may read from worker threads


def recognise(image: Image) -> list[TextBox]:
    """The text boxes RapidOCR finds on an RGB page image, in pixel coordinates."""
    found = _load_engine()(image)
    if found.boxes is None:
        return []
    boxes: list[TextBox] = []
    for quad, text, score in zip(found.boxes, found.txts, found.scores, strict=True):
        corners = tuple((float(x), float(y)) for x, y in quad)
        boxes.append(TextBox(str(text), corners, float(score)))  # type: ignore[arg-type]
    return boxes


def reading_signature() -> str:
    """What the text read from a scan depends on besides its pixels: the engine's version,
    its settings and the separator of a line's boxes. The eval cache keys scans by it, so
    results read another way are not taken for this one's."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        engine = version("rapidocr")
    except PackageNotFoundError:
        engine = None
    reading = {"rapidocr": engine, "settings": _ENGINE_SETTINGS, "box_gap": ocr_lines.BOX_GAP}
    return json.dumps(reading, sort_keys=True)


def ocr_available() -> bool:
    """Whether the OCR engine can be imported (the ``ocr`` extra is installed)."""
    from importlib.util import find_spec

    return all(find_spec(name) is not None for name in ("rapidocr", "onnxruntime", "PIL"))


def require_ocr(source: str, what: str) -> None:
    """Raise InputError saying how to install OCR when ``what`` needs it and it is missing."""
    if not ocr_available():
        raise InputError(f"{source}: {what}, which is read by OCR; {OCR_EXTRA_HINT}")


def _load_engine() -> Any:
    global _engine
    with _engine_lock:
        if _engine is None:
            try:
                from rapidocr import RapidOCR
            except ImportError as exc:
                message = f"the OCR engine cannot be loaded ({exc}); {OCR_EXTRA_HINT}"
                raise InputError(message) from exc
            _engine = RapidOCR(params=_ENGINE_SETTINGS)
        return _engine
