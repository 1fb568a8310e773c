"""convert/: GGUF -> trainable folder, LoRA merge, GGUF writer, quantization, verification.

Everything is real: the embedded default model, transformers and PEFT, llama.cpp's loader
and quantizer. The round trip on the default model is built once per module (about two
minutes on 2 cores); the qwen2 tests use a tiny randomly initialised model. Needs the
``train`` extra; skipped without it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("gguf")

from peft_adapters import make_adapter, tiny_qwen2
from thinkjson_edge.convert.verify import (
    HFReference,
    llama_tokenize,
    verify_gguf,
)

from thinkjson_edge.cli import main
from thinkjson_edge.errors import ConversionError, VerificationError
from thinkjson_edge.models.choice import choose_model
from thinkjson_edge.models.gguf import read_header

pytestmark = pytest.mark.model

SAMPLES = (
    "Total: 12345.67 EUR",
    "Hello  world\n\n  indented",
    "<|im_start|>user\nhi<|im_end|>",
    "naïve café 日本語",
)
MESSAGES = [
    {"role": "system", "content": "Return JSON."},
    {"role": "user", "content": "Invoice 42, total 9.99"},
]


def default_gguf() -> Path:
    return choose_model("default").path


# -- GGUF -> trainable folder ---------------------------------------------------


def test_gguf_to_hf_gives_a_plain_trainable_folder(hf_default_model: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

    config = json.loads((hf_default_model / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["model_type"] == "llama"
    assert (hf_default_model / "model.safetensors").is_file()
    model = AutoModelForCausalLM.from_pretrained(hf_default_model, dtype=torch.float32)
    assert not getattr(model, "is_quantized", False)
    assert model.dtype == torch.float32
    # Trainer refuses a model marked quantized (the state straight after a GGUF load).
    Trainer(
        model=model,
        args=TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[]),
    )
    tokenizer = AutoTokenizer.from_pretrained(hf_default_model)
    assert "<|im_start|>" in tokenizer.chat_template
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token is not None


def test_gguf_to_hf_tokenizes_like_llama_cpp(hf_default_model: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(hf_default_model)
    ours = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in SAMPLES]
    assert ours == llama_tokenize(default_gguf(), SAMPLES)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: data[: len(data) // 3], "is truncated: its tensors need"),
        (lambda data: data[:5000], "truncated or corrupt"),
        (lambda data: data[:8] + b"\xff" * 8 + data[16:], "truncated or corrupt"),
        (lambda data: b"GGML" + data[4:], "not a GGUF file"),
    ],
    ids=["tensor-data-cut", "header-cut", "counts-garbled", "bad-magic"],
)
def test_gguf_to_hf_refuses_a_damaged_file(tmp_path: Path, damage, message: str) -> None:
    from thinkjson_edge.convert.to_hf import gguf_to_hf

    from thinkjson_edge.errors import ModelLoadError

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(damage(default_gguf().read_bytes()))
    # ModelLoadError: exit code 5 on the command line
    with pytest.raises(ModelLoadError, match=message):
        gguf_to_hf(broken, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# -- the round trip on the default model ----------------------------------------


@dataclass
class RoundTrip:
    adapter: Path
    train_config: Path
    merged: Any  # convert.merge.Merged
    reference: HFReference
    ggufs: dict[str, Path]  # quant -> file
    command_output: str  # of `thinkjson-edge convert` (it made the Q8_0 file)
    command_report: dict[str, Any]


@pytest.fixture(scope="module")
def round_trip(hf_default_model: Path, tmp_path_factory: pytest.TempPathFactory) -> RoundTrip:
    """GGUF -> HF folder -> LoRA adapter -> merge -> F16 GGUF -> Q8_0 and Q4_K_M.

    Q8_0 comes from the `convert` command itself (merge, F16 check, quantize, verify);
    F16 and Q4_K_M from the library functions, to test them against one shared reference.
    """
    from thinkjson_edge.convert.merge import load_merged
    from thinkjson_edge.convert.provenance import build_provenance
    from thinkjson_edge.convert.quantize import quantize
    from thinkjson_edge.convert.to_gguf import write_gguf

    work = tmp_path_factory.mktemp("round-trip")
    adapter = make_adapter(hf_default_model, work / "adapter")
    train_config = work / "train.yaml"
    train_config.write_text("lora:\n  r: 8\n", encoding="utf-8")
    result = CliRunner().invoke(
        main,
        ["convert", "--base", str(hf_default_model), "--adapter", str(adapter),
         "--out", str(work / "q8_0.gguf"), "--quant", "q8_0",
         "--train-config", str(train_config), "--report-file", str(work / "report.json")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    merged = load_merged(hf_default_model, adapter)
    metadata = build_provenance(hf_default_model, adapter, train_config)
    f16 = write_gguf(
        merged.model, merged.tokenizer, merged.model_dir, work / "f16.gguf", metadata=metadata
    )
    quantize(f16, work / "q4_k_m.gguf", "q4_k_m")
    ggufs = {quant: work / f"{quant}.gguf" for quant in ("f16", "q8_0", "q4_k_m")}
    reference = HFReference(merged.model, merged.tokenizer)
    report = json.loads((work / "report.json").read_text())
    return RoundTrip(adapter, train_config, merged, reference, ggufs, result.output, report)


def test_merging_the_adapter_changes_the_model(hf_default_model: Path, round_trip) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(hf_default_model, dtype=torch.float32)
    merged = round_trip.merged.model
    assert not hasattr(merged, "peft_config")  # merge_and_unload gave a plain model
    for name in ("self_attn.q_proj", "mlp.down_proj"):
        before = dict(base.named_parameters())[f"model.layers.0.{name}.weight"]
        after = dict(merged.named_parameters())[f"model.layers.0.{name}.weight"]
        assert not torch.allclose(before, after)
    ids = round_trip.reference.tokenize("The certificate of analysis lists the lot number")
    base_reference = HFReference(base, round_trip.merged.tokenizer, label="the base")
    shift = base_reference.logprobs(ids) - round_trip.reference.logprobs(ids)
    assert abs(shift).max() > 0.05  # the adapter moves the distributions


def test_convert_command_runs_every_step_and_reports(round_trip) -> None:
    output, record = round_trip.command_output, round_trip.command_report
    for line in ("[1/6] loading the base model", "[2/6] merging the adapter",
                 "[3/6] writing the F16 GGUF", "[4/6] checking the F16 file",
                 "[5/6] quantizing to q8_0", "[6/6] verifying the q8_0 file",
                 "verification passed (f16)", "verification passed (q8_0)"):  # fmt: skip
        assert line in output
    assert record["f16_verification"]["passed"] and record["verification"]["passed"]
    assert record["size"] == round_trip.ggufs["q8_0"].stat().st_size
    assert set(record["seconds"]) == {
        "load", "merge", "write_f16", "verify_f16", "quantize", "verify"
    }
    assert not list(round_trip.ggufs["q8_0"].parent.glob("*.unverified.gguf"))


@pytest.mark.parametrize("quant", ["f16", "q8_0", "q4_k_m"])
def test_each_quantization_loads_and_passes_verification(round_trip, quant: str) -> None:
    path = round_trip.ggufs[quant]
    assert read_header(path).file_type == quant
    report = verify_gguf(path, round_trip.reference)
    print(report.summary())  # the figures, with -s
    assert report.passed, report.problems
    assert report.positions > 200
    assert not report.tokenizer_mismatches and report.template_matches


def test_quantized_files_are_smaller(round_trip) -> None:
    sizes = {quant: path.stat().st_size for quant, path in round_trip.ggufs.items()}
    assert sizes["f16"] > sizes["q8_0"] > sizes["q4_k_m"]


def test_skipping_the_rotary_permutation_fails_verification(
    round_trip, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from thinkjson_edge.convert import to_gguf

    monkeypatch.setattr(to_gguf, "rope_interleave", lambda weight, heads: weight)
    merged = round_trip.merged
    wrong = to_gguf.write_gguf(merged.model, merged.tokenizer, merged.model_dir, tmp_path / "w")
    report = verify_gguf(wrong, round_trip.reference)
    print(report.summary())
    assert not report.passed
    assert report.top1 < 0.6
    with pytest.raises(VerificationError, match="do not deploy"):
        report.raise_if_failed()


def test_swapping_two_layers_fails_verification(
    round_trip, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from thinkjson_edge.convert import to_gguf

    monkeypatch.setattr(to_gguf, "gguf_name", _swapping(to_gguf.gguf_name, 3, 4))
    merged = round_trip.merged
    wrong = to_gguf.write_gguf(merged.model, merged.tokenizer, merged.model_dir, tmp_path / "w")
    report = verify_gguf(wrong, round_trip.reference)
    print(report.summary())
    assert not report.passed


def _swapping(name_of: Any, first: int, second: int) -> Any:
    def swapped(names: Any, hf_name: str) -> str:
        name = name_of(names, hf_name)
        for this, that in ((first, second), (second, first)):
            if name.startswith(f"blk.{this}."):
                return name.replace(f"blk.{this}.", f"blk.{that}.", 1)
        return name

    return swapped


def test_written_gguf_keeps_the_vocabulary_of_the_original(round_trip) -> None:
    from gguf import GGUFReader

    def vocab(path: Path) -> tuple[list[str], list[int], list[str]]:
        reader = GGUFReader(path)
        fields = [reader.get_field(f"tokenizer.ggml.{key}") for key in ("tokens", "token_type")]
        merges = reader.get_field("tokenizer.ggml.merges").contents()
        return fields[0].contents(), fields[1].contents(), merges

    assert vocab(round_trip.ggufs["f16"]) == vocab(default_gguf())
    ours = llama_tokenize(round_trip.ggufs["q4_k_m"], SAMPLES)
    tokenizer = round_trip.merged.tokenizer
    assert ours == [tokenizer(text, add_special_tokens=False)["input_ids"] for text in SAMPLES]


def test_engine_renders_prompts_as_with_the_original(round_trip) -> None:
    from thinkjson_edge.engine.llama import Engine

    rendered = []
    for path in (default_gguf(), round_trip.ggufs["q8_0"]):
        engine = Engine(path, device="cpu", n_ctx=512)
        rendered.append(engine.render_chat(MESSAGES))
        engine.close()
    expected = round_trip.merged.tokenizer.apply_chat_template(
        MESSAGES, tokenize=False, add_generation_prompt=True
    )
    assert rendered == [expected, expected]


def test_provenance_is_kept_through_quantization(round_trip) -> None:
    from thinkjson_edge.files import sha256_file
    from thinkjson_edge.models.gguf import read_provenance

    for path in round_trip.ggufs.values():
        keys = read_provenance(read_header(path).metadata)
        assert keys["thinkjson.adapter"] == "adapter"
        assert keys["thinkjson.config_sha256"] == sha256_file(round_trip.train_config)
        assert len(keys["thinkjson.adapter_sha256"]) == 64
        assert keys["thinkjson.created"].endswith("Z")
        assert read_header(path).metadata["general.license"] == "apache-2.0"  # from the base
    result = CliRunner().invoke(main, ["models", "info", str(round_trip.ggufs["q4_k_m"])])
    assert result.exit_code == 0, result.output
    assert "thinkjson.adapter:" in result.output
    assert "q4_k_m" in result.output


def test_damaged_gguf_gives_a_clear_error_and_exit_code(round_trip, tmp_path: Path) -> None:
    data = round_trip.ggufs["q8_0"].read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[: len(data) - 1000])
    with pytest.raises(ConversionError, match="is truncated"):
        verify_gguf(cut, round_trip.reference)
    result = CliRunner().invoke(main, ["models", "verify", str(cut)])
    assert result.exit_code == 5
    assert "is truncated" in result.output


# -- qwen2 ------------------------------------------------------------------------


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_qwen2_is_written_and_verified(
    hf_default_model: Path, tmp_path: Path, tied: bool
) -> None:
    from thinkjson_edge.convert.merge import load_merged
    from thinkjson_edge.convert.to_gguf import write_gguf

    folder = tiny_qwen2(hf_default_model, tmp_path / "qwen2", tied=tied)
    merged = load_merged(folder)
    path = write_gguf(merged.model, merged.tokenizer, folder, tmp_path / "q.gguf")
    header = read_header(path)
    names = {tensor.name for tensor in header.tensors}
    assert header.architecture == "qwen2"
    assert {"blk.0.attn_q.bias", "blk.0.attn_k.bias", "blk.0.attn_v.bias"} <= names
    assert ("output.weight" in names) is (not tied)
    report = verify_gguf(path, HFReference(merged.model, merged.tokenizer))
    print(report.summary())
    assert report.passed, report.problems


def test_convert_command_merges_into_qwen2(hf_default_model: Path, tmp_path: Path) -> None:
    folder = tiny_qwen2(hf_default_model, tmp_path / "qwen2", tied=False)
    adapter = make_adapter(folder, tmp_path / "adapter")
    out = tmp_path / "out" / "tiny.gguf"
    result = CliRunner().invoke(
        main,
        ["convert", "--base", str(folder), "--adapter", str(adapter), "--out", str(out),
         "--quant", "f16"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "[4/4] verifying the f16 file" in result.output
    assert "verification passed (f16)" in result.output
    header = read_header(out)
    assert header.architecture == "qwen2" and header.metadata["thinkjson.adapter"] == "adapter"


def test_convert_command_exits_8_when_verification_fails(
    hf_default_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from thinkjson_edge.convert import to_gguf

    monkeypatch.setattr(to_gguf, "gguf_name", _swapping(to_gguf.gguf_name, 0, 1))
    folder = tiny_qwen2(hf_default_model, tmp_path / "qwen2", tied=True)
    out = tmp_path / "tiny.gguf"
    result = CliRunner().invoke(
        main, ["convert", "--base", str(folder), "--out", str(out), "--quant", "f16"]
    )
    assert result.exit_code == 8, result.output
    assert "verification FAILED" in result.output and "do not deploy" in result.output
    assert not out.exists()
    assert (tmp_path / "tiny.unverified.gguf").is_file()


def test_to_hf_command_round_trips_a_gguf(hf_default_model: Path, tmp_path: Path) -> None:
    from thinkjson_edge.convert.merge import load_merged
    from thinkjson_edge.convert.to_gguf import write_gguf

    folder = tiny_qwen2(hf_default_model, tmp_path / "qwen2", tied=True)
    merged = load_merged(folder)
    gguf_path = write_gguf(merged.model, merged.tokenizer, folder, tmp_path / "q.gguf")
    result = CliRunner().invoke(
        main, ["convert", "--to-hf", "--base", str(gguf_path), "--out", str(tmp_path / "hf")]
    )
    assert result.exit_code == 0, result.output
    back = load_merged(tmp_path / "hf")
    report = verify_gguf(gguf_path, HFReference(back.model, back.tokenizer))
    assert report.passed, report.problems
