"""How well each way of computing a value's confidence tells right values from wrong ones.

    python bench/confidence.py DATA_DIR [--models smollm2-135m] [--skip N] [--limit N]
        [--device cpu]

Extracts the documents of an eval folder (sorted by name; ``--skip`` and ``--limit`` pick a
slice) with the runtime's defaults, scores every value against the gold, and computes each
candidate confidence from the same values' ``confidence_parts``, so all rows of one model
come from one run. Values the span search did not choose keep the least likely token's
probability in every row. Prints, per formula: AUROC of confidence against the value being
right, ECE over 10 bins, and how many values fall under 0.5 (the default review threshold)
and how many of those are wrong.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from thinkjson_edge import Extractor
from thinkjson_edge.engine.confidence import ConfidenceParts, mean_token_probability
from thinkjson_edge.evaluation.calibration import auroc, expected_calibration_error
from thinkjson_edge.evaluation.dataset import find_dataset, load_gold
from thinkjson_edge.evaluation.metrics import render_path, score_document

Formula = Callable[[ConfidenceParts], float]


def _mean_probability(parts: ConfidenceParts) -> float:
    return mean_token_probability(parts.token_probabilities)


def _searched(formula: Formula) -> Formula:
    """``formula`` for a value the search chose; the least likely token for any other."""

    def confidence(parts: ConfidenceParts) -> float:
        if parts.admitted_mass is None or parts.search_share is None:
            return min(parts.token_probabilities, default=1.0)
        return min(1.0, max(0.0, formula(parts)))

    return confidence


FORMULAS: dict[str, Formula] = {
    "shipped: mass x mean^4": lambda p: p.confidence,
    "before: mass x search share": _searched(lambda p: p.admitted_mass * p.search_share),
    "search share": _searched(lambda p: p.search_share),
    "mean token probability": _searched(_mean_probability),
    "least token probability": _searched(lambda p: min(p.token_probabilities, default=1.0)),
    **{
        f"mass x mean^{power}": _searched(
            lambda p, power=power: p.admitted_mass * _mean_probability(p) ** power
        )
        for power in (1, 2, 8)
    },
}


def collect(
    model: str, data_dir: Path, skip: int, limit: int | None, device: str
) -> list[tuple[ConfidenceParts, bool]]:
    """(confidence parts, equals the gold) for every value of the kept attempts."""
    dataset = find_dataset(data_dir)
    cases = dataset.cases[skip:][:limit]
    pairs = []
    with Extractor(model, device=device) as extractor:
        for number, case in enumerate(cases, 1):
            result = extractor.extract(case.document, dataset.schema_path)
            score = score_document(load_gold(case), result.value)
            outcomes = {leaf.path: leaf.outcome for leaf in score.leaves}
            kept = result.attempts[result.chosen_attempt - 1]
            for trace in kept.generation.values:
                outcome = outcomes.get(render_path(trace.path))
                if trace.confidence_parts is not None and outcome is not None:
                    pairs.append((trace.confidence_parts, outcome == "match"))
            print(f"  {number}/{len(cases)} {case.name}", flush=True)
    return pairs


def report(model: str, pairs: list[tuple[ConfidenceParts, bool]]) -> None:
    correct = [right for _, right in pairs]
    print(f"\n{model}: {len(pairs)} values, {len(pairs) - sum(correct)} wrong")
    print(f"{'formula':30} {'AUROC':>6} {'ECE':>6} {'under 0.5 (wrong)':>18}")
    for name, formula in FORMULAS.items():
        scores = [formula(parts) for parts, _ in pairs]
        under = [right for score, right in zip(scores, correct, strict=True) if score < 0.5]
        area = auroc(scores, correct)
        error = expected_calibration_error(scores, correct)
        print(
            f"{name:30} {area or float('nan'):6.3f} {error or float('nan'):6.3f} "
            f"{len(under):>9} ({len(under) - sum(under)})"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--models", nargs="+", default=["smollm2-135m"])
    parser.add_argument("--skip", type=int, default=0)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    found = {m: collect(m, args.data_dir, args.skip, args.limit, args.device) for m in args.models}
    for model, pairs in found.items():
        report(model, pairs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
