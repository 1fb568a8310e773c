"""Asking again for labelled optional keys: what it adds, right and wrong, on held-out documents.

    python bench/labelled_keys.py [--model smollm2-135m] [--config default-adapter]
        [--limit N] [--device cpu]

Two sets of the config's synthetic held-out documents (never trained on), each extracted
with ``ask_labelled`` off and on by one loaded model:

- **as drawn**: a field the gold leaves out is not in the text, so an ask happens only
  where the model left out a value the document has;
- **empty labels**: every optional top-level scalar the gold leaves out gets a label line
  with no value ("Operator: to follow", "Operator: n/a", "Operator:"), so any value
  added for it is wrong. Some placeholders are not in the detector's list: the model's
  confidence must keep those out.

Prints per set and setting: mean field match, micro F1, precision, keys asked and kept,
kept values equal to the gold, and values added that the gold does not have.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import replace

from thinkjson_edge.train.config import load_config
from thinkjson_edge.train.data import Example
from thinkjson_edge.train.sources import load_split

from thinkjson_edge import Extractor
from thinkjson_edge.evaluation.metrics import aggregate, normalize_value, score_document
from thinkjson_edge.pipeline.documents import Document
from thinkjson_edge.pipeline.labelled_keys import is_scalar

# What forms print where no value is given; the last two are not in the detector's list.
PLACEHOLDERS = ("", "n/a", "-", "to follow", "see page 2")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--config", default="default-adapter")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    examples = load_split(load_config(args.config)).heldout[: args.limit]
    sets = {"as drawn": examples, "empty labels": [with_empty_labels(e) for e in examples]}
    blanks = sum(e.text != b.text for e, b in zip(examples, sets["empty labels"], strict=True))
    print(f"{len(examples)} held-out documents ({args.config}); {blanks} get empty labels")
    header = f"{'set':13} {'ask':4} {'match %':>8} {'F1':>6} {'prec':>6} {'asked':>6} {'kept':>5}"
    print(f"{header} {'right':>6} {'added':>6} {'s/doc':>6}")
    with Extractor(args.model, device=args.device) as extractor:
        for name, documents in sets.items():
            for ask in (False, True):
                print(f"{name:13} {'on' if ask else 'off':4} {_row(extractor, documents, ask)}")
    return 0


def with_empty_labels(example: Example) -> Example:
    """The example with a label line and no value for each optional scalar the gold lacks."""
    rng = random.Random(example.id)
    schema = example.schema
    lines = [
        f"{key.replace('_', ' ').capitalize()}: {rng.choice(PLACEHOLDERS)}".rstrip()
        for key, subschema in schema["properties"].items()
        if key not in example.gold
        and key not in schema.get("required", [])
        and is_scalar(subschema)
    ]
    if not lines:
        return example
    return replace(example, text=example.text.rstrip("\n") + "\n" + "\n".join(lines) + "\n")


def _row(extractor: Extractor, examples: list[Example], ask: bool) -> str:
    scores = []
    asked = kept = right = added = 0
    started = time.perf_counter()
    for example in examples:
        result = extractor.extract(Document(text=example.text), example.schema, ask_labelled=ask)
        scores.append(score_document(example.gold, result.value))
        chosen = result.chosen
        asked += len(chosen.asked_keys)
        keys = chosen.asked_keys if chosen.asked_kept else ()
        kept += len(keys)
        for key in keys:
            if key not in example.gold:
                added += 1
            elif normalize_value((result.value or {}).get(key)) == normalize_value(
                example.gold[key]
            ):
                right += 1
    seconds = (time.perf_counter() - started) / max(1, len(examples))
    corpus = aggregate(scores)
    micro = corpus.micro
    return (
        f"{corpus.mean_match_pct:8.1f} {micro.f1 or 0:6.3f} {micro.precision or 0:6.3f} "
        f"{asked:6} {kept:5} {right:6} {added:6} {seconds:6.1f}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
