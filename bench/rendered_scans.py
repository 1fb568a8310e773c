"""Extraction from scans of documents that are not receipts: the held-out documents printed
onto page images, degraded like a scan, read by OCR, and extracted beside their text.

    python bench/rendered_scans.py [--config default-adapter] [--model NAME_OR_FILE]
        [--limit N] [--box-gap tab|space|three-spaces] [--text-score S] [--keep DIR]

The documents are the synthetic held-out set of ``bench/synthetic_heldout.py`` (batch
records, deviation reports, certificates of analysis, invoices and service agreements, each
with its own schema and gold, never trained on). Each is typeset in DejaVu Sans on a white
page, then turned by up to 1.5 degrees, blurred, speckled and saved as a JPEG of quality
60, all drawn from a fixed seed. Each page is read as the product reads an image
(``read_document``) and extracted with the runtime's defaults, as is the document's own
text (as typeset: long lines wrapped); both are scored against the gold (the eval's field
match).

``--box-gap`` and ``--text-score`` change how OCR text is made, to compare settings
(``bench/ocr_reading.py``; the product's own settings when left out).

Prints one JSON summary: the CER of the read text against the document's text in any line
order (whitespace and case aside), seconds per page, and field match and micro F1 from the
scans and from the text.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import ocr_reading  # bench/ocr_reading.py
from thinkjson_edge.train.config import load_config
from thinkjson_edge.train.sources import load_split

from thinkjson_edge import Extractor
from thinkjson_edge.evaluation.metrics import aggregate, score_document
from thinkjson_edge.evaluation.text_errors import line_edits
from thinkjson_edge.pipeline.documents import Document, ReadOptions, read_document
from thinkjson_edge.pipeline.reading import PageRead

_FONT_PIXELS = 22
_LINE_PIXELS = 32
_MARGIN = 60
_WRAP = 80  # characters; a longer line is wrapped as a word processor would
_SEED = 20261207


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="default-adapter")
    parser.add_argument("--model", help="model name or GGUF file (the default model otherwise)")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--device", default="cpu")
    ocr_reading.add_arguments(parser)
    parser.add_argument("--keep", type=Path, help="write the page images here")
    args = parser.parse_args(argv)

    reading = ocr_reading.apply(args)
    examples = load_split(load_config(args.config)).heldout[: args.limit]
    printed = [_typeset(example.text) for example in examples]
    folder = args.keep or Path(tempfile.mkdtemp(prefix="rendered-scans-"))
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(_SEED)
    pages: list[PageRead] = []
    scans: list[Document] = []
    edits = reference = 0
    for number, text in enumerate(printed):
        image = folder / f"{number:03d}.jpg"
        _scan(text, rng).save(image, quality=60)
        document = read_document(image, ReadOptions(on_page=pages.append))
        scans.append(document)
        wrong, length = line_edits(document.text, text)
        edits, reference = edits + wrong, reference + length
        print(f"{image.name}: CER {100 * wrong / max(length, 1):.1f} %", file=sys.stderr)

    summary: dict[str, Any] = {
        "documents": len(examples),
        **reading,
        "cer_any_line_order_pct": round(100 * edits / max(reference, 1), 2),
        "seconds_per_page": round(statistics.mean(page.seconds for page in pages), 2),
    }
    with Extractor(args.model, device=args.device) as extractor:
        for side, documents in (
            ("scans", scans),
            ("text", [Document(text=text) for text in printed]),
        ):
            started = time.perf_counter()
            scores = [
                score_document(example.gold, extractor.extract(document, example.schema).value)
                for example, document in zip(examples, documents, strict=True)
            ]
            corpus = aggregate(scores)
            summary[side] = {
                "field_match_pct": round(corpus.mean_match_pct, 1),
                "micro_f1": round(corpus.micro.f1 or 0.0, 3),
                "seconds_per_document": round((time.perf_counter() - started) / len(scores), 1),
            }
    print(json.dumps(summary, indent=2))
    return 0


def _typeset(text: str) -> str:
    """The text as printed: long lines wrapped, tabs as spaces."""
    lines: list[str] = []
    for line in text.expandtabs(4).splitlines():
        lines += textwrap.wrap(line, _WRAP, subsequent_indent="") or [""]
    return "\n".join(lines)


def _scan(printed: str, rng: random.Random) -> Any:
    """A page image of typeset text, degraded like a scan: turned, blurred, speckled."""
    import matplotlib
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    font_file = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    font = ImageFont.truetype(str(font_file), _FONT_PIXELS)
    lines = printed.splitlines()
    width = 2 * _MARGIN + int(max(font.getlength(line) for line in lines))
    height = 2 * _MARGIN + _LINE_PIXELS * len(lines)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    for index, line in enumerate(lines):
        ink = rng.randint(0, 60)  # from black to a worn grey
        draw.text((_MARGIN, _MARGIN + index * _LINE_PIXELS), line, font=font, fill=ink)
    page = page.rotate(rng.uniform(-1.5, 1.5), resample=Image.Resampling.BICUBIC, fillcolor=255)
    page = page.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))
    pixels = page.load()
    for _ in range(width * height // 400):  # specks of dust and toner
        x, y = rng.randrange(width), rng.randrange(height)
        pixels[x, y] = rng.randint(0, 120)
    return page.convert("RGB")


if __name__ == "__main__":
    sys.exit(main())
