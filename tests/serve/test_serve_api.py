"""The endpoints against one real server behind an API key: extraction (plain and streamed),
OpenAI's chat completions through the official client, and every refusal a clear 4xx that
leaves the server up."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest
from serve_process import API_KEY, EXAMPLES, Server

pytestmark = pytest.mark.model

SMALL_SCHEMA = {
    "type": "object",
    "properties": {"total": {"type": "string"}},
    "required": ["total"],
}
SMALL_TEXT = "Invoice 12 from Nordlicht GmbH, total 5.00 EUR, due 2024-05-01."
# Bodies over the server's --max-body-mb 0.25 below.
LARGE_TEXT = "x" * 400_000


@pytest.fixture(scope="module")
def server(server_factory, key_file: Path) -> Server:
    return server_factory("--max-body-mb", "0.25", "--max-pages", "2", key_file=key_file)


def test_extract_a_real_document_uploaded_as_a_file(server: Server) -> None:
    document = (EXAMPLES / "receipt.txt").read_bytes()
    with server.client() as client:
        answer = client.post(
            "/v1/extract",
            files={
                "document": ("receipt.txt", document, "text/plain"),
                "schema": ("receipt.schema.json", (EXAMPLES / "receipt.schema.json").read_bytes()),
                "options": (None, json.dumps({"self_correct": False})),
            },
            headers={"X-Request-Id": "receipt-upload-1"},
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-request-id"] == "receipt-upload-1"
    body = answer.json()
    assert set(body) == {"object", "valid", "findings", "report"}
    assert set(body["object"]) == {"company", "date", "address", "total"}
    text = document.decode()
    for value in body["object"].values():  # copied: every string is a span of the document
        assert " ".join(value.split()) in " ".join(text.split())
    assert body["valid"] is body["report"]["valid"] is True
    assert body["report"]["source"] == "receipt.txt"
    assert body["report"]["attempts"][0]["values"], "values with confidence and offsets"
    for finding in body["findings"]:
        assert {"kind", "path", "message"} <= set(finding)
    # The log has the request's id, and nothing of the document.
    log = server.log()
    assert "request_id=receipt-upload-1 POST /v1/extract status=200" in log
    assert "UNIHAKKA" not in log and "JOHOR" not in log


def test_extract_streams_the_output_then_the_result(server: Server) -> None:
    payload = {"text": SMALL_TEXT, "schema": SMALL_SCHEMA, "options": {"self_correct": False}}
    events = []
    with (
        server.client() as client,
        client.stream(
            "POST", "/v1/extract", json=payload, headers={"Accept": "text/event-stream"}
        ) as answer,
    ):
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in answer.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((kind, json.loads(line.removeprefix("data: "))))
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "started" and kinds[-1] == "result" and "text" in kinds
    written = "".join(data["text"] for kind, data in events if kind == "text")
    result = events[-1][1]
    assert json.loads(written) == result["object"]
    assert result["object"]["total"] in SMALL_TEXT


def test_chat_completions_through_the_openai_client(server: Server) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0)
    model = client.models.list().data[0].id
    completion = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "Extract the invoice."},
            {"role": "user", "content": SMALL_TEXT},
        ],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "invoice", "schema": SMALL_SCHEMA, "strict": True},
        },
        extra_body={"options": {"self_correct": False}},
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    value = json.loads(choice.message.content)
    assert set(value) == {"total"} and value["total"] in SMALL_TEXT
    assert completion.usage.completion_tokens > 0
    assert completion.model_extra["thinkjson"]["valid"] is True


def test_the_openai_client_gets_a_400_saying_why_a_schema_is_unusable(server: Server) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0)
    messages = [{"role": "user", "content": SMALL_TEXT}]
    with pytest.raises(openai.BadRequestError, match="never generic JSON"):
        client.chat.completions.create(
            model="smollm2-135m", messages=messages, response_format={"type": "json_object"}
        )
    with pytest.raises(openai.BadRequestError, match='the root needs "type": "object"'):
        client.chat.completions.create(
            model="smollm2-135m",
            messages=messages,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "s", "schema": {"type": "string"}},
            },
        )
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong-key", max_retries=0).models.list()


def _pdf(pages: int) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for number in range(pages):
        pdf.add_page()
        pdf.text(20, 20, f"Delivery note DN-{number}, total 5.00 EUR")
    return bytes(pdf.output())


def _json(body: object) -> dict:
    return {"content": json.dumps(body), "headers": {"Content-Type": "application/json"}}


@pytest.mark.parametrize(
    ("request_kwargs", "status", "code"),
    [
        pytest.param({"content": b"{not json", "headers": {"Content-Type": "application/json"}},
                     400, "malformed_request", id="malformed-json"),
        pytest.param({"content": b'{"text": "a", "schema": {}, "x": NaN}',
                      "headers": {"Content-Type": "application/json"}},
                     400, "malformed_request", id="nan-is-not-json"),
        pytest.param(_json({"text": LARGE_TEXT, "schema": SMALL_SCHEMA}),
                     413, "body_too_large", id="oversized-body"),
        pytest.param(_json({"text": SMALL_TEXT, "schema": {"type": "object", "minItems": -1}}),
                     400, "schema_unusable", id="schema-breaks-its-metaschema"),
        pytest.param(_json({"text": SMALL_TEXT, "schema": {"type": "array"}}),
                     400, "schema_unusable", id="schema-root-not-an-object"),
        pytest.param(
            _json({"text": SMALL_TEXT, "schema": {
                "type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}}}),
            400, "schema_remote_reference", id="remote-ref",
        ),
        pytest.param(_json({"text": "", "schema": SMALL_SCHEMA}),
                     422, "document_unusable", id="empty-text"),
        pytest.param(_json({"text": SMALL_TEXT, "schema": SMALL_SCHEMA,
                            "options": {"max_json_tokens": 100_000}}),
                     400, "invalid_option", id="budget-over-the-cap"),
        pytest.param(_json({"text": SMALL_TEXT, "schema": SMALL_SCHEMA,
                            "options": {"delete_everything": True}}),
                     400, "invalid_option", id="unknown-option"),
        pytest.param({"content": b"text", "headers": {"Content-Type": "text/plain"}},
                     415, "unsupported_media_type", id="wrong-content-type"),
        pytest.param({"files": {"document": ("tool", b"\x7fELF\x02\x01\x01" + bytes(64)),
                                "schema": (None, json.dumps(SMALL_SCHEMA))}},
                     422, "document_unusable", id="binary-document"),
        pytest.param({"files": {"document": ("notes.pdf", _pdf(3)),
                                "schema": (None, json.dumps(SMALL_SCHEMA))}},
                     413, "document_too_large", id="too-many-pages"),
        pytest.param({"files": {"document": ("a.txt", SMALL_TEXT.encode())}},
                     400, "malformed_request", id="form-without-schema"),
        pytest.param({**_json({"text": SMALL_TEXT, "schema": SMALL_SCHEMA}),
                      "headers": {"Content-Type": "application/json",
                                  "Origin": "https://example.com"}},
                     403, "browser_refused", id="browser-origin"),
    ],
)  # fmt: skip
def test_refusals_are_clear_4xx_and_the_server_stays_up(
    server: Server, request_kwargs: dict, status: int, code: str
) -> None:
    with server.client() as client:
        answer = client.post("/v1/extract", **request_kwargs)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code
    assert error["message"] and "Traceback" not in answer.text
    assert server.is_up()


def test_a_wrong_or_missing_key_is_401_and_health_needs_none(server: Server) -> None:
    for headers in ({"Authorization": "Bearer not-the-key-at-all"}, {}):
        answer = httpx.get(f"{server.url}/v1/models", headers=headers)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "unauthorized"
        assert answer.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
    answer = httpx.get(f"{server.url}/v1/models", headers={"X-API-Key": API_KEY})
    assert answer.status_code == 200


def test_unknown_routes_and_methods_answer_json(server: Server) -> None:
    with server.client() as client:
        assert client.get("/v1/nothing").json()["error"]["code"] == "not_found"
        assert client.get("/v1/extract").json()["error"]["code"] == "method_not_allowed"


def test_metrics_count_requests_latencies_queue_and_tokens(server: Server) -> None:
    with server.client() as client:
        client.post("/v1/extract", **_json({"text": LARGE_TEXT, "schema": SMALL_SCHEMA}))
        text = client.get("/metrics").text
    assert 'thinkjson_requests_total{route="/v1/extract",status="413"}' in text
    assert 'thinkjson_request_seconds_bucket{route="/v1/extract",le="+Inf"}' in text
    for gauge in ("queue_waiting", "queue_running", "queue_capacity", "tokens_per_second"):
        assert f"\nthinkjson_{gauge} " in text
    assert (
        'thinkjson_rejected_total{reason="key"}' in text
        or server.metric('thinkjson_rejected_total{reason="key"}') == 0
    )
