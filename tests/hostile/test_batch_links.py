"""Nothing is read from outside the given folder: batch, eval's data folder, the batch view.

batch reads only regular files whose resolved path lies inside IN_DIR: a link out of it, a
pipe, a socket or a device is skipped and listed (a warning line, the summary, ``--json``),
never read and never waited on; ``--follow-links`` reads links out. Eval's data folder and
the TUI's batch view hold to the same rule.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import HANG_SECONDS, assert_refused, file_hashes, run_cli

from thinkjson_edge.batch.layout import LOCK_NAME
from thinkjson_edge.batch.runner import scan_folder
from thinkjson_edge.errors import InputError
from thinkjson_edge.evaluation.dataset import find_dataset
from thinkjson_edge.schema import load_schema
from thinkjson_edge.tui.batch_folder import BatchFolder

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="symlinks, pipes and sockets")

SCHEMA = {"type": "object", "properties": {"total": {"type": "string"}}, "required": ["total"]}
SECRET = "SECRET-7f3a: a file outside the input folder"


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """IN_DIR with a link out, a pipe and a socket; a secret beside it; a schema; OUT_DIR."""
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text(f"Total: 99.00 EUR. {SECRET}\n" * 4, encoding="utf-8")  # 260 bytes
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    (in_dir / "escape.txt").symlink_to(secret)
    (in_dir / "linked-folder").symlink_to(outside, target_is_directory=True)
    os.mkfifo(in_dir / "pipe.txt")
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps(SCHEMA), encoding="utf-8")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(in_dir / "sock.txt"))
        yield {"in": in_dir, "out": tmp_path / "out", "outside": outside, "schema": schema}


def batch(
    layout: dict[str, Path], *options: str, timeout: float = HANG_SECONDS
) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "batch",
        layout["in"],
        "--schema",
        layout["schema"],
        "--out",
        layout["out"],
        "--json",
        "--no-think",
        "--no-self-correct",
        "--device",
        "cpu",
        *options,
        timeout=timeout,
    )


def inputs(layout: dict[str, Path]) -> dict[str, str]:
    return file_hashes(layout["in"], layout["outside"], layout["schema"])


def assert_secret_not_written(out_dir: Path) -> None:
    for path in out_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert SECRET not in path.read_bytes().decode("utf-8", "replace"), path


def test_links_out_pipes_and_sockets_are_skipped_listed_and_never_read(
    layout: dict[str, Path],
) -> None:
    before = inputs(layout)

    result = batch(layout)

    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "loading the model" not in result.stderr  # nothing to read, so no model
    record = json.loads(result.stdout)
    reasons = {entry["file"]: entry["reason"] for entry in record["not_read"]}
    assert set(reasons) == {"escape.txt", "pipe.txt", "sock.txt"}
    assert "outside IN_DIR" in reasons["escape.txt"] and "--follow-links" in reasons["escape.txt"]
    assert "named pipe" in reasons["pipe.txt"]
    assert "socket" in reasons["sock.txt"]
    for name in reasons:
        assert f"warning: skipped {name}" in result.stderr
        assert not (layout["out"] / f"{name}.json").exists()
    assert record["processed"] == 0
    assert_secret_not_written(layout["out"])
    assert inputs(layout) == before


def test_follow_links_reads_a_link_out_and_the_document_limit_option_holds(
    layout: dict[str, Path],
) -> None:
    before = inputs(layout)

    # The linked file is now read; over the tiny --max-document-mb, it fails without a model.
    result = batch(layout, "--follow-links", "--max-document-mb", "0.0001")  # 105 bytes

    assert result.returncode == 4, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    record = json.loads(result.stdout)
    assert [entry["file"] for entry in record["not_read"]] == ["pipe.txt", "sock.txt"]
    [problem] = record["problems"]
    assert problem["file"] == "escape.txt"
    assert "105 bytes limit" in problem["error"] and "--max-document-mb" in problem["error"]
    assert_secret_not_written(layout["out"])
    assert inputs(layout) == before


def test_a_limit_set_to_nonsense_stops_the_batch_before_it_starts(
    layout: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THINKJSON_MAX_ARCHIVE_MEMBERS", "many")
    before = inputs(layout)
    assert_refused(batch(layout), 2, "THINKJSON_MAX_ARCHIVE_MEMBERS")
    assert not layout["out"].exists()
    assert inputs(layout) == before


@pytest.mark.model
def test_the_other_files_are_extracted_and_the_secret_never_reaches_a_result(
    layout: dict[str, Path],
) -> None:
    (layout["in"] / "receipt.txt").write_text("Total: 12.50 EUR\n", encoding="utf-8")
    before = inputs(layout)

    # A model loads and extracts here, which alone can take a minute on a busy machine.
    result = batch(layout, timeout=5 * HANG_SECONDS)

    assert result.returncode in (0, 6), result.stderr[-2000:]
    record = json.loads(result.stdout)
    assert record["processed"] == 1
    assert (layout["out"] / "receipt.txt.json").is_file()
    assert {entry["file"] for entry in record["not_read"]} == {"escape.txt", "pipe.txt", "sock.txt"}
    assert_secret_not_written(layout["out"])
    assert inputs(layout) == before


# --- the scan itself ------------------------------------------------------------------


def test_the_scan_takes_links_inside_and_lists_links_out(layout: dict[str, Path]) -> None:
    in_dir = layout["in"]
    (in_dir / "real.txt").write_text("Total: 1", encoding="utf-8")
    (in_dir / "sub").mkdir()
    (in_dir / "sub" / "alias.txt").symlink_to(in_dir / "real.txt")  # inside: fine
    (in_dir / "sub" / "up.txt").symlink_to(Path("..") / ".." / "outside" / "secret.txt")
    (in_dir / "dangling.txt").symlink_to(in_dir / "gone.txt")  # kept: it fails when read

    scan = scan_folder(in_dir, layout["out"])

    assert [item.rel for item in scan.inputs] == ["dangling.txt", "real.txt", "sub/alias.txt"]
    assert [entry.rel for entry in scan.unread] == [
        "escape.txt",
        "pipe.txt",
        "sock.txt",
        "sub/up.txt",
    ]
    # Links to folders are never followed, so nothing under linked-folder/ is an input.
    followed = scan_folder(in_dir, layout["out"], follow_links=True)
    assert [item.rel for item in followed.inputs] == [
        "dangling.txt",
        "escape.txt",
        "real.txt",
        "sub/alias.txt",
        "sub/up.txt",
    ]
    assert [entry.rel for entry in followed.unread] == ["pipe.txt", "sock.txt"]


# --- eval's data folder and the batch view ------------------------------------------------


def test_eval_skips_documents_and_gold_that_link_out_of_the_data_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET, encoding="utf-8")
    (outside / "gold.json").write_text('{"total": "1"}', encoding="utf-8")
    data = tmp_path / "data"
    data.mkdir()
    (data / "schema.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    (data / "a.txt").write_text("Total: 1", encoding="utf-8")
    (data / "a.json").write_text('{"total": "1"}', encoding="utf-8")
    (data / "b.txt").symlink_to(outside / "secret.txt")
    (data / "b.json").write_text('{"total": "2"}', encoding="utf-8")
    (data / "c.txt").write_text("Total: 3", encoding="utf-8")
    (data / "c.json").symlink_to(outside / "gold.json")

    dataset = find_dataset(data)

    assert [case.name for case in dataset.cases] == ["a"]
    reasons = {skipped.name: skipped.reason for skipped in dataset.skipped}
    assert set(reasons) == {"b", "c"}
    assert "outside the data folder" in reasons["b"]
    assert "gold file c.json" in reasons["c"] and "outside the data folder" in reasons["c"]


def test_the_batch_view_opens_no_document_outside_the_input_folder(
    layout: dict[str, Path],
) -> None:
    in_dir = layout["in"]
    (in_dir / "real.txt").write_text("Total: 1", encoding="utf-8")
    folder = BatchFolder(layout["out"], in_dir, load_schema(layout["schema"]))

    assert folder.document_path("real.txt") == in_dir / "real.txt"
    for rel in ("escape.txt", "../outside/secret.txt", str(layout["outside"] / "secret.txt")):
        with pytest.raises(InputError, match="outside the batch's input folder"):
            folder.document_path(rel)
    # A pipe in the lock file's place is not waited on: no batch is running.
    layout["out"].mkdir()
    os.mkfifo(layout["out"] / LOCK_NAME)
    assert folder.running_pid() is None
