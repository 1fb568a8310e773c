"""A receipt, its schema and an extraction report, shared by the interface's tests."""

from __future__ import annotations

from typing import Any

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


def report(value: Any = None, *, second: Any = None) -> dict[str, Any]:
    """An extraction report as ``ExtractionResult.to_dict()`` writes one (the parts used)."""
    value = EXTRACTED if value is None else value
    attempts = [
        {"number": 1, "valid": True, "value": value, "findings": [], "generation": {}},
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
