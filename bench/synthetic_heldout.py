"""Field exact match on the synthetic held-out documents, model beside model, through the runtime.

    python bench/synthetic_heldout.py [--config default-adapter]
        [--models smollm2-135m-base smollm2-135m]
        [--limit N] [--device cpu] [--reorder-share S] [--alias-share S]

The held-out documents are the config's ``data.heldout_examples``, drawn from their own seed
(``train.data.heldout_seed``), so training on the same config never sees them. Each document
has its own schema; extraction runs with the runtime's defaults (reasoning on, copied strings,
a second attempt where it applies). ``--reorder-share`` draws them with that share of schemas
and documents out of their domain's field order (``data.reorder_share``; the config's own
by default), for schemas whose fields come in an order training did not favour;
``--alias-share`` likewise sets ``data.alias_share``, the share of fields asked for under
another key and label. Prints one
row per model: mean field match, micro F1, schema-valid share and seconds per document.
"""

from __future__ import annotations

import argparse
import time

from thinkjson_edge.train.config import load_config
from thinkjson_edge.train.sources import load_split

from thinkjson_edge import Extractor
from thinkjson_edge.evaluation.metrics import aggregate, score_document
from thinkjson_edge.pipeline.documents import Document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="default-adapter")
    parser.add_argument("--models", nargs="+", default=["smollm2-135m-base", "smollm2-135m"])
    parser.add_argument("--limit", type=int)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--reorder-share", type=float, help="data.reorder_share of the set")
    parser.add_argument("--alias-share", type=float, help="data.alias_share of the set")
    args = parser.parse_args(argv)

    config = load_config(args.config)
    if args.reorder_share is not None:
        config.data.reorder_share = args.reorder_share
    if args.alias_share is not None:
        config.data.alias_share = args.alias_share
    examples = load_split(config).heldout[: args.limit]
    data = config.data
    shares = f", reorder share {data.reorder_share:g}, alias share {data.alias_share:g}"
    print(f"{len(examples)} held-out synthetic documents ({args.config}{shares})")
    print(f"{'model':40} {'match %':>8} {'F1':>6} {'valid':>7} {'s/doc':>6}")
    for model in args.models:
        scores, valid = [], 0
        started = time.perf_counter()
        with Extractor(model, device=args.device) as extractor:
            for example in examples:
                result = extractor.extract(Document(text=example.text), example.schema)
                scores.append(score_document(example.gold, result.value))
                valid += result.valid
        seconds = (time.perf_counter() - started) / max(1, len(examples))
        corpus = aggregate(scores)
        f1 = corpus.micro.f1 or 0.0
        print(
            f"{extractor.model.describe():40} {corpus.mean_match_pct:8.1f} {f1:6.3f} "
            f"{valid}/{len(examples):<5} {seconds:6.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
