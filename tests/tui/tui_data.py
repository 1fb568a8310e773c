"""A receipt, its schema, an extraction report and an app opened on a review, shared by the
interface's tests."""

from __future__ import annotations

from typing import Any

from textual.screen import Screen

from thinkjson_edge.tui.app import ReviewApp
from thinkjson_edge.tui.review import Review
from thinkjson_edge.tui.review_screen import ReviewScreen


class FixedReviewApp(ReviewApp):
    """The app opened on a prepared review (the model is named, never loaded)."""

    def __init__(self, review: Review) -> None:
        super().__init__(None, model="smollm2-135m", device="cpu")
        self.prepared = review

    def get_default_screen(self) -> Screen:
        return ReviewScreen(self.host, review=self.prepared)


RECEIPT = """KEDAI RUNCIT AMAN
NO 5, JALAN MAWAR, 43000 KAJANG
DATE: 12/03/2019
ITEM        QTY   AMOUNT
GULA 1KG    2     5.40
BERAS 5KG   1     10.00
TOTAL             15.40
THANK YOU
"""

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "company": {"type": "string"},
        "date": {"type": "string"},
        "total": {"type": "number", "minimum": 0},
        "items": {"type": "array", "items": {"$ref": "#/$defs/item"}},
    },
    "required": ["company", "total"],
    "additionalProperties": False,
    "$defs": {
        "item": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "amount": {"type": "number"}},
            "required": ["name"],
        }
    },
}

EXTRACTED = {
    "company": "KEDAI RUNCIT AMAN",
    "date": "12/03/2019",
    "total": 15.4,
    "items": [{"name": "GULA 1KG", "amount": 5.4}, {"name": "SUGAR", "amount": 10.0}],
}


def _copied(path: str, text: str, confidence: float) -> dict[str, Any]:
    start = RECEIPT.index(text)
    return {
        "path": path,
        "kind": "string",
        "confidence": confidence,
        "copied": True,
        "start": start,
        "end": start + len(text),
    }


def _generated(path: str, kind: str, confidence: float) -> dict[str, Any]:
    return {"path": path, "kind": kind, "confidence": confidence, "copied": False}


# The kept attempt's ``values`` for EXTRACTED, in writing order. Two are under the default
# review threshold (0.1): "SUGAR" (also not in the document) and its amount.
VALUES = [
    _copied("/company", "KEDAI RUNCIT AMAN", 0.97),
    _copied("/date", "12/03/2019", 0.88),
    _generated("/total", "number", 0.62),
    _copied("/items/0/name", "GULA 1KG", 0.91),
    _generated("/items/0/amount", "number", 0.45),
    _generated("/items/1/name", "string", 0.04),
    _generated("/items/1/amount", "number", 0.07),
]


def report(
    value: Any = None, *, second: Any = None, values: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """An extraction report as ``ExtractionResult.to_dict()`` writes one (the parts used).

    ``values``: the kept attempt's value traces (none by default, as in an older report).
    """
    value = EXTRACTED if value is None else value
    attempts = [
        {
            "number": 1,
            "valid": True,
            "value": value,
            "findings": [],
            "generation": {},
            "values": values or [],
        },
    ]
    if second is not None:
        attempts.insert(
            0,
            {
                "number": 1,
                "valid": False,
                "value": second,
                "findings": [{"kind": "schema", "path": "/total", "message": "-1 is too small"}],
                "generation": {"reasoning": "first try"},
            },
        )
        attempts[1]["number"] = 2
    return {
        "model": "smollm2-135m",
        "value": value,
        "chosen_attempt": len(attempts),
        "attempts": attempts,
    }


# A receipt with lines wider than a narrow pane and more rows than a short one: its wrap
# depends on the pane's width, and a span in its middle needs scrolling to.
WIDE_ADDRESS = "NO.53 JALAN PUTRA 1, TAMAN SRI PUTRA, 81200 JOHOR BAHRU, JOHOR, MALAYSIA"
MIDDLE_ITEM = "STEEL BOLT M25 x 50MM"


def _bolt(size: int) -> str:
    return f"{f'STEEL BOLT M{size} x 50MM':<30}{size % 7 + 1:>2}   RM {size * 1.5:>6.2f}"


WIDE_RECEIPT = "\n".join(
    [
        "SOON HUAT MACHINERY ENTERPRISE",
        "(JM0352019-K)",
        WIDE_ADDRESS,
        "TEL: 07-5547360   GST REG NO: 001062244864",
        "TAX INVOICE   NO: 18011   DATE: 28/03/2018",
        "-" * 44,
        *(_bolt(size) for size in range(6, 46)),
        "-" * 44,
        "TOTAL INCL. GST                   RM 327.00",
        "THANK YOU, PLEASE COME AGAIN",
        "",
    ]
)
WIDE_SCHEMA: dict[str, Any] = {
    **SCHEMA,
    "properties": {**SCHEMA["properties"], "address": {"type": "string"}},
}
WIDE_EXTRACTED = {
    "company": "SOON HUAT MACHINERY ENTERPRISE",
    "address": WIDE_ADDRESS,
    "date": "28/03/2018",
    "total": 327.0,
    "items": [{"name": MIDDLE_ITEM, "amount": 37.5}],
}
