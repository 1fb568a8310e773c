"""Training data: the synthetic generator, reasoning traces, data files, configs, teachers.

Pure Python except where marked ``model`` (the real default model through llama.cpp).
The OpenAI-compatible teacher is exercised against a small local HTTP server: no real
endpoint can be reached from the test machines.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from thinkjson_edge.train.config import config_from_dict, load_config
from thinkjson_edge.train.data import (
    Example,
    GeneratorOptions,
    example_at,
    generate,
    train_and_heldout,
)
from thinkjson_edge.train.datasets_io import read_examples, write_examples
from thinkjson_edge.train.domains import DOMAIN_NAMES, DOMAINS, domain_named
from thinkjson_edge.train.layouts import LAYOUTS
from thinkjson_edge.train.prompting import attempt_findings, problems
from thinkjson_edge.train.rewards import load_schema_text
from thinkjson_edge.train.teacher import (
    EndpointTeacher,
    LlamaCppTeacher,
    TeacherError,
    with_teacher,
)
from thinkjson_edge.train.traces import completion_text, split_completion

from thinkjson_edge.cli import main
from thinkjson_edge.errors import ConfigError, DatasetFormatError
from thinkjson_edge.evaluation.metrics import flatten
from thinkjson_edge.grammar.compiler import THINK_CLOSE, THINK_OPEN, compile_schema
from thinkjson_edge.pipeline.findings import ground_values
from thinkjson_edge.pipeline.grounding import NormalisedText
from thinkjson_edge.pipeline.prompts import extraction_messages

MANY = generate(120, GeneratorOptions(seed=7))


# --- the generator ---------------------------------------------------------------


def test_the_same_seed_gives_the_same_examples_and_each_index_stands_alone() -> None:
    options = GeneratorOptions(seed=3)
    assert generate(10, options) == generate(10, options)
    assert generate(4, options) == generate(10, options)[:4]  # a larger set extends a smaller
    assert example_at(9, options) == generate(10, options)[9]
    assert generate(10, GeneratorOptions(seed=4)) != generate(10, options)


def test_held_out_examples_come_from_another_seed() -> None:
    split = train_and_heldout(20, 20, GeneratorOptions(seed=0))
    train_texts = {e.text for e in split.train}
    assert len(split.train) == len(split.heldout) == 20
    assert not train_texts & {e.text for e in split.heldout}


def test_every_domain_and_layout_occurs() -> None:
    assert {e.domain for e in MANY} == set(DOMAIN_NAMES)
    assert {e.layout for e in MANY} == set(LAYOUTS)
    assert {"batch_record", "deviation", "certificate_of_analysis"} <= set(DOMAIN_NAMES)
    assert {"invoice", "contract"} <= set(DOMAIN_NAMES)


def _types(schema: dict[str, Any]) -> set[str]:
    """The kinds of subschema a schema contains (nested ones included)."""
    found: set[str] = set()
    for sub in schema.get("properties", {}).values():
        if sub.get("type") == "object":
            found |= {"nested object"} | _types(sub)
        elif sub.get("type") == "array":
            found |= {"array of objects"} | _types(sub["items"])
        elif "enum" in sub:
            found.add("enum")
        elif sub.get("format") == "date":
            found.add("date")
        else:
            found.add(sub["type"])
    return found


def test_schemas_vary_in_shape() -> None:
    kinds = set().union(*(_types(e.schema) for e in MANY))
    assert {"nested object", "array of objects", "enum", "date", "number", "integer"} <= kinds
    assert {"boolean", "string"} <= kinds
    # Optional fields: some schemas name a field that the gold (and the text) leave out.
    assert any(set(e.schema["properties"]) - set(e.gold) for e in MANY)
    assert any(set(e.schema["properties"]) == set(e.gold) for e in MANY)


def test_schemas_and_documents_leave_the_domain_order_only_when_asked() -> None:
    """A model that always sees one order learns to close the object after its last field."""
    assert all(_in_domain_order(e.domain, list(e.schema["properties"])) for e in MANY)
    shuffled = generate(120, GeneratorOptions(seed=7, reorder_share=0.5))
    schema_orders = [_in_domain_order(e.domain, list(e.schema["properties"])) for e in shuffled]
    assert any(schema_orders) and not all(schema_orders)
    # Where the text is read, top-level strings appear now in the schema's order, now not.
    text_orders = []
    for example in shuffled:
        strings = [v for v in example.gold.values() if isinstance(v, str) and len(v) > 3]
        places = [example.text.find(v) for v in strings]
        if len(strings) >= 3 and min(places) >= 0:
            text_orders.append(places == sorted(places))
    assert any(text_orders) and not all(text_orders)


def test_fields_go_by_their_aliases_only_when_asked() -> None:
    """Sites name one value many ways: the key and the printed label change together."""
    aliased = {alias for d in DOMAINS for f in d.fields for alias, _ in f.aliases}
    assert aliased and not any(aliased & set(e.schema["properties"]) for e in MANY)
    renamed = generate(120, GeneratorOptions(seed=7, alias_share=1.0))
    seen = 0
    for example in renamed:
        fields = domain_named(example.domain).fields
        for spec in (f for f in fields if f.aliases):
            assert spec.name not in example.schema["properties"]
            for alias, label in spec.aliases:
                if alias in example.gold and isinstance(example.gold[alias], str):
                    assert alias in example.schema["properties"]
                    assert example.gold[alias] in example.text
                    if example.layout in ("key_value", "form"):
                        assert label in example.text
                    seen += 1
        assert not load_schema_text(example.schema_text).errors(example.gold)
    assert seen >= 10


def _in_domain_order(domain: str, names: list[str]) -> bool:
    order = [f.name for f in domain_named(domain).fields]
    return [order.index(n) for n in names] == sorted(order.index(n) for n in names)


def test_every_gold_is_valid_against_its_schema() -> None:
    for example in MANY:
        schema = load_schema_text(example.schema_text)
        assert schema.errors(example.gold) == [], example.id


def test_every_gold_string_is_found_in_the_text_as_the_runtime_grounds_it() -> None:
    for example in MANY:
        schema = load_schema_text(example.schema_text)
        grounded = ground_values(schema, example.gold, NormalisedText(example.text))
        assert grounded, example.id
        assert all(item.span is not None for item in grounded), (example.id, example.text)


def test_fields_left_out_of_the_gold_are_not_written_in_the_text() -> None:
    example = next(
        e for e in MANY if "due_date" in e.schema["properties"] and "due_date" not in e.gold
    )
    assert "Payment due" not in example.text


def test_layouts_look_like_their_names() -> None:
    by_layout = {e.layout: e.text for e in reversed(MANY)}
    assert "| --- |" in by_layout["table"]
    assert by_layout["email"].startswith("From: ")
    assert "==" in by_layout["form"]
    assert ": " in by_layout["key_value"]
    assert by_layout["prose"].count(".") >= 3


def test_some_documents_carry_distractor_values_that_are_not_in_the_gold() -> None:
    markers = ("Printed on", "Previous batch", "last month's total", "Supersedes reference")
    noisy = [e for e in MANY if any(m in e.text for m in markers)]
    assert len(noisy) >= 20
    for example in noisy:
        line = next(line for line in example.text.splitlines() if any(m in line for m in markers))
        assert not any(str(v) in line for v in flatten(example.gold).values() if len(str(v)) > 4)


def test_ocr_layout_garbles_labels_but_never_values() -> None:
    ocr = [e for e in MANY if e.layout == "ocr"]
    assert ocr
    clean = GeneratorOptions(seed=7, layouts=("key_value",))
    garbled = sum(
        example.text != example_at(int(example.id.rsplit("-", 1)[1]), clean).text for example in ocr
    )
    assert garbled  # labels differ from the clean rendering...
    for example in ocr:  # ...while every value stays findable (checked for all above)
        schema = load_schema_text(example.schema_text)
        assert all(
            g.span for g in ground_values(schema, example.gold, NormalisedText(example.text))
        )


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown domain"):
        GeneratorOptions(domains=("recipes",))
    with pytest.raises(ValueError, match="unknown layouts"):
        GeneratorOptions(layouts=("poem",))
    with pytest.raises(ValueError, match="reorder_share"):
        GeneratorOptions(reorder_share=1.5)
    with pytest.raises(ValueError, match="alias_share"):
        GeneratorOptions(alias_share=-0.1)
    small = generate(30, GeneratorOptions(max_fields=2, max_items=1, domains=("invoice",)))
    assert all(len(e.schema["properties"]) <= 2 for e in small)
    assert all(e.domain == "invoice" for e in small)


# --- reasoning traces ------------------------------------------------------------


def test_a_trace_names_every_field_and_how_the_text_writes_it() -> None:
    example = next(e for e in MANY if "items" in e.gold and "due_date" not in e.gold)
    trace = example.reasoning or ""
    assert "<" not in trace
    assert "items[0].description: the document gives" in trace
    if "due_date" in example.schema["properties"]:
        assert "due_date: not in the document" in trace
    dated = next(
        e for e in MANY if "written" not in (e.reasoning or "") and "writes" in (e.reasoning or "")
    )
    assert "so " in (dated.reasoning or "")


def test_the_sft_target_has_the_runtime_output_shape() -> None:
    example = MANY[0]
    text = completion_text(example.reasoning, example.gold, think=True)
    assert text.startswith(THINK_OPEN)
    reasoning, answer = split_completion(text)
    assert reasoning == (example.reasoning or "").strip()
    assert json.loads(answer) == example.gold
    assert THINK_CLOSE + answer == text[text.index(THINK_CLOSE) :]
    assert completion_text(None, {"a": 1}, think=False) == '{"a": 1}'
    assert (
        "<"
        not in completion_text("a <b> c", {}, think=True)
        .removeprefix(THINK_OPEN)
        .split("</think>")[0]
    )


@pytest.mark.model
def test_the_runtime_grammar_admits_every_sft_target(extractor) -> None:
    for example in MANY[:12]:
        grammar = compile_schema(example.schema).gbnf(think=True)
        target = completion_text(example.reasoning, example.gold, think=True)
        assert extractor.engine.grammar_accepts(grammar, target), example.id


# --- attempt findings, as the runtime makes them ---------------------------------


def test_attempt_findings_match_the_runtimes_wording() -> None:
    example = next(e for e in MANY if e.domain == "deviation")
    cut = attempt_findings(example, '{"deviation_id": "DEV', "truncated")
    assert [f.describe() for f in cut] == [
        "(root): the output is not complete JSON (Unterminated string starting at; stop: truncated)"
    ]
    listed = attempt_findings(example, "[1, 2]", "complete")
    assert listed[0].message == "the output is a JSON list, not an object"
    wrong = {**example.gold, "deviation_id": "DEV-0000", "severity": "unknown"}
    found = attempt_findings(example, json.dumps(wrong), "complete")
    kinds = {f.kind for f in found}
    assert kinds == {"schema", "not-grounded"}
    assert any("'unknown' is not one of" in line for line in problems(found))
    assert "/deviation_id: 'DEV-0000' does not occur in the document" in problems(found)
    assert attempt_findings(example, example.gold_text, "complete") == []
    many = [f"problem {i}" for i in range(30)]
    assert len(problems([type(found[0])("schema", "", m) for m in many])) == 12


# --- data files ------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_examples_round_trip_through_every_format(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"data{suffix}"
    assert write_examples(MANY[:5], path) == 5
    assert read_examples(path) == MANY[:5]
    assert read_examples(path, limit=2) == MANY[:2]


def test_the_published_column_layout_is_read(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"id": {"type": "string"}}}
    rows = [
        {
            "Text": "Report id A-1",
            "Blank Schema": json.dumps(schema),
            "Filled Schema": json.dumps({"id": "A-1"}),
            "Response": '<think>\nThe id is A-1.\n</think>\n{"id": "A-1"}',
        },
        {
            "unstructured_text": "Report id B-2",
            "json_schema": schema,
            "structured_json": {"id": "B-2"},
        },
    ]
    path = tmp_path / "published.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    first, second = read_examples(path)
    assert (first.text, first.gold, first.reasoning) == (
        "Report id A-1",
        {"id": "A-1"},
        "The id is A-1.",
    )
    assert first.schema == schema
    assert (second.gold, second.reasoning, second.id) == ({"id": "B-2"}, None, "published-2")


def test_unreadable_data_files_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(DatasetFormatError, match="no such data file"):
        read_examples(tmp_path / "missing.jsonl")
    bad_suffix = tmp_path / "data.txt"
    bad_suffix.write_text("x", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match="unknown data format"):
        read_examples(bad_suffix)
    missing = tmp_path / "missing-column.jsonl"
    missing.write_text(json.dumps({"text": "t", "schema": "{}"}) + "\n", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match=r"missing-column.jsonl:1: no object column"):
        read_examples(missing)
    broken = tmp_path / "broken.csv"
    write_examples(MANY[:1], broken)
    broken.write_text(
        broken.read_text(encoding="utf-8").replace('"{""type""', '"{type', 1), encoding="utf-8"
    )
    with pytest.raises(DatasetFormatError, match="the schema is not JSON"):
        read_examples(broken)


# --- configs ---------------------------------------------------------------------


def test_the_packaged_configs_load() -> None:
    smoke = load_config("cpu-smoke")
    gpu = load_config("gpu-qwen2.5-1.5b")
    assert smoke.base_model == "default" and smoke.device == "cpu"
    assert gpu.base_model == "Qwen/Qwen2.5-1.5B-Instruct" and gpu.dtype == "bfloat16"
    assert (gpu.score.alpha, gpu.score.beta1, gpu.score.beta2) == (10.0, 0.01, 0.1)
    assert smoke.fingerprint() != gpu.fingerprint()
    assert load_config("cpu-smoke", {"grpo.max_steps": 9}).grpo.max_steps == 9


def test_bad_configs_name_the_setting_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) grpo.steps"):
        config_from_dict({"grpo": {"steps": 3}})
    with pytest.raises(ConfigError, match=r"must be a multiple of grpo\.num_generations"):
        config_from_dict({"grpo": {"batch_size": 3, "num_generations": 2}})
    with pytest.raises(ConfigError, match="unknown components"):
        config_from_dict({"rewards": {"style": 1.0}})
    with pytest.raises(ConfigError, match=r"data: reorder_share must be between 0 and 1"):
        config_from_dict({"data": {"reorder_share": 2}})
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nothing.yaml")
    with pytest.raises(ConfigError, match="unknown setting"):
        config_from_dict({"epochs": 3})


def test_the_data_command_writes_training_and_held_out_files(tmp_path: Path) -> None:
    out, held = tmp_path / "train.jsonl", tmp_path / "held.csv"
    result = CliRunner().invoke(
        main,
        [
            "train",
            "data",
            "-c",
            "cpu-smoke",
            "--out",
            str(out),
            "--heldout-out",
            str(held),
            "--count",
            "5",
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(read_examples(out)) == 5 and len(read_examples(held)) == 4
    assert set(json.loads(out.read_text(encoding="utf-8").splitlines()[0])) >= {
        "text",
        "schema",
        "object",
    }
    bad = CliRunner().invoke(
        main, ["train", "data", "-c", "cpu-smoke", "-o", str(out), "--set", "grpo"]
    )
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.output


# --- teachers --------------------------------------------------------------------


class _Endpoint(BaseHTTPRequestHandler):
    """An OpenAI-compatible /chat/completions that answers from the request's own facts."""

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = request["messages"][-1]["content"]
        if prompt.startswith("Write a realistic"):
            facts = json.loads(prompt.split("Facts (JSON):\n", 1)[1])
            flat = [str(v) for v in flatten(facts).values()]
            good = "deviation" in prompt  # deviations get a faithful document, others not
            content = "Record: " + "; ".join(flat if good else [*flat[:1], "???"])
            message = {"role": "assistant", "content": content}
        else:
            # The answer: the deviation id alone (a fenced JSON block, as chat models write).
            document = prompt.split("Document:\n", 1)[1]
            found = document.split("DEV-", 1)[1][:4] if "DEV-" in document else "none"
            message = {
                "role": "assistant",
                "content": "```json\n" + json.dumps({"deviation_id": f"DEV-{found}"}) + "\n```",
                "reasoning_content": "The id follows <DEV>.",
            }
        body = json.dumps({"choices": [{"message": message}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()


def _example(domain: str, gold: dict[str, Any]) -> Example:
    source = next(e for e in MANY if e.domain == domain)
    props = {k: source.schema["properties"][k] for k in gold}
    schema = {"type": "object", "properties": props, "required": list(gold)}
    return Example(
        "x", schema, "\n".join(f"{k}: {v}" for k, v in gold.items()), gold, "old", domain
    )


def test_an_endpoint_teacher_is_kept_only_where_its_output_checks_out(endpoint: str) -> None:
    deviation = _example("deviation", {"deviation_id": "DEV-1234", "reported_by": "Tom Okafor"})
    contract = _example("contract", {"contract_id": "C-55555", "client": "Helix Biologics"})
    single = _example("deviation", {"deviation_id": "DEV-4321"})
    teacher = EndpointTeacher(endpoint, "teacher-model")
    out, report = with_teacher(
        [deviation, contract, single], teacher, documents=True, reasoning=True
    )
    # Documents: the faithful ones are kept, the contract's (a value missing) is rejected.
    assert (report.documents_kept, report.documents_rejected) == (2, 1)
    assert out[0].text.startswith("Record: DEV-1234; Tom Okafor") and out[0].layout == "teacher"
    assert out[1].text == contract.text
    # Traces: kept only where the teacher's answer equals the gold ("<" made safe).
    assert (report.traces_kept, report.traces_rejected) == (1, 2)
    assert out[2].reasoning == "The id follows (DEV>."
    assert out[1].reasoning == "old"


def test_an_unreachable_endpoint_is_a_teacher_error() -> None:
    teacher = EndpointTeacher("http://127.0.0.1:9/v1", "m", timeout=2)
    with pytest.raises(TeacherError, match="did not answer"):
        teacher.answer(MANY[0])


@pytest.mark.model
def test_a_gguf_teacher_writes_through_the_runtime() -> None:
    examples = generate(
        2, GeneratorOptions(seed=1, max_fields=2, max_items=1, domains=("contract",))
    )
    teacher = LlamaCppTeacher("default", device="cpu", max_think_tokens=48, max_document_tokens=96)
    try:
        answer = teacher.answer(examples[0])
        assert answer.reasoning is not None and answer.value is not None  # grammar: always parses
        document = teacher.write_document(examples[0])
        assert isinstance(document, str) and document
        out, report = with_teacher(examples, teacher, documents=True, reasoning=True)
    finally:
        teacher.close()
    assert report.documents_kept + report.documents_rejected == 2
    assert report.traces_kept + report.traces_rejected == 2
    for before, after in zip(examples, out, strict=True):
        schema = load_schema_text(after.schema_text)
        assert all(g.span for g in ground_values(schema, after.gold, NormalisedText(after.text)))
        assert "<" not in (after.reasoning or "")
        assert after.gold == before.gold


def test_the_runtime_prompt_is_what_training_renders() -> None:
    """Training renders prompts.extraction_messages; nothing else builds the text."""
    example = MANY[0]
    messages = extraction_messages(example.schema_text, example.text, think=True)
    assert example.schema_text in messages[1]["content"] and example.text in messages[1]["content"]
    assert json.loads(example.schema_text) == example.schema
