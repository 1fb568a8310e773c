"""Several generations sharing one llama.cpp context (engine.parallel), through real
llama.cpp on the real default model (its LoRA adapter included): each must give what it
gives alone, token for token, whatever the others do."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from thinkjson_edge import Document, Extractor
from thinkjson_edge.engine.generation import DecodeLimits, Generation
from thinkjson_edge.engine.llama import Engine
from thinkjson_edge.errors import Cancelled, ModelLoadError
from thinkjson_edge.models.choice import choose_model
from thinkjson_edge.pipeline.prompts import extraction_messages
from thinkjson_edge.schema import Schema, load_schema

pytestmark = pytest.mark.model

SROIE = Path(__file__).resolve().parents[1] / "fixtures" / "sroie"
RECEIPTS = [(SROIE / f"{name}.txt").read_text(encoding="utf-8") for name in ("006", "015", "017")]
RECEIPT_SCHEMA = load_schema(SROIE / "schema.json")
# A value the model would not write by itself: the grammar refuses its own choices.
FORCED_SCHEMA = load_schema(
    {
        "type": "object",
        "properties": {"code": {"const": "QZX-9071-KLM"}, "total": {"type": "string"}},
        "required": ["code", "total"],
        "additionalProperties": False,
    }
)


@pytest.fixture(scope="module")
def together() -> Iterator[Extractor]:
    """Three sequences of 2,048 tokens each."""
    with Extractor(device="cpu", n_ctx=2048, parallel=3) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def extractor() -> Iterator[Extractor]:
    """The same model one generation at a time, with the same context per generation (a
    long document is chunked alike)."""
    with Extractor(device="cpu", n_ctx=2048) as loaded:
        yield loaded


def job(
    extractor: Extractor, text: str, schema: Schema, max_json_tokens: int = 2048
) -> Callable[..., Generation]:
    """A generation of the receipt extraction prompt, to run alone or in a thread."""
    engine = extractor.engine
    prompt = engine.tokenize(
        engine.render_chat(extraction_messages(schema.text, text, think=False))
    )
    grammar = extractor.grammar_for(schema, extractor.options.grammar_limits).gbnf(think=False)
    copy = extractor.copy_request(text, schema, extractor.options)
    limits = DecodeLimits(max_json_tokens=max_json_tokens, span_search=4)
    anchors = (extractor.instruction_end(prompt, schema, think=False),)

    def run(**extra: Any) -> Generation:
        return engine.generate(
            prompt, grammar, think=False, limits=limits, copy=copy, anchors=anchors, **extra
        )

    return run


def in_threads(runs: list[Callable[[], Any]]) -> list[Any]:
    """Each run in its own thread, all started at once; results (or exceptions) in order."""
    results: list[Any] = [None] * len(runs)

    def one(index: int) -> None:
        try:
            results[index] = runs[index]()
        except Exception as error:  # returned, to be asserted on
            results[index] = error

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(runs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_sequences_of_different_lengths_give_what_each_gives_alone(
    extractor: Extractor, together: Extractor
) -> None:
    """Four generations on three sequences: the shorter ones finish first and the waiting
    ones take their sequences; every output is the one-at-a-time output, token for token,
    and every token went through the shared context."""
    cases = [(RECEIPTS[0], 2048), (RECEIPTS[1], 12), (RECEIPTS[2], 2048), (RECEIPTS[0], 24)]
    alone = [job(extractor, text, RECEIPT_SCHEMA, budget)() for text, budget in cases]
    stats = together.engine._parallel.stats
    calls_before = stats.calls
    shared = in_threads([job(together, text, RECEIPT_SCHEMA, budget) for text, budget in cases])
    assert [g.json_text for g in shared] == [g.json_text for g in alone]
    assert [g.generated_tokens for g in shared] == [g.generated_tokens for g in alone]
    assert len({g.generated_tokens for g in shared}) >= 3  # they did end at different times
    assert stats.calls - calls_before >= sum(g.generated_tokens for g in shared)
    # The prefix (instruction and schema) was taken from another sequence, not evaluated.
    assert sum(g.cached_prompt_tokens > 0 for g in shared) >= 3


def test_one_grammar_refusing_while_another_accepts(
    extractor: Extractor, together: Extractor
) -> None:
    """A grammar that forces a value the model would never write (most of its choices are
    refused and masked) beside one that mostly takes the model's first choice."""
    runs = [
        job(together, RECEIPTS[0], FORCED_SCHEMA),
        job(together, RECEIPTS[0], RECEIPT_SCHEMA),
    ]
    alone = [
        job(extractor, RECEIPTS[0], FORCED_SCHEMA)(),
        job(extractor, RECEIPTS[0], RECEIPT_SCHEMA)(),
    ]
    shared = in_threads(runs)
    assert [g.json_text for g in shared] == [g.json_text for g in alone]
    assert '"QZX-9071-KLM"' in shared[0].json_text


def test_a_cancelled_sequence_does_not_disturb_the_others(
    extractor: Extractor, together: Extractor
) -> None:
    seen = []

    def cancel_early(piece: bytes, _reasoning: bool) -> None:
        seen.append(piece)
        if len(seen) == 5:
            raise Cancelled("stopped by the test")

    cancelled = job(together, RECEIPTS[2], RECEIPT_SCHEMA)
    runs = [
        lambda: cancelled(on_piece=cancel_early),
        job(together, RECEIPTS[0], RECEIPT_SCHEMA),
        job(together, RECEIPTS[1], RECEIPT_SCHEMA),
    ]
    shared = in_threads(runs)
    assert isinstance(shared[0], Cancelled)
    alone = [job(extractor, text, RECEIPT_SCHEMA)() for text in RECEIPTS[:2]]
    assert [g.json_text for g in shared[1:]] == [g.json_text for g in alone]
    # Its sequence came back: all three can be held again.
    again = in_threads([job(together, text, RECEIPT_SCHEMA) for text in RECEIPTS])
    assert all(isinstance(g, Generation) for g in again)


def test_whole_extractions_match_one_at_a_time(extractor: Extractor, together: Extractor) -> None:
    """Through the pipeline, second attempts included: values, copied offsets and
    confidences are the same, since every decode call holds one sequence and a prompt is
    cut into the same calls whatever was cached."""
    documents = [Document(text=text, source=f"receipt {n}") for n, text in enumerate(RECEIPTS)]
    alone = [extractor.extract(d, RECEIPT_SCHEMA, think=False) for d in documents]
    shared = in_threads(
        [lambda d=d: together.extract(d, RECEIPT_SCHEMA, think=False) for d in documents]
    )
    assert [r.value for r in shared] == [r.value for r in alone]
    assert [where(r) for r in shared] == [where(r) for r in alone]
    assert [len(r.attempts) for r in shared] == [len(r.attempts) for r in alone]
    assert [[v.confidence for v in r.chosen.values] for r in shared] == [
        [v.confidence for v in r.chosen.values] for r in alone
    ]


def where(result: Any) -> list[tuple[Any, ...]]:
    return [(t.path, t.kind, t.copied, t.start, t.end) for t in result.chosen.values]


def test_the_chunks_of_a_long_document_are_decoded_together(
    extractor: Extractor, together: Extractor
) -> None:
    long_text = "\n".join(RECEIPTS * 2)
    document = Document(text=long_text, source="six receipts")
    alone = extractor.extract(document, RECEIPT_SCHEMA, think=False, self_correct=False)
    calls_before = together.engine._parallel.stats.calls
    shared = together.extract(document, RECEIPT_SCHEMA, think=False, self_correct=False)
    assert alone.chunks >= 2
    assert shared.value == alone.value
    assert [c.attempts[0].generation.json_text for c in shared.chunk_results] == [
        c.attempts[0].generation.json_text for c in alone.chunk_results
    ]
    assert together.engine._parallel.stats.calls > calls_before


def test_too_many_sequences_for_the_memory_are_refused_with_the_largest_that_fits() -> None:
    choice = choose_model()
    with pytest.raises(ModelLoadError, match=r"the largest that fits is --parallel \d+"):
        Engine(choice.path, device="cpu", n_ctx=8192, parallel=1_000_000)
