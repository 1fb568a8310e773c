"""Hostile output paths: inputs are never written, and output failures are failures.

Every output (extract's --out and --report-file, eval's report folder, batch's OUT_DIR)
is checked against every input by resolved path and by inode before any work: the name
itself, a symlink and a hard link are refused with exit 2 and a message naming both
paths, before the model loads. A write error on stdout (a full device, a closed pipe,
stdout closed) is exit 7 with a message; so is a full disk under the batch's lock file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import HANG_SECONDS, assert_refused, file_hashes, run_cli

EXIT_OK, EXIT_USAGE, EXIT_WRITE = 0, 2, 7
SCHEMA = {"type": "object", "properties": {"batch": {"type": "string"}}, "required": ["batch"]}
LOADED = "loaded in"  # what extract says once the model is loaded


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    document = tmp_path / "doc.txt"
    document.write_text("Batch BR-7731 released on 2024-03-02.\n", encoding="utf-8")
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA), encoding="utf-8")
    return document, schema


def refused_untouched(args: list[str | Path], roots: list[Path], *words: str) -> str:
    """Run; it is a usage error naming ``words``, no model loaded, and ``roots`` unchanged."""
    before = file_hashes(*roots)
    result = run_cli(*args)
    line = assert_refused(result, EXIT_USAGE, *words)
    assert LOADED not in result.stderr
    assert file_hashes(*roots) == before
    return line


# -- extract -------------------------------------------------------------------------------


def test_extract_out_is_the_document(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    document, schema = inputs
    args = ["extract", document, "-s", schema, "--out", document]
    refused_untouched(args, [tmp_path], "--out", "FILE", str(document))


def test_extract_out_is_the_schema(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    document, schema = inputs
    args = ["extract", document, "-s", schema, "--out", schema]
    refused_untouched(args, [tmp_path], "--out", "--schema", str(schema))


def test_extract_out_is_a_symlink_to_the_document(
    inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    document, schema = inputs
    link = tmp_path / "result.json"
    link.symlink_to(document)
    args = ["extract", document, "-s", schema, "--out", link]
    refused_untouched(args, [tmp_path], str(link), str(document), "through a link")


def test_extract_out_is_a_hard_link_to_the_schema(
    inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    document, schema = inputs
    link = tmp_path / "elsewhere" / "result.json"
    link.parent.mkdir()
    os.link(schema, link)
    args = ["extract", document, "-s", schema, "--out", link]
    refused_untouched(args, [tmp_path], str(link), str(schema), "through a link")


def test_extract_report_file_is_the_document(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    document, schema = inputs
    args = ["extract", document, "-s", schema, "--report-file", document]
    refused_untouched(args, [tmp_path], "--report-file", str(document))


def test_extract_out_and_report_file_name_one_file(
    inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    document, schema = inputs
    target = tmp_path / "out" / "result.json"
    args = ["extract", document, "-s", schema, "--out", target, "--report-file", target]
    refused_untouched(args, [tmp_path], "--out", "--report-file", "both are written")
    assert not target.exists()


def test_extract_out_is_the_model_file(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    document, schema = inputs
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF not really")
    args = ["extract", document, "-s", schema, "-m", model, "--out", model]
    refused_untouched(args, [tmp_path], "--out", "--model", str(model))


# -- eval ----------------------------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The documents/ + gold/ layout that eval reads."""
    data = tmp_path / "data"
    (data / "documents").mkdir(parents=True)
    (data / "gold").mkdir()
    (data / "schema.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    for name in ("a", "b"):
        (data / "documents" / f"{name}.txt").write_text(f"Batch {name}-1.\n", encoding="utf-8")
        gold = json.dumps({"batch": f"{name}-1"})
        (data / "gold" / f"{name}.json").write_text(gold, encoding="utf-8")
    return data


@pytest.mark.parametrize(
    ("where", "words"),
    [
        (".", ("must not be DATA_DIR", "same folder")),
        ("documents", ("must not be inside DATA_DIR",)),
        ("gold", ("must not be inside DATA_DIR",)),
        ("reports/new", ("must not be inside DATA_DIR",)),
        ("..", ("DATA_DIR", "must not be inside --out")),
    ],
)
def test_eval_report_folder_meets_the_data_folder(
    data_dir: Path, where: str, words: tuple[str, ...]
) -> None:
    out = (data_dir / where).resolve()
    args = ["eval", data_dir, "--out", out]
    refused_untouched(args, [data_dir], str(data_dir), *words)
    assert not (data_dir / "reports").exists()


def test_eval_default_report_folder_inside_the_data_folder(data_dir: Path) -> None:
    """Run from inside DATA_DIR, the default ./eval-... folder would land among the inputs."""
    before = file_hashes(data_dir)
    result = run_cli("eval", ".", cwd=data_dir)
    assert_refused(result, EXIT_USAGE, "the report folder", "must not be inside DATA_DIR")
    assert file_hashes(data_dir) == before
    assert sorted(p.name for p in data_dir.iterdir()) == ["documents", "gold", "schema.json"]


# -- batch ---------------------------------------------------------------------------------


@pytest.fixture
def in_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("Batch BR-1.\n", encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("out", "words"),
    [
        ("in", ("must not be IN_DIR",)),
        ("in/results", ("must not be inside IN_DIR",)),
        (".", ("IN_DIR", "must not be inside --out")),
    ],
)
def test_batch_out_dir_meets_in_dir(
    inputs: tuple[Path, Path], in_dir: Path, tmp_path: Path, out: str, words: tuple[str, ...]
) -> None:
    _, schema = inputs
    args = ["batch", in_dir, "-s", schema, "--out", tmp_path / out]
    refused_untouched(args, [tmp_path], *words)
    assert not (in_dir / "results").exists()


def test_batch_out_dir_is_a_symlink_to_in_dir(
    inputs: tuple[Path, Path], in_dir: Path, tmp_path: Path
) -> None:
    _, schema = inputs
    link = tmp_path / "results"
    link.symlink_to(in_dir, target_is_directory=True)
    args = ["batch", in_dir, "-s", schema, "--out", link]
    refused_untouched(args, [tmp_path], "must not be IN_DIR", "through a link")


def test_batch_schema_inside_out_dir(in_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    schema = out / "schema.json"
    schema.write_text(json.dumps(SCHEMA), encoding="utf-8")
    args = ["batch", in_dir, "-s", schema, "--out", out]
    refused_untouched(args, [tmp_path], "--schema", "must not be inside --out")


@pytest.fixture
def full_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs filled to the last byte (skipped where mounting is not allowed)."""
    mount = tmp_path / "full"
    mount.mkdir()
    if not shutil.which("mount") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"this machine does not allow mounting a tmpfs: {mounted.stderr.strip()}")
    try:
        with (mount / "filler").open("wb", buffering=0) as filler:
            try:
                while filler.write(bytes(4096)):
                    pass
            except OSError:
                pass  # ENOSPC: full
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_batch_lock_file_on_a_full_disk(
    inputs: tuple[Path, Path], in_dir: Path, full_tmpfs: Path
) -> None:
    _, schema = inputs
    before = file_hashes(in_dir, schema)
    result = run_cli("batch", in_dir, "-s", schema, "--out", full_tmpfs / "out")
    assert_refused(result, EXIT_WRITE, "lock file", "No space left on device")
    assert file_hashes(in_dir, schema) == before


# -- stdout --------------------------------------------------------------------------------


def run_with_closed_stdout(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run ``thinkjson-edge ARGS`` with file descriptor 1 closed, as ``>&-`` does."""
    command = 'exec "$0" -m thinkjson_edge "$@" >&-'
    return subprocess.run(
        ["sh", "-c", command, sys.executable, *map(str, args)],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=HANG_SECONDS,
    )


@pytest.mark.parametrize(
    "args",
    [["schema", "check", "SCHEMA"], ["schema", "check", "SCHEMA", "--gbnf"], ["--version"]],
)
def test_stdout_on_a_full_device(inputs: tuple[Path, Path], args: list[str]) -> None:
    _, schema = inputs
    with open("/dev/full", "w") as full:
        result = run_cli(*[schema if a == "SCHEMA" else a for a in args], stdout=full.fileno())
    assert_refused(result, EXIT_WRITE, "standard output", "No space left on device")


def test_models_list_on_a_full_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with open("/dev/full", "w") as full:
        result = run_cli("models", "list", "--json", stdout=full.fileno())
    assert_refused(result, EXIT_WRITE, "standard output")


def test_stdout_is_a_closed_pipe(inputs: tuple[Path, Path]) -> None:
    _, schema = inputs
    reader, writer = os.pipe()
    os.close(reader)  # the reader is gone before the first byte
    try:
        result = run_cli("schema", "check", schema, stdout=writer)
    finally:
        os.close(writer)
    assert_refused(result, EXIT_WRITE, "standard output", "Broken pipe")


def test_stdout_closed(inputs: tuple[Path, Path]) -> None:
    _, schema = inputs
    result = run_with_closed_stdout("schema", "check", schema)
    assert_refused(result, EXIT_WRITE, "standard output is closed")


def test_extract_to_a_closed_stdout_stops_before_the_model(
    inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    document, schema = inputs
    before = file_hashes(tmp_path)
    result = run_with_closed_stdout("extract", document, "-s", schema)
    assert_refused(result, EXIT_WRITE, "standard output is closed", "--out")
    assert LOADED not in result.stderr
    assert file_hashes(tmp_path) == before


def test_a_closed_stdout_does_not_matter_when_nothing_goes_there(
    inputs: tuple[Path, Path],
) -> None:
    """Writing to --out, or printing nothing, succeeds with stdout closed."""
    result = run_with_closed_stdout("models", "remove", "no-such-model", "--yes")
    assert result.returncode == 5, result.stderr  # the command's own answer, not exit 7
    assert "standard output" not in result.stderr


def test_stdout_that_works_is_untouched(inputs: tuple[Path, Path]) -> None:
    _, schema = inputs
    result = run_cli("schema", "check", schema)
    assert result.returncode == EXIT_OK, result.stderr
    assert "valid" in result.stdout and result.stderr == ""
