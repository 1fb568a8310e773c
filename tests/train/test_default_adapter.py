"""The default model: the embedded base with the packaged adapter, and the command that makes it.

Real throughout: the packaged GGUF's own header, the embedded base's sha256, and a one-step
``train default-adapter`` (SFT with TRL on the converted embedded model) whose adapter
llama.cpp then applies for ``extract``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_tune import seeded_work_dir
from thinkjson_edge.train.config import load_config

from thinkjson_edge.cli import main
from thinkjson_edge.files import sha256_file
from thinkjson_edge.models.choice import (
    BASE_MODEL,
    DEFAULT_MODEL,
    choose_model,
    default_adapter_path,
    embedded_model_path,
)
from thinkjson_edge.models.gguf import read_header

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_default_model_is_the_embedded_base_with_the_packaged_adapter() -> None:
    default = choose_model("default")
    assert default.name == DEFAULT_MODEL
    assert default.adapter == default_adapter_path()
    assert default.path == embedded_model_path()
    assert default.base_name == BASE_MODEL

    base = choose_model(BASE_MODEL)
    assert base.adapter is None
    assert base.path == embedded_model_path()


def test_models_list_shows_the_default_and_the_bare_base() -> None:
    listed = CliRunner().invoke(main, ["models", "list"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert any(line.strip().startswith(f"{DEFAULT_MODEL} (the default") for line in lines)
    assert any(line.strip().startswith(f"{BASE_MODEL} (embedded") for line in lines)


def test_the_packaged_adapter_was_made_from_synthetic_documents_and_receipts_for_the_base() -> None:
    path = default_adapter_path()
    assert path.stat().st_size <= 16 * 1024 * 1024  # small enough for a wheel
    metadata = read_header(path).metadata
    assert metadata["general.type"] == "adapter"
    assert metadata["thinkjson.base_name"] == BASE_MODEL
    assert metadata["thinkjson.base_sha256"] == sha256_file(embedded_model_path())
    assert metadata["thinkjson.recipe"] == "thinkjson-edge train default-adapter"
    config = json.loads(metadata["thinkjson.training_config"])
    assert config["data"]["source"] == "synthetic"
    # The only third-party documents: the SROIE training receipts (MIT), never sroie-dev.
    assert [Path(folder).name for folder in config["data"]["mixed_in"]] == ["sroie-train"]
    assert config["name"] == "default-adapter"
    # The packaged config reproduces it: the same adapter, steps and data, but for where the
    # receipts were found on the machine it was trained on.
    packaged = load_config("default-adapter").to_dict()
    for section in ("lora", "sft"):
        assert config[section] == packaged[section], section
    assert {**config["data"], "mixed_in": []} == packaged["data"]


@pytest.mark.model
def test_train_default_adapter_writes_an_adapter_that_extract_applies(
    hf_default_model: Path, tmp_path: Path
) -> None:
    for needed in ("torch", "trl", "peft", "gguf"):  # the train extra
        pytest.importorskip(needed)
    work = seeded_work_dir(tmp_path / "work", hf_default_model)
    out = tmp_path / "adapter.gguf"
    settings = [f"output_dir={work}", "device=cpu", "data.train_examples=2",
                "data.heldout_examples=1", "data.max_fields=2", "sft.max_steps=1",
                "sft.batch_size=1", "sft.save_steps=0", "sft.time_budget_minutes=0"]  # fmt: skip
    trained = CliRunner().invoke(
        main,
        ["train", "default-adapter", "--out", str(out)]
        + [part for setting in settings for part in ("--set", setting)],
    )
    assert trained.exit_code == 0, trained.output
    metadata = read_header(out).metadata
    assert metadata["general.name"] == DEFAULT_MODEL
    assert metadata["thinkjson.base_name"] == BASE_MODEL
    assert "synthetic documents" in metadata["thinkjson.trained_on"]
    assert json.loads(metadata["thinkjson.training_config"])["sft"]["max_steps"] == 1

    extracted = CliRunner().invoke(
        main,
        ["extract", str(EXAMPLES / "receipt.txt"), "--schema",
         str(EXAMPLES / "receipt.schema.json"), "--model", str(out), "--device", "cpu",
         "--no-think", "--report"],
    )  # fmt: skip
    assert extracted.exit_code == 0, extracted.output
    assert '"adapter"' in extracted.output and "adapter.gguf" in extracted.output
