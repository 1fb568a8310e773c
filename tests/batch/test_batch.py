"""``thinkjson-edge batch``: results, job rows, skipping, failures, kill -9 and watch mode."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from thinkjson_edge.batch.layout import DATABASE_NAME, LOCK_NAME
from thinkjson_edge.batch.runner import (
    Batch,
    remove_temporaries,
    scan_inputs,
)
from thinkjson_edge.cli import main
from thinkjson_edge.cli.exit_codes import (
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_INVALID_OUTPUT,
    EXIT_MODEL,
    EXIT_OK,
    EXIT_SCHEMA,
    EXIT_USAGE,
    EXIT_WRITE,
)
from thinkjson_edge.errors import OutputWriteError
from thinkjson_edge.files import write_atomically
from thinkjson_edge.pipeline.prompts import extraction_messages
from thinkjson_edge.schema import load_schema

SROIE = Path(__file__).resolve().parent.parent / "fixtures" / "sroie"
SCHEMA = SROIE / "schema.json"
FAST = ("--no-think", "--no-self-correct", "--device", "cpu")
# Short receipts written for these tests: each one is extracted in a second or two.
SHOPS = [
    ("KEDAI RUNCIT AMAN", "12/03/2019", "NO 5, JALAN MAWAR, 43000 KAJANG", "15.40"),
    ("SYARIKAT MAJU JAYA", "02/11/2018", "LOT 22, TAMAN SERI, 81300 SKUDAI", "7.90"),
    ("RESTORAN SELERA", "30/06/2019", "18 JALAN BESAR, 50050 KUALA LUMPUR", "23.00"),
    ("HOCK SENG HARDWARE", "14/01/2018", "3 LORONG 2, 10200 PENANG", "112.50"),
    ("BAKERI MANIS", "09/09/2019", "NO 7, PASAR BARU, 30000 IPOH", "4.20"),
    ("FARMASI SIHAT", "21/05/2018", "45 JALAN TUN RAZAK, 80000 JOHOR BAHRU", "36.80"),
]


def receipt(index: int) -> str:
    company, date, address, total = SHOPS[index]
    return f"{company}\n{address}\nDATE: {date}\nITEM 1 {total}\nTOTAL: {total}\nTHANK YOU\n"


def invoke(*args: str | Path) -> Any:
    return CliRunner().invoke(main, ["batch", *map(str, args)])


def cli_command(in_dir: Path, out_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "thinkjson_edge",
        "batch",
        str(in_dir),
        "--schema",
        str(SCHEMA),
        "--out",
        str(out_dir),
        *FAST,
        *extra,
    ]


def rows(out_dir: Path) -> dict[str, dict[str, Any]]:
    db = sqlite3.connect(out_dir / DATABASE_NAME)
    db.row_factory = sqlite3.Row
    try:
        return {row["file"]: dict(row) for row in db.execute("SELECT * FROM jobs")}
    finally:
        db.close()


def result_files(out_dir: Path) -> set[str]:
    """Relative paths of every visible .json under out_dir (reports and hidden files aside)."""
    return {
        path.relative_to(out_dir).as_posix()
        for path in out_dir.rglob("*.json")
        if not any(part.startswith(".") for part in path.relative_to(out_dir).parts)
    }


def temporaries(out_dir: Path) -> list[Path]:
    return [path for path in out_dir.rglob("*") if path.name.endswith(".tmp")]


def assert_exactly_once(
    in_dir: Path, out_dir: Path, inputs: list[str], *, other_rows: Collection[str] = ()
) -> None:
    """Every input has one whole, valid result file and one done row; nothing else is left
    (but ``other_rows``: rows of inputs since removed, which the database keeps)."""
    schema = load_schema(SCHEMA)
    assert result_files(out_dir) == {f"{rel}.json" for rel in inputs}
    for rel in inputs:
        value = json.loads((out_dir / f"{rel}.json").read_text(encoding="utf-8"))
        assert schema.errors(value) == [], rel
    assert temporaries(out_dir) == []
    jobs = rows(out_dir)
    assert sorted(jobs) == sorted([*inputs, *other_rows])
    assert {jobs[rel]["status"] for rel in inputs} == {"done"}
    db = sqlite3.connect(out_dir / DATABASE_NAME)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        count = len(inputs) + len(other_rows)
        assert db.execute("SELECT count(*), count(DISTINCT file) FROM jobs").fetchone() == (
            count,
            count,
        )
    finally:
        db.close()


def wait_for(condition: Callable[[], bool], process: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the batch ended early: {process.stderr.read()[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("timed out waiting for the batch")
        time.sleep(0.02)


# -- without the model ------------------------------------------------------------


def test_scan_skips_hidden_files_and_the_output_folder_and_applies_globs(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    (tmp_path / "out").mkdir()
    for name in ("a.txt", "b.md", ".hidden.txt", "sub/c.txt", "sub/deeper/d.txt", ".git/e.txt"):
        (tmp_path / name).write_text("x", encoding="utf-8")
    (tmp_path / "out" / "a.txt.json").write_text("{}", encoding="utf-8")

    def rels(*globs: str) -> list[str]:
        return [item.rel for item in scan_inputs(tmp_path, tmp_path / "out", globs)]

    assert rels() == ["a.txt", "b.md", "sub/c.txt", "sub/deeper/d.txt"]
    assert rels("*.txt") == ["a.txt", "sub/c.txt", "sub/deeper/d.txt"]
    assert rels("sub/*.txt") == ["sub/c.txt", "sub/deeper/d.txt"]
    assert rels("*.md", "sub/deeper/*") == ["b.md", "sub/deeper/d.txt"]


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path: Path) -> None:
    write_atomically(tmp_path / "sub" / "a.txt.json", "{}\n")
    stale = tmp_path / "sub" / ".a.txt.json.k2j4_x9q.tmp"
    stale.write_text('{"half', encoding="utf-8")
    kept = [tmp_path / ".notes.tmp", tmp_path / "b.txt.json", tmp_path / DATABASE_NAME]
    for path in kept:
        path.write_text("x", encoding="utf-8")
    # Named the way write_atomically names its temporary files.
    handle, made = tempfile.mkstemp(dir=tmp_path, prefix=".b.txt.json.", suffix=".tmp")
    os.close(handle)
    assert remove_temporaries(tmp_path) == 2
    assert not stale.exists() and not Path(made).exists()
    assert all(path.exists() for path in kept)
    assert (tmp_path / "sub" / "a.txt.json").read_text(encoding="utf-8") == "{}\n"


def test_two_batches_cannot_share_an_output_folder(tmp_path: Path) -> None:
    schema = load_schema(SCHEMA)
    (tmp_path / "in").mkdir()
    first = Batch(tmp_path / "in", tmp_path / "out", schema, lambda: None)  # type: ignore[arg-type]
    with first:
        second = Batch(tmp_path / "in", tmp_path / "out", schema, lambda: None)  # type: ignore[arg-type]
        with pytest.raises(OutputWriteError, match="another batch"):
            second.open()
        result = invoke(tmp_path / "in", "--schema", SCHEMA, "--out", tmp_path / "out")
        assert result.exit_code == EXIT_WRITE, result.output
    with second:  # the lock is free again once the first is closed
        assert (tmp_path / "out" / LOCK_NAME).exists()


def test_usage_errors_and_bad_schema_stop_before_anything_is_done(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text(receipt(0), encoding="utf-8")
    same = invoke(tmp_path / "in", "--schema", SCHEMA, "--out", tmp_path / "in")
    assert same.exit_code == EXIT_USAGE
    assert "must not be IN_DIR" in same.stderr
    inside = invoke(tmp_path / "in", "--schema", SCHEMA, "--out", tmp_path)
    assert inside.exit_code == EXIT_USAGE

    schema = tmp_path / "s.json"
    schema.write_text('{"type": "array"}', encoding="utf-8")
    bad = invoke(tmp_path / "in", "--schema", schema, "--out", tmp_path / "out")
    assert bad.exit_code == EXIT_SCHEMA, bad.output
    assert not (tmp_path / "out").exists()


def test_a_model_that_cannot_be_loaded_stops_the_batch_before_any_file(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text(receipt(0), encoding="utf-8")
    out = tmp_path / "out"
    result = invoke(
        tmp_path / "in", "--schema", SCHEMA, "--out", out, "--model", tmp_path / "absent.gguf"
    )
    assert result.exit_code == EXIT_MODEL, result.output
    assert rows(out) == {}  # no file was claimed, so none is left running


# -- with the model -----------------------------------------------------------------


def shared_prefix_tokens(extractor) -> int:
    """Tokens of the prompt up to the end of the schema: what every document shares."""
    text = load_schema(SCHEMA).text
    rendered = extractor.engine.render_chat(extraction_messages(text, "DOC", think=False))
    return len(extractor.engine.tokenize(rendered[: rendered.index(text) + len(text)]))


@pytest.mark.model
def test_folder_is_extracted_skipped_on_rerun_and_only_changes_redone(
    tmp_path: Path, extractor
) -> None:
    in_dir, out = tmp_path / "in", tmp_path / "out"
    (in_dir / "more").mkdir(parents=True)
    receipts = ["006.txt", "015.txt", "more/017.txt"]
    for rel in receipts:
        shutil.copy(SROIE / Path(rel).name, in_dir / rel)
    (in_dir / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (in_dir / "empty.txt").write_bytes(b"")
    # Too long even for splitting into chunks (refused after tokenizing, in about 3 s).
    (in_dir / "long.txt").write_text("ledger entry 42 " * 90_000, encoding="utf-8")
    with (in_dir / "huge.txt").open("wb") as huge:
        huge.truncate(51 * 1024 * 1024)  # sparse: over the size limit without writing 51 MB
    (in_dir / "gone.txt").symlink_to(in_dir / "missing.txt")
    bad = {
        "scan.png": "PNG",
        "empty.txt": "empty",
        "long.txt": "context",
        "huge.txt": "limit",
        "gone.txt": "cannot be read",
    }

    # First run: self-correction on, so a second attempt's prompt is part of the cache story.
    first = invoke(in_dir, "-s", SCHEMA, "-o", out, "--no-think", "--device", "cpu", "--json")
    assert first.exit_code == EXIT_INPUT, first.output
    summary = json.loads(first.stdout)
    assert (summary["done"], summary["failed"], summary["files"]) == (3, 5, 8)
    assert {p["file"]: p["status"] for p in summary["problems"]} == dict.fromkeys(bad, "failed")
    jobs = rows(out)
    for rel, word in bad.items():
        assert jobs[rel]["status"] == "failed"
        assert word in jobs[rel]["error"]
    assert result_files(out) == {f"{rel}.json" for rel in receipts}
    schema = load_schema(SCHEMA)
    for rel in receipts:
        job = jobs[rel]
        assert job["status"] == "done" and job["attempts"] == 1
        assert len(job["content_hash"]) == 64 and len(job["schema_hash"]) == 64
        assert job["prompt_tokens"] > 0 and job["generated_tokens"] > 0
        assert job["total_seconds"] >= job["prompt_seconds"] + job["decode_seconds"] > 0
        assert isinstance(json.loads(job["findings"]), list)
        value = json.loads((out / f"{rel}.json").read_text(encoding="utf-8"))
        assert schema.errors(value) == []
        assert (out / ".reports" / f"{rel}.report.json").is_file()

    # Prefix reuse: from the second document on, the first attempt's prompt reuses at least
    # the instruction and the schema from the cache, even after a correcting attempt.
    shared = shared_prefix_tokens(extractor)
    order = sorted(receipts)  # the batch goes in path order
    for index, rel in enumerate(order):
        report = json.loads((out / ".reports" / f"{rel}.report.json").read_text("utf-8"))
        cached = report["attempts"][0]["generation"]["cached_prompt_tokens"]
        if index == 0:
            assert cached == 0  # a fresh process starts with an empty cache
        else:
            assert cached >= shared, (rel, cached, shared)
            assert jobs[rel]["cached_prompt_tokens"] >= shared

    # Rerun: everything is skipped, the failures are reported again, no model is loaded.
    again = invoke(in_dir, "-s", SCHEMA, "-o", out, *FAST, "--json")
    assert again.exit_code == EXIT_INPUT, again.output
    summary = json.loads(again.stdout)
    assert (summary["processed"], summary["skipped_done"], summary["skipped_failed"]) == (0, 3, 5)
    assert "loading the model" not in again.stderr
    assert rows(out) == jobs

    # Change one file: only it is extracted again.
    changed = in_dir / "015.txt"
    changed.write_text(changed.read_text(encoding="utf-8") + "THANK YOU\n", encoding="utf-8")
    for rel in bad:
        (in_dir / rel).unlink()
    third = invoke(in_dir, "-s", SCHEMA, "-o", out, *FAST, "--json")
    assert third.exit_code == EXIT_OK, third.output
    summary = json.loads(third.stdout)
    assert (summary["done"], summary["skipped_done"], summary["problems"]) == (1, 2, [])
    after = rows(out)
    assert after["015.txt"]["content_hash"] != jobs["015.txt"]["content_hash"]
    assert after["015.txt"]["updated_at"] > jobs["015.txt"]["updated_at"]
    for rel in ("006.txt", "more/017.txt"):
        assert after[rel] == jobs[rel]
    assert_exactly_once(in_dir, out, receipts, other_rows=set(bad))


@pytest.mark.model
def test_retry_failed_and_invalid_output(tmp_path: Path, write_json) -> None:
    in_dir, out = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    (in_dir / "a.txt").write_text(receipt(0), encoding="utf-8")
    # A bound on a non-integer number is checked by the validator only: the model breaks it.
    schema = write_json(
        "s.json",
        {
            "type": "object",
            "properties": {"total": {"type": "number", "minimum": 1e12}},
            "required": ["total"],
        },
    )
    first = invoke(in_dir, "-s", schema, "-o", out, *FAST, "--json", "--quiet")
    assert first.exit_code == EXIT_INVALID_OUTPUT, first.output
    assert json.loads(first.stdout)["invalid"] == 1
    assert json.loads((out / "a.txt.json").read_text(encoding="utf-8"))["total"] < 1e12
    assert rows(out)["a.txt"]["status"] == "invalid"

    skipped = invoke(in_dir, "-s", schema, "-o", out, *FAST, "--json", "--quiet")
    assert skipped.exit_code == EXIT_INVALID_OUTPUT
    assert json.loads(skipped.stdout)["skipped_invalid"] == 1

    retried = invoke(in_dir, "-s", schema, "-o", out, *FAST, "--json", "--retry-failed")
    assert retried.exit_code == EXIT_INVALID_OUTPUT
    assert json.loads(retried.stdout)["invalid"] == 1
    assert rows(out)["a.txt"]["attempts"] == 2

    # A changed schema makes the file new work; this one can be satisfied.
    schema.write_text(json.dumps({"type": "object", "properties": {"total": {"type": "string"}}}))
    fixed = invoke(in_dir, "-s", schema, "-o", out, *FAST, "--json")
    assert fixed.exit_code == EXIT_OK, fixed.output
    assert rows(out)["a.txt"]["status"] == "done"
    assert rows(out)["a.txt"]["attempts"] == 1


@pytest.mark.model
def test_kill_9_in_the_middle_then_resume_gives_each_result_exactly_once(tmp_path: Path) -> None:
    in_dir, out = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    inputs = [f"r{index}.txt" for index in range(len(SHOPS))]
    for index, rel in enumerate(inputs):
        (in_dir / rel).write_text(receipt(index), encoding="utf-8")

    # Two runs killed with SIGKILL: after the first result appears, then after one more.
    for results_before_kill in (1, 3):
        process = subprocess.Popen(
            cli_command(in_dir, out, "--quiet"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(lambda n=results_before_kill: len(result_files(out)) >= n, process, 180)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL
    # A temporary file as a kill inside write_atomically leaves it.
    (out / ".r5.txt.json.abc123xy.tmp").write_text('{"company": "HALF', encoding="utf-8")
    assert len(result_files(out)) < len(inputs)  # killed before the end

    resumed = subprocess.run(
        cli_command(in_dir, out, "--json"), capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == EXIT_OK, resumed.stderr[-3000:]
    summary = json.loads(resumed.stdout)
    assert summary["removed_temporaries"] >= 1
    assert summary["done"] + summary["skipped_done"] == len(inputs)
    assert summary["done"] >= 1
    assert_exactly_once(in_dir, out, inputs)
    for rel, job in rows(out).items():
        # A file being extracted when a kill came was redone; attempts say so.
        assert 1 <= job["attempts"] <= 3, rel


def running_files(out_dir: Path) -> list[str]:
    """Files the batch is extracting now, read from its database (WAL lets a reader in)."""
    try:
        return [rel for rel, job in rows(out_dir).items() if job["status"] == "running"]
    except sqlite3.Error:  # not created yet
        return []


@pytest.mark.model
def test_ctrl_c_once_finishes_the_current_file_twice_abandons_it(tmp_path: Path) -> None:
    in_dir, out = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    # A real receipt first (long enough to be signalled while it is extracted), then short
    # ones; the first of those has many item lines, so that its prompt alone takes seconds
    # and the second Ctrl-C always finds it under way.
    shutil.copy(SROIE / "006.txt", in_dir / "006.txt")
    for index in range(1, 4):
        (in_dir / f"r{index}.txt").write_text(receipt(index), encoding="utf-8")
    items = "".join(f"ITEM {n} SPARE PART NO {1000 + n} 1 x 2.50\n" for n in range(150))
    (in_dir / "r1.txt").write_text(receipt(1) + items, encoding="utf-8")
    inputs = sorted(path.name for path in in_dir.iterdir())

    # Once, while the first file is being extracted: it is finished, the rest is left.
    process = subprocess.Popen(
        cli_command(in_dir, out, "--json", "--quiet"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: bool(running_files(out)), process, 180)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    stdout, _ = process.communicate(timeout=120)
    assert process.returncode == EXIT_INTERRUPTED
    summary = json.loads(stdout)
    assert (summary["interrupted"], summary["abandoned"]) == (True, False)
    assert (summary["done"], summary["pending"]) == (1, 3)
    assert result_files(out) == {f"{inputs[0]}.json"}

    # Twice (the second once the first was heard), with reasoning on so the file takes long:
    # that file is abandoned, given back as pending without counting the try.
    process = subprocess.Popen(
        cli_command(in_dir, out, "--json", "--think"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")))
    reader.start()
    wait_for(lambda: bool(running_files(out)), process, 180)
    abandoned = running_files(out)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    wait_for(lambda: any("stopping after the current file" in line for line in lines), process, 60)
    process.send_signal(signal.SIGINT)
    stdout, _ = process.communicate(timeout=120)
    reader.join()
    assert process.returncode == EXIT_INTERRUPTED, "".join(lines)[-3000:]
    assert json.loads(stdout)["abandoned"] is True
    jobs = rows(out)
    assert [rel for rel, job in jobs.items() if job["status"] == "pending"] == abandoned
    assert jobs[abandoned[0]]["attempts"] == 0
    assert result_files(out) == {f"{inputs[0]}.json"}
    assert temporaries(out) == []

    final = subprocess.run(cli_command(in_dir, out, "--json"), capture_output=True, text=True)
    assert final.returncode == EXIT_OK, final.stderr[-3000:]
    assert_exactly_once(in_dir, out, inputs)


@pytest.mark.model
def test_watch_picks_up_a_new_file_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    in_dir, out = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    (in_dir / "first.txt").write_text(receipt(0), encoding="utf-8")
    process = subprocess.Popen(
        cli_command(in_dir, out, "--watch", "--interval", "0.3", "--json", "--quiet"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: (out / "first.txt.json").exists(), process, 180)
        staging = in_dir / ".second.txt.partial"  # hidden while it is being written
        staging.write_text(receipt(1), encoding="utf-8")
        os.replace(staging, in_dir / "second.txt")
        wait_for(lambda: (out / "second.txt.json").exists(), process, 180)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == EXIT_OK, stderr[-3000:]
    summary = json.loads(stdout)
    assert (summary["done"], summary["interrupted"], summary["abandoned"]) == (2, True, False)
    assert_exactly_once(in_dir, out, ["first.txt", "second.txt"])


@pytest.mark.model
def test_kill_9_of_a_parallel_batch_then_resume_gives_each_result_exactly_once(
    tmp_path: Path,
) -> None:
    """Two files in flight at once (--parallel 2) when the kill comes: both were claimed,
    neither recorded; the resumed run redoes them, and every input ends with one result."""
    in_dir, out = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    inputs = [f"r{index}.txt" for index in range(len(SHOPS))]
    for index, rel in enumerate(inputs):
        (in_dir / rel).write_text(receipt(index), encoding="utf-8")

    process = subprocess.Popen(
        cli_command(in_dir, out, "--quiet", "--parallel", "2"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: len(result_files(out)) >= 1 and len(running_files(out)) == 2, process, 180)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert len(result_files(out)) < len(inputs)

    resumed = subprocess.run(
        cli_command(in_dir, out, "--json", "--parallel", "2"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == EXIT_OK, resumed.stderr[-3000:]
    summary = json.loads(resumed.stdout)
    assert summary["done"] + summary["skipped_done"] == len(inputs)
    assert_exactly_once(in_dir, out, inputs)
    assert any(job["attempts"] == 2 for job in rows(out).values())  # redone after the kill


@pytest.mark.model
def test_a_parallel_batch_gives_the_results_of_one_at_a_time(tmp_path: Path) -> None:
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    inputs = [f"r{index}.txt" for index in range(4)]
    for index, rel in enumerate(inputs):
        (in_dir / rel).write_text(receipt(index), encoding="utf-8")
    one = invoke(in_dir, "-s", SCHEMA, "-o", tmp_path / "one", *FAST, "--quiet")
    four = invoke(in_dir, "-s", SCHEMA, "-o", tmp_path / "four", *FAST, "--parallel", "4")
    assert one.exit_code == four.exit_code == EXIT_OK, four.output
    for rel in inputs:
        assert (tmp_path / "four" / f"{rel}.json").read_text(encoding="utf-8") == (
            tmp_path / "one" / f"{rel}.json"
        ).read_text(encoding="utf-8")
    assert_exactly_once(in_dir, tmp_path / "four", inputs)
