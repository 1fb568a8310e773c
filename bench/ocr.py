"""Reading scans: OCR's character error rate and speed, and extraction from scans vs text.

    python bench/ocr.py ../shared/data/sroie-dev-img ../shared/data/sroie-dev [--limit N]
                        [--fields] [--model NAME_OR_FILE] [--report-dir DIR] [--texts DIR]
                        [--box-gap tab|space|three-spaces] [--text-score S]

Each image of the first folder (NNN.jpg) is read as the product reads it (``read_document``,
OCR included) and compared with the transcript of the same receipt in the second folder
(NNN.txt): the character error rate is the edit distance over the transcript's length,
after lower-casing both and turning every run of whitespace into one space (and, as a
second figure, with whitespace removed, which shows how much of the error is lost or
extra spaces). A third figure counts the errors whatever the order of the lines
(``text_errors.line_edits``): the transcripts' lines follow the dataset's own boxes, often
a column of names and then the column of prices, which we read as a person does, a name
and its price on one line. Seconds per page are the OCR's own time per page, model load
excluded.

With ``--fields`` both folders are evaluated by ``thinkjson_edge.evaluation`` (the eval
command's code, default settings) and the share of gold fields extracted exactly is
printed for the scans and for the transcripts side by side, with the eval's own field match
(case aside, runs of whitespace as one space) and the share equal once case and all
whitespace are set aside: SROIE's gold often writes "BAHRU,JOHOR" where the receipt, and so
the OCR, has "BAHRU, JOHOR", while its transcripts share the gold's spacing. Each folder
needs its ``schema.json``; ``--model`` picks the model as ``eval --model`` does (a name,
a GGUF or an adapter file), the default model otherwise. This runs the model on every
document twice; the eval cache under ``--report-dir`` makes a second run instant.

``--box-gap`` and ``--text-score`` change how OCR text is made, to compare settings
(``bench/ocr_reading.py``; the product's own settings when left out). The eval cache keys
scans by both, so each setting has its own entries.

Prints one JSON summary on stdout; a line per document on stderr.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import ocr_reading  # bench/ocr_reading.py

from thinkjson_edge.evaluation.text_errors import edit_distance, line_edits, spaced
from thinkjson_edge.pipeline.documents import ReadOptions, read_document
from thinkjson_edge.pipeline.reading import PageRead


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scans", type=Path, help="folder of NNN.jpg (and gold NNN.json)")
    parser.add_argument("transcripts", type=Path, help="folder of NNN.txt (and gold NNN.json)")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--fields", action="store_true", help="also extract and score fields")
    parser.add_argument("--model", help="model name or GGUF file for --fields (default model)")
    parser.add_argument("--report-dir", type=Path, default=Path("bench-ocr-eval"))
    parser.add_argument("--texts", type=Path, help="write each scan's OCR text here")
    ocr_reading.add_arguments(parser)
    args = parser.parse_args(argv)

    reading = ocr_reading.apply(args)

    images = sorted(p for p in args.scans.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
    images = images[: args.limit] if args.limit else images
    summary: dict[str, Any] = {"documents": len(images), **reading, **_reading(images, args)}
    if args.fields:
        names = {image.stem for image in images}
        summary["fields"] = {
            "scans": _field_scores(args.scans, args.report_dir / "scans", names, args.model),
            "transcripts": _field_scores(
                args.transcripts, args.report_dir / "transcripts", names, args.model
            ),
        }
    print(json.dumps(summary, indent=2))
    return 0


_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"}


def _reading(images: list[Path], args: argparse.Namespace) -> dict[str, Any]:
    pages: list[PageRead] = []
    errors: list[tuple[int, int]] = []  # (edits, transcript length), whitespace as one space
    bare: list[tuple[int, int]] = []  # the same with whitespace removed
    any_order: list[tuple[int, int]] = []  # whitespace as one space, lines in any order
    if args.texts:
        args.texts.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for image in images:
        text = read_document(image, ReadOptions(on_page=pages.append)).text
        reference = (args.transcripts / f"{image.stem}.txt").read_text(encoding="utf-8")
        errors.append(_edits(spaced(text), spaced(reference)))
        bare.append(_edits(unspaced(text), unspaced(reference)))
        any_order.append(line_edits(text, reference))
        if args.texts:
            (args.texts / f"{image.stem}.txt").write_text(text, encoding="utf-8")
        rate = errors[-1][0] / max(errors[-1][1], 1)
        free = any_order[-1][0] / max(any_order[-1][1], 1)
        print(
            f"{image.name}: CER {100 * rate:.1f} % ({100 * free:.1f} % in any order), "
            f"{pages[-1].seconds:.1f} s",
            file=sys.stderr,
        )
    seconds = [page.seconds for page in pages]
    return {
        "pages": len(pages),
        "cer_pct": _rate(errors),
        "cer_no_whitespace_pct": _rate(bare),
        "cer_any_line_order_pct": _rate(any_order),
        "cer_median_document_pct": round(100 * statistics.median(e / n for e, n in errors), 2),
        "seconds_per_page": round(statistics.mean(seconds), 2),
        "seconds_per_page_median": round(statistics.median(seconds), 2),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def unspaced(text: str) -> str:
    return "".join(text.lower().split())


def _rate(pairs: list[tuple[int, int]]) -> float:
    """Corpus CER: all edits over all reference characters, in percent."""
    return round(100 * sum(e for e, _ in pairs) / max(sum(n for _, n in pairs), 1), 2)


def _edits(hypothesis: str, reference: str) -> tuple[int, int]:
    return edit_distance(hypothesis, reference), len(reference)


def _field_scores(
    data_dir: Path, report_dir: Path, names: set[str], model: str | None
) -> dict[str, Any]:
    """Fields extracted exactly (the gold's leaves), by the eval command's own run."""
    from thinkjson_edge.evaluation.dataset import find_dataset
    from thinkjson_edge.evaluation.metrics import aggregate, score_document
    from thinkjson_edge.evaluation.run import EvalSettings, run_evaluation

    dataset = find_dataset(data_dir)
    dataset.cases[:] = [case for case in dataset.cases if case.name in names]
    started = time.perf_counter()
    outcome = run_evaluation(dataset, report_dir, EvalSettings(model=model), warn=_warn)
    seconds = time.perf_counter() - started
    exact = unspaced_equal = total = 0
    scores = []
    for record, gold in zip(outcome.records, outcome.golds, strict=True):
        kept = record.attempt("kept")
        value = kept.value if kept else None
        scores.append(score_document(gold, value))
        for key, expected in gold.items():
            total += 1
            got = value.get(key) if isinstance(value, dict) else None
            exact += got == expected
            unspaced_equal += isinstance(got, str) and unspaced(got) == unspaced(str(expected))
    corpus = aggregate(scores).to_dict()
    return {
        "documents": len(outcome.records),
        "field_exact_match_pct": round(100 * exact / max(total, 1), 1),
        "mean_match_pct": round(corpus["mean_match_pct"], 1),
        "field_match_spacing_aside_pct": round(100 * unspaced_equal / max(total, 1), 1),
        "micro_f1": corpus["micro"].get("f1"),
        "errors": sum(record.error is not None for record in outcome.records),
        "seconds": round(seconds, 1),
    }


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
