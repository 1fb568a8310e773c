"""Extraction on the SROIE development receipts: validity and field exact-match.

    python bench/sroie.py ../shared/data/sroie-dev [--think] [--no-self-correct] [--limit N]

Prints one JSON summary: how many outputs parsed and validated against the schema, and the
share of fields whose value equals the gold exactly, and after normalising whitespace and case.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from thinkjson_edge import Extractor
from thinkjson_edge.pipeline.grounding import normalise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--think", action="store_true")
    parser.add_argument("--max-think-tokens", type=int, default=256)
    parser.add_argument("--no-self-correct", action="store_true")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--model")
    args = parser.parse_args(argv)

    schema_path = args.data_dir / "schema.json"
    documents = sorted(args.data_dir.glob("*.txt"))[: args.limit]
    totals = {"documents": 0, "parsed": 0, "valid": 0, "second_attempts": 0}
    exact = normalised = fields = 0
    started = time.perf_counter()
    with Extractor(args.model, device="cpu") as extractor:
        for index, path in enumerate(documents, 1):
            gold = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            result = extractor.extract(
                path,
                schema_path,
                think=args.think,
                max_think_tokens=args.max_think_tokens,
                self_correct=not args.no_self_correct,
            )
            totals["documents"] += 1
            totals["parsed"] += result.value is not None
            totals["valid"] += result.valid
            totals["second_attempts"] += len(result.attempts) > 1
            value = result.value or {}
            for key, expected in gold.items():
                got = value.get(key)
                fields += 1
                exact += got == expected
                normalised += isinstance(got, str) and normalise(got) == normalise(expected)
            print(f"[{index}/{len(documents)}] {path.name}: {json.dumps(value)}", file=sys.stderr)
    summary = {
        **totals,
        "think": args.think,
        "self_correct": not args.no_self_correct,
        "field_exact_match": round(exact / fields, 4) if fields else None,
        "field_normalised_match": round(normalised / fields, 4) if fields else None,
        "seconds_per_document": round((time.perf_counter() - started) / max(len(documents), 1), 2),
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
