"""CPU smoke run: data -> SFT warm start -> GRPO -> SCoRe I -> SCoRe II on the default model.

Real torch training of SmolLM2-135M-Instruct (LoRA) with the packaged ``cpu-smoke``
config, a few steps per stage (minutes on 2 cores). The stages run once for the module;
each test checks one property of what they left behind: adapters that PEFT loads,
finite losses and rewards, parameters that training moved, rewards that varied so the
policy gradient had something to follow, provenance, plots and TensorBoard files.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from thinkjson_edge.train.base_model import META_FILE, resolve_base
from thinkjson_edge.train.config import TrainConfig, load_config
from thinkjson_edge.train.datasets_io import read_examples
from thinkjson_edge.train.grpo import run_grpo
from thinkjson_edge.train.logs import read_metrics
from thinkjson_edge.train.prompting import first_prompt
from thinkjson_edge.train.score import run_score
from thinkjson_edge.train.sft import run_sft

from thinkjson_edge.cli import main
from thinkjson_edge.grammar.compiler import THINK_OPEN
from thinkjson_edge.models.choice import choose_model
from thinkjson_edge.pipeline.prompts import extraction_messages

pytestmark = pytest.mark.train
STAGES = ("sft", "grpo", "score1", "score2")
STARTS = {"sft": None, "grpo": "sft", "score1": "grpo", "score2": "score1"}


@pytest.fixture(scope="module")
def run(hf_default_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every stage of the smoke config, run once; the CLI for data and for SCoRe stage 2."""
    for needed in ("torch", "trl", "peft"):  # the train extra
        pytest.importorskip(needed)
    out = tmp_path_factory.mktemp("cpu-smoke")
    # base_model "default" is the embedded GGUF; seed the conversion cache with the session's
    # converted folder, where resolve_base looks for it, instead of converting a second time.
    gguf = choose_model("default").path
    stat = gguf.stat()
    cache = out / "base-hf" / f"{gguf.stem}-{stat.st_size}-{int(stat.st_mtime)}"
    cache.parent.mkdir(parents=True)
    os.symlink(hf_default_model, cache)

    data = out / "data.jsonl"
    settings = [f"output_dir={out}", f"data.source={data}"]
    cli = CliRunner()
    made = cli.invoke(
        main, ["train", "data", "-c", "cpu-smoke", "--out", str(data), "--count", "12"]
    )
    assert made.exit_code == 0, made.output
    config = load_config("cpu-smoke", dict(s.split("=", 1) for s in settings))
    results: dict[str, Any] = {"config": config, "data": data, "base": cache}
    results["sft"] = run_sft(config)
    results["grpo"] = run_grpo(config)
    results["score1"] = run_score(config, 1)
    args = ["train", "score", "-c", "cpu-smoke", "--stage", "2"]
    done = cli.invoke(main, [*args, *(arg for s in settings for arg in ("--set", s))])
    assert done.exit_code == 0, done.output
    results["score2_output"] = done.output
    return results


def _meta(config: TrainConfig, stage: str) -> dict[str, Any]:
    return json.loads((config.stage_dir(stage) / "adapter" / META_FILE).read_text())


def test_the_default_base_is_the_converted_gguf_reused_from_the_cache(run: dict[str, Any]) -> None:
    assert resolve_base(run["config"]) == str(run["base"])
    assert _meta(run["config"], "sft")["base_folder"] == str(run["base"])


def test_training_read_the_data_file_the_data_command_wrote(run: dict[str, Any]) -> None:
    examples = read_examples(run["data"])
    assert len(examples) == 12
    meta = _meta(run["config"], "sft")
    assert meta["examples"] + meta["dropped_too_long"] == run["config"].data.train_examples


def test_every_stage_saved_an_adapter_that_peft_loads(run: dict[str, Any]) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config: TrainConfig = run["config"]
    tokenizer = AutoTokenizer.from_pretrained(run["base"])
    ids = tokenizer("Batch number: B-12345", return_tensors="pt").input_ids
    for stage in STAGES:
        folder = config.stage_dir(stage) / "adapter"
        assert (folder / "adapter_config.json").is_file() and not (folder / "ref").exists()
        base = AutoModelForCausalLM.from_pretrained(run["base"])
        model = PeftModel.from_pretrained(base, str(folder))
        with torch.no_grad():
            logits = model(input_ids=ids).logits
        assert torch.isfinite(logits).all(), stage


def test_stages_chain_and_record_their_provenance(run: dict[str, Any]) -> None:
    config: TrainConfig = run["config"]
    for stage in STAGES:
        meta = _meta(config, stage)
        assert meta["stage"] == stage
        assert meta["config_fingerprint"] == config.fingerprint()
        assert meta["lora"] is True and meta["think"] is False
        start = STARTS[stage]
        expected = str(config.stage_dir(start) / "adapter") if start else None
        assert meta["init_from"] == expected
        assert {"torch", "transformers", "trl", "peft"} <= set(meta["versions"])
    assert "score2: saved" in run["score2_output"]


def test_losses_and_rewards_are_finite(run: dict[str, Any]) -> None:
    config: TrainConfig = run["config"]
    for stage in STAGES:
        rows = read_metrics(config.stage_dir(stage) / "metrics.csv")
        steps = [row for row in rows if "loss" in row]
        assert len(steps) >= 2, stage
        assert all(math.isfinite(value) for row in rows for value in row.values()), stage
    grpo = read_metrics(config.stage_dir("grpo") / "metrics.csv")
    assert any("rewards/field_match_reward/mean" in row for row in grpo)
    score = read_metrics(config.stage_dir("score1") / "metrics.csv")
    assert {"reward/attempt1", "reward/attempt2", "accuracy@t1", "delta_i_to_c"} <= set(score[0])


def test_sft_moved_every_trainable_tensor(run: dict[str, Any]) -> None:
    summary = run["sft"].summary
    assert summary["parameters_changed"] == summary["parameters_trainable"] > 0


def _changed(stage_dir: Path, start_dir: Path) -> int:
    """How many adapter tensors differ between a stage's result and the adapter it started from."""
    import torch
    from safetensors.torch import load_file

    after = load_file(str(stage_dir / "adapter" / "adapter_model.safetensors"))
    before = load_file(str(start_dir / "adapter" / "adapter_model.safetensors"))
    assert after.keys() == before.keys()
    return sum(not torch.equal(after[k], before[k]) for k in after)


def test_grpo_rewards_varied_and_moved_the_adapter(run: dict[str, Any]) -> None:
    config: TrainConfig = run["config"]
    rows = read_metrics(config.stage_dir("grpo") / "metrics.csv")
    # Some group's completions scored differently, so advantages (and gradients) were not 0.
    assert any(row.get("frac_reward_zero_std", 1.0) < 1.0 for row in rows)
    assert any(row.get("grad_norm", 0.0) > 1e-3 for row in rows)
    assert _changed(config.stage_dir("grpo"), config.stage_dir("sft")) > 0


def test_score_stages_moved_the_adapter(run: dict[str, Any]) -> None:
    config: TrainConfig = run["config"]
    assert _changed(config.stage_dir("score1"), config.stage_dir("grpo")) > 0
    assert _changed(config.stage_dir("score2"), config.stage_dir("score1")) > 0
    rows = read_metrics(config.stage_dir("score1") / "metrics.csv") + read_metrics(
        config.stage_dir("score2") / "metrics.csv"
    )
    assert any(row["corrections"] > 0 for row in rows)  # attempt 2 ran where attempt 1 had findings
    # Rollouts of a prompt scored differently somewhere, so the policy gradient was not 0.
    assert any(row["nonzero_advantages"] > 0 and row["grad_norm"] > 1e-3 for row in rows)


def test_plots_and_tensorboard_files_are_written(run: dict[str, Any]) -> None:
    config: TrainConfig = run["config"]
    for stage in STAGES:
        png = config.stage_dir(stage) / "rewards.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", stage
        assert list((config.stage_dir(stage) / "tensorboard").glob("events.out.tfevents.*")), stage


@pytest.mark.model
def test_training_prompts_are_the_runtimes_prompts(run: dict[str, Any], extractor) -> None:
    """The text a model is trained on is the text the runtime sends it, forced tag included."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(run["base"])
    for example in read_examples(run["data"])[:4]:
        for think in (True, False):
            messages = extraction_messages(example.schema_text, example.text, think=think)
            runtime = extractor.engine.render_chat(messages) + (THINK_OPEN if think else "")
            assert first_prompt(tokenizer, example, think=think) == runtime
