"""The extraction pipeline: document -> attempt 1 -> findings -> attempt 2 -> result.

Self-correction follows SCoRe (arXiv 2409.12917): when the first attempt has
findings, a second attempt sees the document, the schema, the first attempt
and what is wrong with it, and is asked to correct it.

Which attempt is kept: the one with the smaller ``Attempt.rank()``, that is a
schema-valid one before an invalid one, then fewer schema errors, then fewer
values not found in the document. On a tie the first attempt is kept: a
correction replaces an answer only when it is measurably better.

A document whose first prompt does not fit the model's context (the same test the
engine applies) is split into overlapping chunks (``chunking``); each chunk goes
through the same pipeline, and the chunks' objects are merged by the schema
(``chunk_merge``) and checked like any attempt.
"""

from __future__ import annotations

import codecs
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from thinkjson_edge.copying.automaton import CopyIndex
from thinkjson_edge.engine.generation import (
    BUDGET_STOPS,
    STOP_COMPLETE,
    CopyPolicy,
    CopyRequest,
    DecodeLimits,
    Generation,
    PieceListener,
)
from thinkjson_edge.engine.llama import DEFAULT_CONTEXT, Engine
from thinkjson_edge.engine.prompt_steps import common_prefix
from thinkjson_edge.errors import DocumentTooLongError
from thinkjson_edge.grammar.compiler import CompiledGrammar, GrammarLimits
from thinkjson_edge.models.choice import ModelChoice, choose_model
from thinkjson_edge.pipeline.assessment import MAX_PROBLEMS_IN_PROMPT, assess_output
from thinkjson_edge.pipeline.chunk_merge import ChunkValue, Merged, merge_chunk_values
from thinkjson_edge.pipeline.chunking import Chunk, split_document
from thinkjson_edge.pipeline.concurrently import in_threads
from thinkjson_edge.pipeline.copy_policy import copy_policy
from thinkjson_edge.pipeline.documents import Document, read_document
from thinkjson_edge.pipeline.findings import (
    INCOMPLETE,
    Finding,
    budget_findings,
    copied_spans,
    ground_values,
    grounding_findings,
    review_findings,
    schema_findings,
    shift_grounding,
)
from thinkjson_edge.pipeline.grounding import NormalisedText
from thinkjson_edge.pipeline.labelled_keys import labelled_omissions, with_required
from thinkjson_edge.pipeline.prompts import correction_messages, extraction_messages
from thinkjson_edge.pipeline.result import Attempt, ChunkResult, ExtractionResult
from thinkjson_edge.pipeline.schema_check import usable_grammar
from thinkjson_edge.schema import Schema, load_schema

# Sees the output as it is written: the attempt's number, a piece of text, whether it is
# reasoning (the think tags included) rather than JSON.
TextListener = Callable[[int, str, bool], None]

# Tokens a chunk leaves unused: the document's first and last tokens may merge differently
# with the prompt text around them than when the chunk is counted alone.
CHUNK_SAFETY_MARGIN = 32
MIN_CHUNK_TOKENS = 64  # below this a chunk holds too little text to extract anything from
DEFAULT_SPAN_SEARCH = 4  # see BENCHMARKS.md, "Copied values"
# Under it, 13 of 16 values flagged on training receipts were wrong (BENCHMARKS.md, "Confidence").
DEFAULT_REVIEW_BELOW = 0.5
# A value asked for because its label stands in the document is kept only at this
# confidence or above: a label can stand beside something that is not its value.
LABELLED_KEY_MIN_CONFIDENCE = 0.5
# Wall clock of one attempt (prompt and decoding): minutes of CPU decoding for a large
# object fit well within it; a decoding that cannot end is stopped.
DEFAULT_ATTEMPT_SECONDS = 300.0
# Schemas whose grammar and copy policy an extractor keeps: a long-lived one (the server)
# sees any number of schemas, and must not keep every one.
_SCHEMAS_KEPT = 32


@dataclass(frozen=True)
class ExtractOptions:
    """How to extract; every field has the CLI's default."""

    think: bool = True
    self_correct: bool = True
    # String values may only be spans of the document (see pipeline.copy_policy).
    copy: bool = True
    # Values written with a lower confidence get a ``review`` finding (0 turns this off).
    review_below: float = DEFAULT_REVIEW_BELOW
    # First tokens tried per copied value before one is kept (engine.span_search); 1: greedy.
    span_search: int = DEFAULT_SPAN_SEARCH
    max_think_tokens: int = 256
    max_json_tokens: int = 2048
    temperature: float = 0.0
    seed: int = 0
    grammar_limits: GrammarLimits = field(default_factory=GrammarLimits)
    max_chunks: int = 64  # a document needing more chunks is refused (DocumentTooLongError)
    chunk_overlap_tokens: int = 128  # text neighbouring chunks share (at most half a chunk)
    # Wall clock of one attempt; when it is reached the attempt stops with a ``budget``
    # finding. None or 0: no time limit (the token budget still holds).
    attempt_seconds: float | None = DEFAULT_ATTEMPT_SECONDS
    # Ask again, with the property required, for an optional one the model left out while
    # the document prints its label and a value (see pipeline.labelled_keys).
    ask_labelled: bool = True

    def decode_limits(self) -> DecodeLimits:
        return DecodeLimits(
            max_think_tokens=self.max_think_tokens,
            max_json_tokens=self.max_json_tokens,
            max_seconds=self.attempt_seconds or None,
            temperature=self.temperature,
            seed=self.seed,
            span_search=self.span_search if self.copy else 1,
        )


class Extractor:
    """Loads a model once and extracts from many documents.

    With ``parallel`` above 1, up to that many ``extract`` calls from as many threads decode
    together (see ``engine.parallel``), and the chunks of a long document are decoded so.

    >>> with Extractor() as extractor:                                    # doctest: +SKIP
    ...     result = extractor.extract("receipt.txt", "receipt.schema.json")
    ...     print(result.value)
    """

    def __init__(
        self,
        model: str | Path | ModelChoice | None = None,
        *,
        device: str = "auto",
        n_ctx: int = DEFAULT_CONTEXT,
        n_threads: int | None = None,
        options: ExtractOptions | None = None,
        parallel: int | None = 1,
    ) -> None:
        # A ModelChoice is taken as resolved: a cluster worker runs files placed by the driver.
        self.model: ModelChoice = (
            model
            if isinstance(model, ModelChoice)
            else choose_model(str(model) if model is not None else None)
        )
        self.engine = Engine(
            self.model.path, adapter=self.model.adapter, device=device, n_ctx=n_ctx,
            n_threads=n_threads, parallel=parallel,
        )  # fmt: skip
        self._adapter_record = self.model.adapter_record()
        self.options = options or ExtractOptions()
        self._grammars: dict[tuple[str, GrammarLimits], CompiledGrammar] = {}
        self._copy_policies: dict[str, CopyPolicy] = {}
        self._caches = threading.Lock()  # extract may be called from several threads

    @property
    def parallel(self) -> int:
        """How many extractions may decode at once."""
        return self.engine.parallel

    def __enter__(self) -> Extractor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.engine.close()

    def extract(
        self,
        document: str | Path | Document,
        schema: str | Path | dict[str, Any] | Schema,
        *,
        on_text: TextListener | None = None,
        **overrides: Any,
    ) -> ExtractionResult:
        """Extract one object from ``document`` (a path or a Document) matching ``schema``.

        ``on_text(attempt, text, reasoning)`` sees the output as it is written (for a live
        view); an exception it raises, such as ``Cancelled``, stops the extraction. Other
        keyword arguments override fields of ``ExtractOptions`` for this call.
        """
        options = replace(self.options, **overrides) if overrides else self.options
        started = time.perf_counter()
        if not isinstance(schema, Schema):
            schema = load_schema(schema)
        if not isinstance(document, Document):
            document = read_document(document)
        grammar = self.grammar_for(schema, options.grammar_limits)
        prompt = self._prompt(extraction_messages(schema.text, document.text, think=options.think))
        if not self._fits(len(prompt), options):
            chunks = self._chunks(document, schema, options, len(prompt))
            return self._extract_chunked(
                document, chunks, schema, grammar, options, started, on_text
            )
        located = NormalisedText(document.text)

        attempts, skipped = self._pipeline(
            document.text, prompt, schema, grammar, located, options, on_text
        )
        chosen = min(attempts, key=lambda a: (a.rank(), a.number))
        return self._result(
            chosen, attempts, document, options, grammar, started, correction_skipped=skipped
        )

    def _result(
        self,
        chosen: Attempt,
        attempts: list[Attempt],
        document: Document,
        options: ExtractOptions,
        grammar: CompiledGrammar,
        started: float,
        **details: Any,
    ) -> ExtractionResult:
        """The result that keeps ``chosen``; ``details`` are the chunk or correction fields."""
        return ExtractionResult(
            value=chosen.value,
            valid=chosen.valid,
            chosen_attempt=chosen.number,
            attempts=attempts,
            source=document.source,
            layout=document.layout,
            reading_notes=document.notes,
            model=self.model.name,
            adapter=self._adapter_record,
            think=options.think,
            load_seconds=self.engine.load_seconds,
            total_seconds=time.perf_counter() - started,
            validation_only=list(grammar.validation_only),
            **details,
        )

    def grammar_for(self, schema: Schema, limits: GrammarLimits) -> CompiledGrammar:
        """The compiled grammar of a schema, compiled once per schema and limits."""
        key = (schema.text, limits)
        with self._caches:
            if key not in self._grammars:
                _make_room(self._grammars)
                self._grammars[key] = usable_grammar(schema, limits)  # or SchemaError, exit 3
            return self._grammars[key]

    def copy_request(
        self, text: str, schema: Schema, options: ExtractOptions
    ) -> CopyRequest | None:
        """What to copy from ``text`` (None with copying off); the index is built per text."""
        if not options.copy:
            return None
        with self._caches:
            if schema.text not in self._copy_policies:
                _make_room(self._copy_policies)
                self._copy_policies[schema.text] = copy_policy(schema)
            policy = self._copy_policies[schema.text]
        return CopyRequest(CopyIndex(text), policy)

    def chunk_budget(self, schema: Schema, options: ExtractOptions) -> int:
        """Tokens of document one chunk may hold, so that its prompt and answer fit the context.

        The context less the prompt around an empty document, the reasoning budget, a
        reserve for the JSON (``max_json_tokens``, at most a quarter of the context), the
        closing reserve and a safety margin. The JSON reserve also leaves room for a
        second attempt's longer prompt.
        """
        limits = options.decode_limits()
        think = limits.max_think_tokens if options.think else 0
        json_reserve = min(limits.max_json_tokens, self.engine.n_ctx // 4)
        reserved = think + json_reserve + limits.closing_reserve + CHUNK_SAFETY_MARGIN
        return self.engine.n_ctx - self._prompt_around(schema, options) - reserved

    def _prompt_around(self, schema: Schema, options: ExtractOptions) -> int:
        """Tokens of the first prompt with an empty document."""
        return len(self._empty_document_prompt(schema, think=options.think))

    def _empty_document_prompt(self, schema: Schema, *, think: bool) -> list[int]:
        return self._prompt(extraction_messages(schema.text, "", think=think))

    def _extract_chunked(
        self,
        document: Document,
        chunks: list[Chunk],
        schema: Schema,
        grammar: CompiledGrammar,
        options: ExtractOptions,
        started: float,
        on_text: TextListener | None,
    ) -> ExtractionResult:
        """Extract from each chunk of a document too long for the context, then merge
        (chunks are independent: with ``parallel``, they are extracted at once)."""
        records = in_threads(
            lambda chunk: self._extract_chunk(chunk, schema, grammar, options, on_text),
            chunks,
            width=self.parallel,
        )
        merged = merge_chunk_values(
            schema.schema,
            [
                ChunkValue(chunk, record.chosen.value)
                for chunk, record in zip(chunks, records, strict=True)
                if record.chosen.value is not None
            ],
        )
        attempt = _merged_attempt(schema, merged, records, NormalisedText(document.text))
        return self._result(
            attempt,
            [attempt],
            document,
            options,
            grammar,
            started,
            chunks=len(chunks),
            chunk_results=records,
        )

    def _chunks(
        self, document: Document, schema: Schema, options: ExtractOptions, prompt_tokens: int
    ) -> list[Chunk]:
        """The chunks of a document whose first prompt is ``prompt_tokens`` long."""
        budget = self.chunk_budget(schema, options)
        context = f"the model's context holds {self.engine.n_ctx} tokens"
        if budget < MIN_CHUNK_TOKENS:
            raise DocumentTooLongError(
                f"the document is too long for the context, and it cannot be split: {context}, "
                f"and the prompt, schema and decoding budgets leave {max(budget, 0)} tokens of "
                "it for the document; use a model with a longer context or a smaller schema"
            )
        document_tokens = prompt_tokens - self._prompt_around(schema, options)
        if document_tokens > options.max_chunks * budget:  # refused before any splitting
            raise DocumentTooLongError(
                f"the document is {document_tokens} tokens; {context}, which leaves {budget} "
                f"tokens of document per chunk, so it needs more than {options.max_chunks} "
                "chunks (the limit, max_chunks); shorten the document or use a model with a "
                "longer context"
            )
        try:
            return split_document(
                document.text,
                budget,
                lambda text: len(self.engine.tokenize(text)),
                overlap=options.chunk_overlap_tokens,
                max_chunks=options.max_chunks,
            )
        except DocumentTooLongError as error:
            raise DocumentTooLongError(f"{error} ({context})") from error

    def _extract_chunk(
        self,
        chunk: Chunk,
        schema: Schema,
        grammar: CompiledGrammar,
        options: ExtractOptions,
        on_text: TextListener | None,
    ) -> ChunkResult:
        prompt = self._prompt(extraction_messages(schema.text, chunk.text, think=options.think))
        attempts, skipped = self._pipeline(
            chunk.text, prompt, schema, grammar, NormalisedText(chunk.text), options, on_text
        )
        # Grounding was done in the chunk; report it at offsets in the whole document.
        attempts = [
            replace(
                a,
                grounding=shift_grounding(a.grounding, chunk.start),
                generation=replace(
                    a.generation,
                    values=tuple(trace.shifted(chunk.start) for trace in a.generation.values),
                ),
            )
            for a in attempts
        ]
        chosen = min(attempts, key=lambda a: (a.rank(), a.number))
        return ChunkResult(
            chunk.number, chunk.start, chunk.end, chunk.tokens, attempts, chosen.number, skipped
        )

    def _pipeline(
        self,
        text: str,
        prompt: list[int],
        schema: Schema,
        grammar: CompiledGrammar,
        located: NormalisedText,
        options: ExtractOptions,
        on_text: TextListener | None = None,
    ) -> tuple[list[Attempt], bool]:
        """Attempt 1, then attempt 2 if it has findings; and whether attempt 2 was skipped.

        The second prompt holds the first answer too; when it would not fit the context,
        the correction is skipped (and reported) rather than failing the whole extraction.
        """
        copy = self.copy_request(text, schema, options)
        instruction_end = self.instruction_end(prompt, schema, think=options.think)
        first = self._attempt(
            1, prompt, (instruction_end,), schema, grammar, located, options, copy, on_text
        )
        out_of_budget = first.generation.stop_reason in BUDGET_STOPS  # a second one would be
        if not (options.self_correct and first.correctable) or out_of_budget:
            return [first], False
        problems = [f.describe() for f in first.correctable[:MAX_PROBLEMS_IN_PROMPT]]
        correction = self._prompt(
            correction_messages(
                schema.text, text, first.generation.text, problems, think=options.think
            )
        )
        if not self._fits(len(correction), options):
            return [first], True
        # Cut where the first prompt ends too, so that its cache is reused whole.
        anchors = (instruction_end, len(prompt))
        second = self._attempt(
            2, correction, anchors, schema, grammar, located, options, copy, on_text
        )
        return [first, second], False

    def instruction_end(self, prompt: list[int], schema: Schema, *, think: bool) -> int:
        """Where the instruction and schema end in a first prompt (where it and an empty
        document's prompt part): the anchor at which its evaluation is cut, so that every
        document over one schema reuses them."""
        return common_prefix(prompt, self._empty_document_prompt(schema, think=think))

    def _prompt(self, messages: list[dict[str, str]]) -> list[int]:
        return self.engine.tokenize(self.engine.render_chat(messages))

    def _fits(self, prompt_tokens: int, options: ExtractOptions) -> bool:
        """Whether the engine accepts a prompt this long: the test in ``Engine.generate``."""
        return self.engine.fits(prompt_tokens, options.decode_limits(), think=options.think)

    def _attempt(
        self,
        number: int,
        prompt: list[int],
        anchors: tuple[int, ...],
        schema: Schema,
        grammar: CompiledGrammar,
        located: NormalisedText,
        options: ExtractOptions,
        copy: CopyRequest | None,
        on_text: TextListener | None = None,
    ) -> Attempt:
        on_piece = _piece_decoder(number, on_text) if on_text else None
        generation = self._decode(prompt, anchors, grammar, options, copy, on_piece)
        attempt = self._judged(number, generation, schema, located, options)
        if options.ask_labelled:
            attempt = self._with_labelled_keys(
                attempt, prompt, anchors, schema, located, options, copy
            )
        return attempt

    def _with_labelled_keys(
        self,
        attempt: Attempt,
        prompt: list[int],
        anchors: tuple[int, ...],
        schema: Schema,
        located: NormalisedText,
        options: ExtractOptions,
        copy: CopyRequest | None,
    ) -> Attempt:
        """The attempt decoded again with its labelled omissions required, where the model is
        sure of every value it then writes and the result is no worse; else the attempt, with
        the keys it was asked for noted."""
        if attempt.value is None or attempt.generation.stop_reason != STOP_COMPLETE:
            return attempt  # a decoding stopped by a budget or a loop would stop so again
        keys = labelled_omissions(schema.schema, attempt.value, located.text)
        if not keys:
            return attempt
        asking = self.grammar_for(
            load_schema(with_required(schema.schema, keys)), options.grammar_limits
        )
        generation = self._decode(prompt, anchors, asking, options, copy)
        asked = self._judged(attempt.number, generation, schema, located, options)
        sure = {
            trace.path[0]
            for trace in generation.values
            if len(trace.path) == 1 and trace.confidence >= LABELLED_KEY_MIN_CONFIDENCE
        }
        kept = asked.value is not None and asked.rank() <= attempt.rank() and set(keys) <= sure
        return replace(asked if kept else attempt, asked_keys=tuple(keys), asked_kept=kept)

    def _decode(
        self,
        prompt: list[int],
        anchors: tuple[int, ...],
        grammar: CompiledGrammar,
        options: ExtractOptions,
        copy: CopyRequest | None,
        on_piece: PieceListener | None = None,
    ) -> Generation:
        """One decoding of ``prompt`` under ``grammar`` with the options' limits."""
        return self.engine.generate(
            prompt,
            grammar.gbnf(think=options.think),
            think=options.think,
            limits=options.decode_limits(),
            on_piece=on_piece,
            copy=copy,
            anchors=anchors,
        )

    def _judged(
        self,
        number: int,
        generation: Generation,
        schema: Schema,
        located: NormalisedText,
        options: ExtractOptions,
    ) -> Attempt:
        """The attempt of a generation: its object and findings."""
        value, findings, grounded = assess_output(
            generation.json_text,
            generation.stop_reason,
            schema,
            located,
            copied_spans(generation.values),
        )
        if value is not None and options.review_below > 0:
            findings += review_findings(generation.values, options.review_below)
        limits = options.decode_limits()
        findings = (
            budget_findings(
                generation.stop_reason,
                max_json_tokens=limits.max_json_tokens,
                max_seconds=limits.max_seconds,
            )
            + findings
        )
        return Attempt(number, generation, value, findings, grounded)


class LazyExtractor:
    """An ``Extractor`` made on first use, so work that needs no model loads none.

    Batch and eval skip what is already done; the interface loads in a worker thread.
    """

    def __init__(
        self,
        model: str | Path | None,
        device: str = "auto",
        options: ExtractOptions | None = None,
        *,
        parallel: int | None = 1,
    ) -> None:
        self.model = model
        self.device = device
        self.options = options or ExtractOptions()
        self.parallel = parallel
        self._extractor: Extractor | None = None

    @property
    def loaded(self) -> bool:
        return self._extractor is not None

    def get(self) -> Extractor:
        if self._extractor is None:
            self._extractor = Extractor(
                self.model, device=self.device, options=self.options, parallel=self.parallel
            )
        return self._extractor

    def close(self) -> None:
        if self._extractor is not None:
            self._extractor.close()
            self._extractor = None

    def __enter__(self) -> LazyExtractor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _make_room(kept: dict[Any, Any]) -> None:
    """Drop the oldest entry of a per-schema cache that is full (dicts keep insertion order)."""
    if len(kept) >= _SCHEMAS_KEPT:
        del kept[next(iter(kept))]


def _piece_decoder(attempt: int, on_text: TextListener) -> PieceListener:
    """The engine's byte pieces as text for ``on_text`` (a character may span two tokens)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def on_piece(piece: bytes, reasoning: bool) -> None:
        if text := decoder.decode(piece):
            on_text(attempt, text, reasoning)

    return on_piece


def extract(
    document: str | Path | Document,
    schema: str | Path | dict[str, Any] | Schema,
    *,
    model: str | Path | None = None,
    device: str = "auto",
    **options: Any,
) -> ExtractionResult:
    """Extract one object with a model loaded for this call only (use Extractor for many)."""
    with Extractor(model, device=device) as extractor:
        return extractor.extract(document, schema, **options)


def _merged_attempt(
    schema: Schema, merged: Merged, records: list[ChunkResult], located: NormalisedText
) -> Attempt:
    """The merged object as an attempt: checked against the schema and the whole document."""
    generation = _combined_generation(
        [a.generation for record in records for a in record.attempts],
        json.dumps(merged.value, ensure_ascii=False) if merged.value is not None else "",
    )
    if merged.value is None:
        problem = Finding(INCOMPLETE, "", "no chunk gave a complete JSON object")
        return Attempt(1, generation, None, [problem], [])
    grounded = ground_values(schema, merged.value, located)
    findings = (
        schema_findings(schema, merged.value) + grounding_findings(grounded) + merged.conflicts
    )
    return Attempt(1, generation, merged.value, findings, grounded)


def _combined_generation(generations: list[Generation], json_text: str) -> Generation:
    """The costs of every chunk's generations together, for the merged object."""
    return Generation(
        text=json_text,
        reasoning=None,
        json_text=json_text,
        stop_reason="merged",
        think_stop_reason=None,
        prompt_tokens=sum(g.prompt_tokens for g in generations),
        cached_prompt_tokens=sum(g.cached_prompt_tokens for g in generations),
        generated_tokens=sum(g.generated_tokens for g in generations),
        think_tokens=sum(g.think_tokens for g in generations),
        prompt_seconds=sum(g.prompt_seconds for g in generations),
        first_token_seconds=generations[0].first_token_seconds if generations else 0.0,
        decode_seconds=sum(g.decode_seconds for g in generations),
        dropped_items=sum(g.dropped_items for g in generations),
    )
