"""Teacher mode: a stronger model writes document texts and reasoning traces for the data.

Two teachers, one interface (:class:`Teacher`):

* :class:`LlamaCppTeacher`: any local GGUF through the runtime itself. Reasoning
  comes from a real first attempt (``Extractor.extract`` with ``--think``, no
  correction), so the trace is exactly what the runtime would produce; documents
  are written under a grammar for ``{"document": "..."}``, so the reply always parses.
* :class:`EndpointTeacher`: an OpenAI-compatible ``/chat/completions`` endpoint
  (``urllib``, no client library). The reasoning is the reply's ``reasoning_content``
  when the server gives one (DeepSeek-style), else its ``<think>`` block.

Nothing a teacher writes is taken on trust (as in R1 distillation, by rejection):

* a document is kept only when every groundable string of the gold occurs in it,
  as the runtime grounds values; otherwise the synthetic text stays;
* a reasoning trace is kept only when the teacher's own answer matches the gold
  exactly (``metrics.score_document``); otherwise the synthetic trace stays (written
  without quoting the document's wording when the teacher rewrote the document).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from thinkjson_edge.train.data import Example
from thinkjson_edge.train.rewards import load_schema_text
from thinkjson_edge.train.traces import split_completion, synthetic_trace

from thinkjson_edge.errors import TeacherError
from thinkjson_edge.evaluation.metrics import parse_output, score_document
from thinkjson_edge.pipeline.findings import ground_values
from thinkjson_edge.pipeline.grounding import NormalisedText
from thinkjson_edge.pipeline.prompts import extraction_messages

_DOCUMENT_SCHEMA = {
    "type": "object",
    "properties": {"document": {"type": "string", "minLength": 40, "maxLength": 3000}},
    "required": ["document"],
    "additionalProperties": False,
}



@dataclass(frozen=True)
class Answer:
    """A teacher's extraction: its reasoning and its object (None when it wrote none)."""

    reasoning: str | None
    value: dict[str, Any] | None


class Teacher(ABC):
    """Writes document texts and answers extraction prompts."""

    @abstractmethod
    def write_document(self, example: Example) -> str | None: ...

    @abstractmethod
    def answer(self, example: Example) -> Answer: ...

    def close(self) -> None:  # noqa: B027 (nothing to release by default)
        """Release what the teacher holds (a loaded model)."""


def document_request(example: Example) -> list[dict[str, str]]:
    """The conversation asking for a document that states exactly the gold's facts."""
    return [
        {
            "role": "system",
            "content": "You write realistic business and manufacturing documents.",
        },
        {
            "role": "user",
            "content": (
                f"Write a realistic {example.domain.replace('_', ' ') or 'business'} document "
                "(a few lines of prose, lists or tables) that states every fact below, copying "
                "each value exactly as written, and no other value of the same kinds.\n\n"
                f"Facts (JSON):\n{example.gold_text}"
            ),
        },
    ]


class LlamaCppTeacher(Teacher):
    """A local GGUF model run by the runtime (``--model`` rules: a path, a name, ``default``)."""

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        device: str = "auto",
        temperature: float = 0.7,
        seed: int = 0,
        max_think_tokens: int = 512,
        max_document_tokens: int = 1024,
    ) -> None:
        from thinkjson_edge.pipeline.extractor import ExtractOptions, Extractor

        self.options = ExtractOptions(
            think=True,
            self_correct=False,
            temperature=temperature,
            seed=seed,
            max_think_tokens=max_think_tokens,
        )
        self.extractor = Extractor(model, device=device, options=self.options)
        self.max_document_tokens = max_document_tokens

    def write_document(self, example: Example) -> str | None:
        from thinkjson_edge.engine.generation import DecodeLimits
        from thinkjson_edge.grammar.compiler import compile_schema

        engine = self.extractor.engine
        prompt = engine.tokenize(engine.render_chat(document_request(example)))
        grammar = compile_schema(_DOCUMENT_SCHEMA).gbnf(think=False)
        limits = DecodeLimits(
            max_json_tokens=self.max_document_tokens,
            temperature=self.options.temperature,
            seed=self.options.seed,
        )
        generation = engine.generate(prompt, grammar, think=False, limits=limits)
        value = parse_output(generation.json_text)
        return value.get("document") if isinstance(value, dict) else None

    def answer(self, example: Example) -> Answer:
        from thinkjson_edge.pipeline.documents import Document

        result = self.extractor.extract(Document(text=example.text), example.schema)
        first = result.attempts[0]
        return Answer(first.generation.reasoning, first.value)

    def close(self) -> None:
        self.extractor.close()


class EndpointTeacher(Teacher):
    """An OpenAI-compatible chat endpoint, e.g. ``http://localhost:8000/v1``."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        temperature: float = 0.7,
        max_tokens: int = 2048,
        timeout: float = 120.0,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = os.environ.get(api_key_env, "")
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout = timeout

    def chat(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        """The first choice's message of one chat completion."""
        body = json.dumps(
            {
                "model": self.model,
                "messages": messages,
                "temperature": self.temperature,
                "max_tokens": self.max_tokens,
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                reply = json.loads(response.read().decode("utf-8"))
        except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
            raise TeacherError(f"the teacher at {self.url} did not answer usefully: {exc}") from exc
        try:
            return reply["choices"][0]["message"]
        except (KeyError, IndexError, TypeError) as exc:
            raise TeacherError(f"{self.url}: not a chat completion reply: {reply!r:.300}") from exc

    def write_document(self, example: Example) -> str | None:
        content = self.chat(document_request(example)).get("content")
        return content.strip() if isinstance(content, str) and content.strip() else None

    def answer(self, example: Example) -> Answer:
        message = self.chat(extraction_messages(example.schema_text, example.text, think=True))
        content = str(message.get("content") or "")
        reasoning, answer = split_completion(content)
        reasoning = message.get("reasoning_content") or reasoning
        value = parse_output(_strip_fence(answer))
        return Answer(reasoning, value if isinstance(value, dict) else None)


def _strip_fence(text: str) -> str:
    """The JSON inside a Markdown code fence, which chat models often add."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```"):
        stripped = stripped.strip("`").removeprefix("json").strip()
    return stripped


def open_teacher(spec: str, *, model: str | None = None, device: str = "auto") -> Teacher:
    """``http(s)://…`` (an endpoint; ``model`` names the served model) or a GGUF path/name."""
    if spec.startswith(("http://", "https://")):
        if not model:
            raise TeacherError(
                "an endpoint teacher needs --teacher-model (the served model's name)"
            )
        return EndpointTeacher(spec, model)
    return LlamaCppTeacher(None if spec == "default" else spec, device=device)


@dataclass
class TeacherReport:
    """How many teacher outputs were kept and how many rejected."""

    documents_kept: int = 0
    documents_rejected: int = 0
    traces_kept: int = 0
    traces_rejected: int = 0


def grounded_in(example: Example, text: str) -> bool:
    """Whether every groundable string of the gold occurs in ``text``, as the runtime grounds."""
    schema = load_schema_text(example.schema_text)
    return all(
        item.span is not None for item in ground_values(schema, example.gold, NormalisedText(text))
    )


def with_teacher(
    examples: list[Example], teacher: Teacher, *, documents: bool, reasoning: bool
) -> tuple[list[Example], TeacherReport]:
    """The examples with the teacher's documents and/or traces where they pass the checks."""
    report = TeacherReport()
    out = []
    for example in examples:
        if documents:
            text = teacher.write_document(example)
            if text and grounded_in(example, text):
                # The synthetic trace quoted the old text's wording; keep only what holds.
                trace = synthetic_trace(example.schema, example.gold, {})
                example = replace(
                    example, text=text.strip() + "\n", layout="teacher", reasoning=trace
                )
                report.documents_kept += 1
            else:
                report.documents_rejected += 1
        if reasoning:
            answer = teacher.answer(example)
            exact = (
                answer.value is not None and score_document(example.gold, answer.value).exact_match
            )
            if exact and answer.reasoning:
                example = replace(example, reasoning=answer.reasoning.replace("<", "("))
                report.traces_kept += 1
            else:
                report.traces_rejected += 1
        out.append(example)
    return out, report
