"""The extraction pipeline: document -> attempt 1 -> findings -> attempt 2 -> result.

Self-correction follows SCoRe (arXiv 2409.12917): when the first attempt has
findings, a second attempt sees the document, the schema, the first attempt
and what is wrong with it, and is asked to correct it.

Which attempt is kept: the one with the smaller ``Attempt.rank()``, that is a
schema-valid one before an invalid one, then fewer schema errors, then fewer
values not found in the document. On a tie the first attempt is kept: a
correction replaces an answer only when it is measurably better.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from thinkjson_edge.documents import Document, read_document
from thinkjson_edge.engine import DEFAULT_CONTEXT, DecodeLimits, Engine
from thinkjson_edge.findings import (
    INCOMPLETE,
    Finding,
    ground_values,
    grounding_findings,
    schema_findings,
)
from thinkjson_edge.grammar import CompiledGrammar, GrammarLimits, compile_schema
from thinkjson_edge.grounding import NormalisedText
from thinkjson_edge.models import ModelChoice, choose_model
from thinkjson_edge.prompts import correction_messages, extraction_messages
from thinkjson_edge.result import Attempt, ExtractionResult, Generation
from thinkjson_edge.schema import Schema, load_schema

MAX_PROBLEMS_IN_PROMPT = 12  # keeps the correction prompt short on a badly wrong attempt


@dataclass(frozen=True)
class ExtractOptions:
    """How to extract; every field has the CLI's default."""

    think: bool = True
    self_correct: bool = True
    max_think_tokens: int = 256
    max_json_tokens: int = 2048
    temperature: float = 0.0
    seed: int = 0
    grammar_limits: GrammarLimits = field(default_factory=GrammarLimits)

    def decode_limits(self) -> DecodeLimits:
        return DecodeLimits(
            max_think_tokens=self.max_think_tokens,
            max_json_tokens=self.max_json_tokens,
            temperature=self.temperature,
            seed=self.seed,
        )


class Extractor:
    """Loads a model once and extracts from many documents.

    >>> with Extractor() as extractor:                                    # doctest: +SKIP
    ...     result = extractor.extract("receipt.txt", "receipt.schema.json")
    ...     print(result.value)
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        device: str = "auto",
        n_ctx: int = DEFAULT_CONTEXT,
        n_threads: int | None = None,
        options: ExtractOptions | None = None,
    ) -> None:
        self.model: ModelChoice = choose_model(str(model) if model is not None else None)
        self.engine = Engine(self.model.path, device=device, n_ctx=n_ctx, n_threads=n_threads)
        self.options = options or ExtractOptions()
        self._grammars: dict[tuple[str, GrammarLimits], CompiledGrammar] = {}

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
        **overrides: Any,
    ) -> ExtractionResult:
        """Extract one object from ``document`` (a path or a Document) matching ``schema``.

        Keyword arguments override fields of ``ExtractOptions`` for this call.
        """
        options = replace(self.options, **overrides) if overrides else self.options
        started = time.perf_counter()
        if not isinstance(schema, Schema):
            schema = load_schema(schema)
        if not isinstance(document, Document):
            document = read_document(document)
        grammar = self.grammar_for(schema, options.grammar_limits)
        located = NormalisedText(document.text)

        first = self._attempt(
            1,
            extraction_messages(schema.text, document.text, think=options.think),
            schema,
            grammar,
            located,
            options,
        )
        attempts = [first]
        if options.self_correct and first.findings:
            problems = [f.describe() for f in first.findings[:MAX_PROBLEMS_IN_PROMPT]]
            messages = correction_messages(
                schema.text, document.text, first.generation.text, problems, think=options.think
            )
            attempts.append(self._attempt(2, messages, schema, grammar, located, options))
        chosen = min(attempts, key=lambda a: (a.rank(), a.number))
        return ExtractionResult(
            value=chosen.value,
            valid=chosen.valid,
            chosen_attempt=chosen.number,
            attempts=attempts,
            source=document.source,
            model=self.model.name,
            think=options.think,
            load_seconds=self.engine.load_seconds,
            total_seconds=time.perf_counter() - started,
            validation_only=list(grammar.validation_only),
        )

    def grammar_for(self, schema: Schema, limits: GrammarLimits) -> CompiledGrammar:
        """The compiled grammar of a schema, compiled once per schema and limits."""
        key = (schema.text, limits)
        if key not in self._grammars:
            self._grammars[key] = compile_schema(schema.schema, limits)
        return self._grammars[key]

    def _attempt(
        self,
        number: int,
        messages: list[dict[str, str]],
        schema: Schema,
        grammar: CompiledGrammar,
        located: NormalisedText,
        options: ExtractOptions,
    ) -> Attempt:
        prompt = self.engine.tokenize(self.engine.render_chat(messages))
        generation = self.engine.generate(
            prompt,
            grammar.gbnf(think=options.think),
            think=options.think,
            limits=options.decode_limits(),
        )
        value, problem = _parse_object(generation)
        if value is None:
            return Attempt(number, generation, None, [problem] if problem else [], [])
        grounded = ground_values(schema, value, located)
        findings = schema_findings(schema, value) + grounding_findings(grounded)
        return Attempt(number, generation, value, findings, grounded)


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


def _parse_object(generation: Generation) -> tuple[dict[str, Any] | None, Finding | None]:
    try:
        value = json.loads(generation.json_text)
    except json.JSONDecodeError as exc:
        return None, Finding(
            INCOMPLETE,
            "",
            f"the output is not complete JSON ({exc.msg}; stop: {generation.stop_reason})",
        )
    if not isinstance(value, dict):
        return None, Finding(
            INCOMPLETE, "", f"the output is a JSON {type(value).__name__}, not an object"
        )
    return value, None
