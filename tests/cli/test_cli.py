"""The command line: outputs, documented exit codes, clear messages on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from thinkjson_edge.cli import main
from thinkjson_edge.cli.exit_codes import (
    EXIT_INPUT,
    EXIT_INVALID_OUTPUT,
    EXIT_MODEL,
    EXIT_OK,
    EXIT_SCHEMA,
    EXIT_WRITE,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GOOD_SCHEMA = {"type": "object", "properties": {"batch": {"type": "string"}}, "required": ["batch"]}


def run(*args: str | Path, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, ["extract", *map(str, args)], env=env)


@pytest.fixture
def document(tmp_path: Path) -> Path:
    path = tmp_path / "doc.txt"
    path.write_text("Batch BR-7731 released on 2024-03-02.\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("schema_text", "message"),
    [
        ('{"type": "object", "properties": ', "not valid JSON at line 1"),
        ('{"type": "object", "properties": {"a": {"type": 5}}}', "metaschema at properties/a/type"),
        (
            '{"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}}',
            "points outside the schema",
        ),
    ],
)
def test_bad_schemas_exit_3(tmp_path: Path, document: Path, schema_text: str, message: str) -> None:
    schema = tmp_path / "s.json"
    schema.write_text(schema_text, encoding="utf-8")
    result = run(document, "--schema", schema)
    assert result.exit_code == EXIT_SCHEMA, result.output
    assert message in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"", "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "PNG image"),
        (b"\x00\x10\x00binary", "binary file"),
    ],
)
def test_bad_documents_exit_4(
    tmp_path: Path, write_json, content: bytes | None, message: str
) -> None:
    path = tmp_path / "doc.txt"
    if content is not None:
        path.write_bytes(content)
    result = run(path, "--schema", write_json("s.json", GOOD_SCHEMA))
    assert result.exit_code == EXIT_INPUT, result.output
    assert message in result.stderr


def test_missing_or_non_gguf_model_exits_5(tmp_path: Path, document: Path, write_json) -> None:
    schema = write_json("s.json", GOOD_SCHEMA)
    result = run(document, "--schema", schema, "--model", tmp_path / "absent.gguf")
    assert result.exit_code == EXIT_MODEL
    assert "does not exist" in result.stderr
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"PK\x03\x04 not a model")
    result = run(document, "--schema", schema, env={"THINKJSON_MODEL": str(fake)})
    assert result.exit_code == EXIT_MODEL
    assert "is not a GGUF file" in result.stderr


def test_unknown_model_name_and_bad_config(tmp_path: Path, document: Path, write_json) -> None:
    schema = write_json("s.json", GOOD_SCHEMA)
    result = run(document, "--schema", schema, "--model", "no-such-model")
    assert result.exit_code == EXIT_MODEL
    assert "unknown model 'no-such-model'" in result.stderr
    config = tmp_path / "config.toml"
    config.write_text('model = "', encoding="utf-8")
    result = run(document, "--schema", schema, env={"THINKJSON_CONFIG": str(config)})
    assert result.exit_code == EXIT_MODEL
    assert "cannot be read" in result.stderr


@pytest.mark.model
def test_example_to_stdout_with_report(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    result = run(
        EXAMPLES / "batch-record.txt",
        "--schema",
        EXAMPLES / "batch-record.schema.json",
        "--device",
        "cpu",
        "--max-think-tokens",
        "64",
        "--report-file",
        report_path,
    )
    assert result.exit_code == EXIT_OK, result.stderr
    value = json.loads(result.stdout)
    assert {"product", "batch_number", "date_of_manufacture", "released"} <= value.keys()
    record = json.loads(report_path.read_text())
    assert record["valid"] is True and record["value"] == value
    assert record["attempts"][0]["generation"]["prompt_tokens"] > 0


@pytest.mark.model
def test_config_file_chooses_the_model_and_out_is_written(
    tmp_path: Path, document: Path, write_json
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('model = "smollm2-135m"\n', encoding="utf-8")
    out = tmp_path / "results" / "doc.json"
    result = run(
        document,
        "--schema",
        write_json("s.json", GOOD_SCHEMA),
        "--out",
        out,
        "--no-think",
        "--device",
        "cpu",
        env={"THINKJSON_CONFIG": str(config)},
    )
    assert result.exit_code == EXIT_OK, result.stderr
    assert "smollm2-135m (LoRA adapter on smollm2-135m-base) (config)" in result.stderr
    assert result.stdout == ""
    assert "batch" in json.loads(out.read_text())


@pytest.mark.model
def test_output_failing_validation_is_written_and_flagged(
    tmp_path: Path, document: Path, write_json
) -> None:
    schema = {**GOOD_SCHEMA, "not": {"required": ["batch"]}}  # no object can satisfy it
    result = run(
        document,
        "--schema",
        write_json("s.json", schema),
        "--no-think",
        "--device",
        "cpu",
        "--report",
    )
    assert result.exit_code == EXIT_INVALID_OUTPUT
    assert "batch" in json.loads(result.stdout)
    assert "still fails the schema" in result.stderr
    record = json.loads(result.stderr[result.stderr.index("\n{") :])
    assert record["valid"] is False and len(record["attempts"]) == 2


@pytest.mark.model
def test_document_needing_too_many_chunks_exits_4(tmp_path: Path, write_json) -> None:
    """Longer than the context is fine (chunks); longer than 64 chunks is refused up front."""
    path = tmp_path / "long.txt"
    path.write_text("Batch BR-7731 line item, quantity 12, released.\n" * 40_000, encoding="utf-8")
    result = run(path, "--schema", write_json("s.json", GOOD_SCHEMA), "--device", "cpu")
    assert result.exit_code == EXIT_INPUT, result.output
    assert "more than 64 chunks" in result.stderr
    assert "the model's context holds 8192" in result.stderr
    assert "attempt 1" not in result.stderr  # refused before any generation


def test_gpu_device_without_gpu_build_exits_5(document: Path, write_json) -> None:
    import llama_cpp

    if llama_cpp.llama_supports_gpu_offload():
        pytest.skip("this llama.cpp build has GPU offload")
    result = run(document, "--schema", write_json("s.json", GOOD_SCHEMA), "--device", "cuda")
    assert result.exit_code == EXIT_MODEL
    assert "no GPU support" in result.stderr


def test_truncated_gguf_exits_5(tmp_path: Path, document: Path, write_json) -> None:
    from thinkjson_edge.models.choice import embedded_model_path

    truncated = tmp_path / "truncated.gguf"
    with embedded_model_path().open("rb") as source:
        truncated.write_bytes(source.read(1_000_000))
    result = run(document, "--schema", write_json("s.json", GOOD_SCHEMA), "--model", truncated)
    assert result.exit_code == EXIT_MODEL
    assert "llama.cpp could not load" in result.stderr


def test_unwritable_out_exits_7_before_any_work(tmp_path: Path, document: Path, write_json) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    result = run(
        document, "--schema", write_json("s.json", GOOD_SCHEMA), "--out", blocker / "r.json"
    )
    assert result.exit_code == EXIT_WRITE, result.output
    assert "cannot be written" in result.stderr
    assert "model" not in result.stderr  # failed before loading anything


def test_an_atomic_write_makes_an_ordinary_file(tmp_path: Path) -> None:
    import os

    from thinkjson_edge.files import write_atomically

    target = tmp_path / "out" / "result.json"
    write_atomically(target, "{}\n")
    mask = os.umask(0)
    os.umask(mask)
    assert target.read_text() == "{}\n"
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in target.parent.iterdir()] == ["result.json"]  # no temp file left
