"""The OCR reading settings the scan benchmarks can change, to compare them.

``--box-gap`` sets the separator between two boxes of one line (``ocr_lines.BOX_GAP``) and
``--text-score`` the score under which the engine leaves a box out (``Global.text_score``).
Left out, each stays what the product ships. Set them before the first page is read: the
engine takes its settings when it loads.
"""

from __future__ import annotations

import argparse
from typing import Any

from thinkjson_edge.pipeline import ocr, ocr_lines

BOX_GAPS = {"tab": "\t", "space": " ", "three-spaces": "   "}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--box-gap", choices=sorted(BOX_GAPS), help="(default: the product's)")
    parser.add_argument("--text-score", type=float, help="(default: the product's)")


def apply(args: argparse.Namespace) -> dict[str, Any]:
    """Set the chosen settings; the settings in force, for the summary."""
    if args.box_gap:
        ocr_lines.BOX_GAP = BOX_GAPS[args.box_gap]
    if args.text_score is not None:
        ocr._ENGINE_SETTINGS["Global.text_score"] = args.text_score
    gap = next(name for name, text in BOX_GAPS.items() if text == ocr_lines.BOX_GAP)
    return {"box_gap": gap, "text_score": ocr._ENGINE_SETTINGS["Global.text_score"]}
