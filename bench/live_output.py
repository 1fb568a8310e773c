"""What the review interface's live output costs the decoder, measured in one run.

    python bench/live_output.py [--model PATH|NAME] [--runs 5]

Extracts the example batch record (reasoning on, greedy, no self-correction) alternately
without a listener and with the listener the interface uses (a cancellation check and an
append to ``LiveOutput``), and reports the median decode tokens/s of each and their ratio.
Greedy decoding makes both write the same tokens, which the script checks.
"""

from __future__ import annotations

import argparse
import statistics
import threading
from pathlib import Path

from thinkjson_edge.errors import Cancelled
from thinkjson_edge.pipeline.extractor import Extractor, TextListener
from thinkjson_edge.tui.model_host import LiveOutput

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "examples" / "batch-record.txt"
SCHEMA = ROOT / "examples" / "batch-record.schema.json"


def live_listener(live: LiveOutput) -> TextListener:
    """The interface's listener: a cancellation check, then an append to the buffer."""
    cancelled = threading.Event()

    def on_text(attempt: int, text: str, reasoning: bool) -> None:
        if cancelled.is_set():
            raise Cancelled("cancelled")
        live.add(attempt, text, reasoning)

    return on_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    speeds: dict[str, list[float]] = {"without listener": [], "with the live output": []}
    texts: dict[str, str] = {}
    with Extractor(args.model, device="cpu") as extractor:
        extractor.extract(DOCUMENT, SCHEMA, self_correct=False)  # warm-up: load, cache
        for _ in range(args.runs):
            for name in speeds:
                listener = live_listener(LiveOutput()) if name != "without listener" else None
                result = extractor.extract(DOCUMENT, SCHEMA, self_correct=False, on_text=listener)
                generation = result.chosen.generation
                speeds[name].append(generation.tokens_per_second)
                texts[name] = generation.text
    assert len(set(texts.values())) == 1, "greedy runs wrote different outputs"
    base = statistics.median(speeds["without listener"])
    for name, values in speeds.items():
        median = statistics.median(values)
        print(f"{name:>22}: {median:6.1f} tok/s  ({median / base:.3f}x)")


if __name__ == "__main__":
    main()
