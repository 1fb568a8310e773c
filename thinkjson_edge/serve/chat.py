"""``POST /v1/chat/completions`` in OpenAI's shape, so the official client works unchanged.

The request must carry ``response_format: {"type": "json_schema", "json_schema": {"schema":
...}}``: the schema goes through the one schema check and our compiler, exactly as for
``/v1/extract``. There is no fallback to generic JSON: without a usable schema the answer
is a 400 that says why. The document is the text of the user messages; the extraction
prompt is our own, so system messages are not shown to the model.

What the chat shape cannot say (validity, findings) rides along in ``thinkjson``, a field
OpenAI's client keeps as an extra attribute.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from thinkjson_edge.pipeline.result import ExtractionResult
from thinkjson_edge.serve.problems import ApiError
from thinkjson_edge.serve.responses import findings_with_places, usage

# Budget stops of the engine, answered as OpenAI's "length".
_LENGTH_STOPS = frozenset({"token-limit", "time-limit"})
_UNSUPPORTED = ("tools", "functions", "tool_choice", "function_call", "audio", "prediction")


@dataclass(frozen=True)
class ChatRequest:
    """What a chat completion asks for, in extraction terms."""

    text: str
    schema: Any
    options: dict[str, Any]  # client options, checked later against the server's caps


def parse_chat_request(payload: dict[str, Any], model_name: str) -> ChatRequest:
    """The extraction a chat completion request asks for; ApiError for what we cannot do."""
    model = payload.get("model")
    if model is not None and model != model_name:
        raise ApiError(
            404,
            "model_not_found",
            f"model {model!r} is not served here; this server runs {model_name!r} (GET /v1/models)",
        )
    if payload.get("stream"):
        raise ApiError(
            400,
            "stream_unsupported",
            "streaming chat completions are not offered: with self-correction the kept object "
            "is known only at the end; POST /v1/extract with Accept: text/event-stream streams "
            "the output as it is written",
        )
    if payload.get("n", 1) != 1:
        raise ApiError(400, "invalid_option", '"n" must be 1: one object per document')
    used = [name for name in _UNSUPPORTED if payload.get(name)]
    if used:
        raise ApiError(400, "invalid_option", f"not supported here: {', '.join(used)}")
    return ChatRequest(
        text=_document_text(payload.get("messages")),
        schema=_schema(payload.get("response_format")),
        options=_options(payload),
    )


def completion_body(result: ExtractionResult, model_name: str, request_id: str) -> dict[str, Any]:
    """The result as a ``chat.completion`` object."""
    stop = result.chosen.generation.stop_reason
    content = json.dumps(result.value, ensure_ascii=False)
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_name,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": "length" if stop in _LENGTH_STOPS else "stop",
                "logprobs": None,
            }
        ],
        "usage": usage(result),
        "thinkjson": {"valid": result.valid, "findings": findings_with_places(result)},
    }


def _document_text(messages: Any) -> str:
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "document_missing", '"messages" must be a non-empty list')
    texts = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ApiError(400, "malformed_request", f"messages[{index}] must be an object")
        if message.get("role") == "user":
            texts.append(_message_text(message.get("content"), index))
    text = "\n\n".join(t for t in texts if t)
    if not text.strip():
        raise ApiError(
            400,
            "document_missing",
            "no user message holds text: the document is the text of the user messages",
        )
    return text


def _message_text(content: Any, index: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise ApiError(
                    400,
                    "unsupported_content",
                    f"messages[{index}] holds a {kind!r} part; only text parts are read "
                    "(send a file to POST /v1/extract)",
                )
            parts.append(str(part.get("text", "")))
        return "\n".join(parts)
    raise ApiError(400, "malformed_request", f"messages[{index}].content must be text")


def _schema(response_format: Any) -> Any:
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind != "json_schema":
        raise ApiError(
            400,
            "schema_required",
            'response_format must be {"type": "json_schema", "json_schema": {"name": ..., '
            f'"schema": {{...}}}}}} (got type {kind!r}): extraction always follows a JSON '
            "Schema, never generic JSON",
        )
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict) or "schema" not in spec:
        raise ApiError(400, "schema_required", 'response_format.json_schema needs a "schema"')
    return spec["schema"]


def _options(payload: dict[str, Any]) -> dict[str, Any]:
    """The client's options: ``options`` (as in /v1/extract, e.g. through the client's
    ``extra_body``), then OpenAI's own sampling fields."""
    given = payload.get("options") or {}
    if not isinstance(given, dict):
        raise ApiError(400, "invalid_option", '"options" must be a JSON object')
    options = dict(given)
    budget = payload.get("max_completion_tokens", payload.get("max_tokens"))
    if budget is not None:
        options["max_json_tokens"] = budget
    for name in ("temperature", "seed"):
        if payload.get(name) is not None:
            options[name] = payload[name]
    return options
