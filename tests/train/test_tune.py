"""``thinkjson-edge tune``: a CPU smoke run on three receipts, and a resume after kill -9.

Real throughout: SFT with TRL on the embedded model (converted once per session), the
adapter written as a llama.cpp LoRA GGUF, installed in a store under a temporary
``XDG_DATA_HOME``, then loaded by llama.cpp for the held-out evaluation and ``extract``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from thinkjson_edge.train.budget import MARK_FILE

from thinkjson_edge.cli import main
from thinkjson_edge.files import sha256_file
from thinkjson_edge.models.choice import choose_model
from thinkjson_edge.models.gguf import read_header

SROIE = Path(__file__).resolve().parent.parent / "fixtures" / "sroie"

pytestmark = pytest.mark.model


def receipts_folder(root: Path) -> Path:
    folder = root / "receipts"
    folder.mkdir()
    for path in SROIE.iterdir():
        if path.suffix in (".txt", ".json"):
            shutil.copy(path, folder / path.name)
    return folder


def seeded_work_dir(root: Path, hf_default_model: Path) -> Path:
    """A work folder whose base conversion cache already holds the session's converted
    model, where ``resolve_base`` looks for it, so no test converts it a second time."""
    gguf = choose_model("default").path
    stat = gguf.stat()
    cache = root / "base-hf" / f"{gguf.stem}-{stat.st_size}-{int(stat.st_mtime)}"
    cache.parent.mkdir(parents=True)
    os.symlink(hf_default_model, cache)
    return root


@pytest.fixture(scope="module")
def tuned(hf_default_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    for needed in ("torch", "trl", "peft", "gguf"):  # the train extra
        pytest.importorskip(needed)
    root = tmp_path_factory.mktemp("tune")
    folder = receipts_folder(root)
    work = seeded_work_dir(root / "work", hf_default_model)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(root / "data"))
        args = ["tune", str(folder), "--name", "site-a", "--work-dir", str(work),
                "--held-out", "1", "--epochs", "1", "--time-budget", "10", "--device", "cpu",
                "--set", "sft.batch_size=1", "--set", "sft.save_steps=1"]  # fmt: skip
        result = CliRunner().invoke(main, args)
        listed = CliRunner().invoke(main, ["models", "list"])
        document = folder / "006.txt"
        report = root / "report.json"
        extracted = CliRunner().invoke(
            main,
            ["extract", str(document), "--schema", str(folder / "schema.json"),
             "--model", "site-a", "--device", "cpu", "--no-think", "--report-file", str(report)],
        )  # fmt: skip
    return {
        "result": result,
        "listed": listed,
        "extracted": extracted,
        "report": report,
        "work": work,
    }


def test_tune_trains_installs_and_prints_base_and_tuned_side_by_side(tuned) -> None:
    result = tuned["result"]
    assert result.exit_code == 0, result.output
    assert "gold folder: 3 example(s), 0 skipped" in result.output
    assert "training on 2 example(s), 1 held out" in result.output
    assert "field match" in result.output  # the before/after table on stdout
    assert "A: " in result.output and "eval-base" in result.output
    assert "eval-tuned" in result.output
    summary = json.loads((tuned["work"] / "sft" / "adapter" / "meta.json").read_text())
    assert summary["examples"] == 2
    assert summary["parameters_changed"] == summary["parameters_trainable"] > 0


def test_the_adapter_is_installed_for_its_base_and_extract_runs_it(tuned) -> None:
    assert tuned["listed"].exit_code == 0, tuned["listed"].output
    assert "site-a" in tuned["listed"].output
    adapter = tuned["work"] / "site-a.gguf"
    metadata = read_header(adapter).metadata
    assert metadata["general.type"] == "adapter"
    assert metadata["thinkjson.base_sha256"] == sha256_file(choose_model("default").path)
    assert json.loads(metadata["thinkjson.training_config"])["sft"]["batch_size"] == 1
    extracted = tuned["extracted"]
    assert extracted.exit_code == 0, extracted.output
    report = json.loads(tuned["report"].read_text())
    assert report["valid"] is True
    assert report["adapter"]["name"] == "site-a"  # the record names the adapter it ran
    assert report["adapter"]["base_sha256"] == metadata["thinkjson.base_sha256"]


def test_a_killed_tune_resumes_from_its_last_checkpoint(
    hf_default_model: Path, tmp_path: Path
) -> None:
    folder = receipts_folder(tmp_path)
    work = seeded_work_dir(tmp_path / "work", hf_default_model)
    command = [sys.executable, "-m", "thinkjson_edge", "tune", str(folder), "--name", "site-b",
               "--work-dir", str(work), "--held-out", "0", "--epochs", "2",
               "--device", "cpu", "--set", "sft.batch_size=1",
               "--set", "sft.save_steps=1"]  # fmt: skip
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    first_mark = work / "sft" / "checkpoints" / "checkpoint-1" / MARK_FILE
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while not first_mark.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert first_mark.exists(), process.communicate(timeout=30)[0].decode()[-3000:]
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not (tmp_path / "data" / "thinkjson-edge" / "models" / "site-b.gguf").exists()

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)

    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming from checkpoint-" in again.stderr
    assert (tmp_path / "data" / "thinkjson-edge" / "models" / "site-b.gguf").is_file()


def test_a_work_folder_made_for_other_settings_is_refused(
    hf_default_model: Path, tmp_path: Path
) -> None:
    folder = receipts_folder(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    (work / "tune.json").write_text(json.dumps({"name": "other", "config": {}}))
    result = CliRunner().invoke(
        main, ["tune", str(folder), "--name", "site-c", "--work-dir", str(work), "--held-out", "0"]
    )
    assert result.exit_code == 2, result.output
    assert "other settings" in result.output


def test_a_name_already_installed_is_refused_before_any_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    store = tmp_path / "data" / "thinkjson-edge" / "models"
    store.mkdir(parents=True)
    shutil.copy(choose_model("default").path, store / "taken.gguf")
    work = tmp_path / "work"
    result = CliRunner().invoke(
        main, ["tune", str(receipts_folder(tmp_path)), "--name", "taken", "--work-dir", str(work)]
    )
    assert result.exit_code == 7, result.output
    assert "already installed" in result.output and "--force" in result.output
    assert not work.exists()  # refused before anything was written
