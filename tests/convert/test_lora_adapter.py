"""LoRA adapters run unmerged: PEFT folder -> LoRA GGUF -> llama.cpp applies it to its base.

Real throughout: a PEFT adapter with random B matrices on the default model (made once per
module), the GGUF writer, llama.cpp's own LoRA loader, and the merged Hugging Face model as
the reference. Needs the ``train`` extra; skipped without it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("gguf")

from peft_adapters import make_adapter, tiny_qwen2
from thinkjson_edge.convert.lora_gguf import write_lora_gguf
from thinkjson_edge.convert.verify import HFReference, verify_gguf

from thinkjson_edge.cli import main
from thinkjson_edge.cli.exit_codes import EXIT_MODEL
from thinkjson_edge.engine.llama import Engine
from thinkjson_edge.errors import ConversionError, ModelLoadError
from thinkjson_edge.files import sha256_file
from thinkjson_edge.models import store as model_store
from thinkjson_edge.models.choice import BASE_MODEL, choose_model
from thinkjson_edge.models.gguf import read_header

pytestmark = pytest.mark.model

# B ~ N(0, 0.08) moves the default model far from itself (mean KL 0.22 nats from the bare
# base), so a run that applies the adapter wrongly cannot pass for a right one.
ADAPTER_STD = 0.08
PROMPT = "The certificate of analysis lists the lot number"


@dataclass
class Lora:
    folder: Path  # the PEFT adapter
    gguf: Path  # the same adapter, written for llama.cpp
    reference: HFReference  # the adapter merged into the base in float32 (transformers)


@pytest.fixture(scope="module")
def lora(hf_default_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Lora:
    from thinkjson_edge.convert.merge import load_merged

    work = tmp_path_factory.mktemp("lora")
    folder = make_adapter(hf_default_model, work / "adapter", std=ADAPTER_STD)
    gguf = write_lora_gguf(folder, BASE_MODEL, work / "receipts-lora.gguf")
    merged = load_merged(hf_default_model, folder)
    return Lora(folder, gguf, HFReference(merged.model, merged.tokenizer, label="merged"))


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty model store of this test's own."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return model_store.store_dir()


def default_gguf() -> Path:
    return choose_model(BASE_MODEL).path


# -- the file ---------------------------------------------------------------------------


def test_the_file_has_the_layout_llama_cpp_checks(lora: Lora) -> None:
    header = read_header(lora.gguf)
    meta = header.metadata
    assert meta["general.type"] == "adapter" and meta["adapter.type"] == "lora"
    assert meta["adapter.lora.alpha"] == 16.0
    assert meta["general.architecture"] == "llama"
    assert meta["thinkjson.base_name"] == BASE_MODEL
    assert meta["thinkjson.base_sha256"] == sha256_file(default_gguf())
    assert meta["general.license"] == "apache-2.0"  # the base's, carried over
    base = {t.name: t.shape for t in read_header(default_gguf()).tensors}
    tensors = {t.name: t for t in header.tensors}
    assert len(tensors) == 30 * 7 * 2  # every layer, all seven linear modules, A and B
    assert {t.type_name for t in tensors.values()} == {"F16"}
    for name, a in tensors.items():
        if not name.endswith(".lora_a"):
            continue
        target = name.removesuffix(".lora_a")
        b = tensors[f"{target}.lora_b"]
        n_in, n_out = base[target]  # ggml order, as llama.cpp compares them
        assert a.shape == (n_in, 8) and b.shape == (8, n_out)
    # r=8 on all seven modules of a 135M model, F16: about 5 MB (an r=16 one about 10 MB)
    assert 4_500_000 < lora.gguf.stat().st_size < 5_500_000


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"use_dora": True}, "DoRA"),
        ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
        ({"rank_pattern": {"q_proj": 4}}, "rank_pattern"),
        ({"alpha_pattern": {"q_proj": 4}}, "alpha_pattern"),
        ({"bias": "lora_only"}, "trained biases"),
        ({"peft_type": "IA3"}, "only LoRA"),
    ],
)
def test_settings_llama_cpp_cannot_apply_are_refused(
    lora: Lora, tmp_path: Path, change: dict, message: str
) -> None:
    folder = Path(shutil.copytree(lora.folder, tmp_path / "adapter"))
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(ConversionError, match=message):
        write_lora_gguf(folder, BASE_MODEL, tmp_path / "out.gguf")
    assert not (tmp_path / "out.gguf").exists()


def test_rslora_keeps_its_scale(lora: Lora, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(lora.folder, tmp_path / "adapter"))
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**config, "use_rslora": True}))
    out = write_lora_gguf(folder, BASE_MODEL, tmp_path / "out.gguf")
    # llama.cpp scales by alpha / r; rsLoRA by lora_alpha / sqrt(r) = 16 / sqrt(8)
    alpha = read_header(out).metadata["adapter.lora.alpha"]
    assert alpha / 8 == pytest.approx(16 / 8**0.5, rel=1e-6)


def test_a_module_the_base_file_lacks_is_refused(lora: Lora, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    folder = tmp_path / "adapter"
    folder.mkdir()
    shutil.copyfile(lora.folder / "adapter_config.json", folder / "adapter_config.json")
    # The default model ties its output layer to the embeddings: there is no output.weight.
    head = "base_model.model.lm_head"
    weights = {f"{head}.lora_A.weight": torch.zeros(8, 576),
               f"{head}.lora_B.weight": torch.zeros(49152, 8)}  # fmt: skip
    save_file(weights, folder / "adapter_model.safetensors")
    with pytest.raises(ConversionError, match=r"lm_head, whose weight output\.weight is not"):
        write_lora_gguf(folder, BASE_MODEL, tmp_path / "out.gguf")


def test_a_base_the_runtime_cannot_find_by_name_is_refused(lora: Lora, tmp_path: Path) -> None:
    stray = Path(shutil.copyfile(default_gguf(), tmp_path / "somewhere.gguf"))
    with pytest.raises(ConversionError, match="neither the default model nor an installed one"):
        write_lora_gguf(lora.folder, stray, tmp_path / "out.gguf")


# -- llama.cpp applies it ---------------------------------------------------------------


def test_llama_cpp_runs_the_adapter_like_the_merged_model(lora: Lora) -> None:
    bare = verify_gguf(default_gguf(), lora.reference)
    applied = verify_gguf(default_gguf(), lora.reference, adapter=lora.gguf)
    print(f"bare base: {bare.summary()}\nbase + adapter: {applied.summary()}")
    # Measured against the merged float32 model: bare base mean KL 0.219 (top-1 0.757);
    # base + adapter 0.0044 (top-1 0.974), the same as the bare Q4_1 base against its own
    # float32 weights (0.0044: llama.cpp quantizes activations for Q4_1 products). Written
    # without the q/k row interleave the adapter measured 0.034: 0.01 tells them apart, and
    # a wrong alpha scale would land far above it too.
    assert applied.mean_kl < 0.01
    assert applied.mean_kl < bare.mean_kl / 10
    assert applied.top1 > bare.top1


def test_the_engine_applies_the_adapter_chosen_by_path(lora: Lora) -> None:
    choice = choose_model(str(lora.gguf))
    assert choice.adapter == lora.gguf and choice.path == default_gguf()
    assert choice.name == "receipts-lora" and choice.base_name == BASE_MODEL
    assert choice.describe() == f"receipts-lora (LoRA adapter on {BASE_MODEL})"
    with_adapter = Engine(choice.path, adapter=choice.adapter, device="cpu", n_ctx=512)
    bare = Engine(choice.path, device="cpu", n_ctx=512)
    try:
        continuations = [greedy(engine, PROMPT, 8) for engine in (with_adapter, bare)]
    finally:
        with_adapter.close()
        bare.close()
    assert continuations[0] != continuations[1]


def greedy(engine: Engine, prompt: str, tokens: int) -> list[int]:
    engine.evaluate_prompt(engine.tokenize(prompt))
    written = []
    for _ in range(tokens):
        token = int(np.argmax(engine.logits()))
        written.append(token)
        engine.feed(token)
    return written


def test_an_extraction_report_records_the_adapter(lora: Lora, tmp_path: Path) -> None:
    from thinkjson_edge.pipeline.extractor import Extractor

    document = tmp_path / "doc.txt"
    document.write_text("Batch BR-7731 released on 2024-03-02.\n", encoding="utf-8")
    schema = {"type": "object", "properties": {"batch": {"type": "string"}}}
    with Extractor(lora.gguf, device="cpu", n_ctx=1024) as extractor:
        result = extractor.extract(document, schema, think=False, self_correct=False)
    record = result.to_dict()
    assert record["model"] == "receipts-lora"
    assert record["adapter"] == {
        "name": "receipts-lora",
        "file": "receipts-lora.gguf",
        "sha256": sha256_file(lora.gguf),
        "base": BASE_MODEL,
        "base_sha256": sha256_file(default_gguf()),
    }


def test_an_evaluation_cache_keeps_runs_with_and_without_the_adapter_apart() -> None:
    from thinkjson_edge.evaluation.run import EvalSettings, cache_key

    inputs = ("d" * 64, "s" * 64, "m" * 64, EvalSettings())
    assert cache_key(*inputs) != cache_key(*inputs, "a" * 64)
    assert cache_key(*inputs) == cache_key(*inputs, None)  # plain runs keep their keys


# -- the base must be the very file --------------------------------------------------------


def test_an_adapter_for_another_file_under_the_base_name_is_refused(
    lora: Lora, store: Path, tmp_path: Path
) -> None:
    model_store.install_file(default_gguf(), "base-a", {"source": {"test": True}})
    adapter = write_lora_gguf(lora.folder, "base-a", tmp_path / "on-a.gguf")
    assert choose_model(str(adapter)).path == store / "base-a.gguf"

    installed = store / "base-a.gguf"
    with installed.open("r+b") as handle:  # another file now answers to the name base-a
        handle.seek(installed.stat().st_size // 2)
        handle.write(b"\x00\x01\x02\x03")
    with pytest.raises(ModelLoadError, match="made for the base model 'base-a'") as refused:
        choose_model(str(adapter))
    assert "another file under that name" in str(refused.value)
    assert sha256_file(default_gguf())[:12] in str(refused.value)

    document = tmp_path / "doc.txt"
    document.write_text("Batch BR-7731 released on 2024-03-02.\n", encoding="utf-8")
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"b": {"type": "string"}}}))
    result = CliRunner().invoke(
        main, ["extract", str(document), "--schema", str(schema), "--model", str(adapter)]
    )
    assert result.exit_code == EXIT_MODEL
    assert "made for the base model 'base-a'" in result.stderr

    installed.unlink()
    with pytest.raises(ModelLoadError, match=r"'base-a' \(sha256 \w+…\), which is not installed"):
        choose_model(str(adapter))


def test_an_adapter_that_names_no_base_is_refused(tmp_path: Path) -> None:
    import gguf

    path = tmp_path / "foreign.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 16.0)
    writer.add_tensor("blk.0.attn_q.weight.lora_a", np.zeros((8, 576), dtype=np.float16))
    writer.add_tensor("blk.0.attn_q.weight.lora_b", np.zeros((576, 8), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelLoadError, match="does not say which base model file"):
        choose_model(str(path))


# -- the store --------------------------------------------------------------------------


def test_an_adapter_is_written_carried_installed_and_listed(
    lora: Lora, store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "receipts-lora.gguf"
    written = CliRunner().invoke(
        main, ["convert", "--base", BASE_MODEL, "--adapter", str(lora.folder), "--lora-gguf",
               "--out", str(out)],
    )  # fmt: skip
    assert written.exit_code == 0, written.output
    bundle = tmp_path / "bundle"
    exported = CliRunner().invoke(main, ["models", "export", str(out), str(bundle)])
    assert exported.exit_code == 0, exported.output
    assert f"LoRA adapter for the base model {BASE_MODEL}" in (bundle / "README.md").read_text()
    imported = CliRunner().invoke(main, ["models", "import", str(bundle)])
    assert imported.exit_code == 0, imported.output
    assert choose_model("receipts-lora").adapter == store / "receipts-lora.gguf"

    listed = CliRunner().invoke(main, ["models", "list"])
    short = sha256_file(default_gguf())[:12]
    line = next(x for x in listed.output.splitlines() if "receipts-lora" in x)
    assert f"LoRA adapter on {BASE_MODEL} (base sha256 {short})" in line
    (row,) = json.loads(CliRunner().invoke(main, ["models", "list", "--json"]).output)
    assert (row["type"], row["base"]) == ("adapter", BASE_MODEL)

    info_json = CliRunner().invoke(main, ["models", "info", "receipts-lora", "--json"]).output
    info = json.loads(info_json)
    assert info["type"] == "LoRA adapter" and info["rank"] == 8 and info["alpha"] == 16.0
    assert info["layers"] == 30 and "attn_q" in info["targets"]
    assert info["base"] == BASE_MODEL and info["base_check"].startswith("ok: ")
    text = CliRunner().invoke(main, ["models", "info", "receipts-lora"]).output
    assert "LoRA adapter" in text and "base_sha256:" in text

    verified = CliRunner().invoke(main, ["models", "verify", "receipts-lora"])
    assert verified.exit_code == 0, verified.output
    assert "llama.cpp applies receipts-lora.gguf" in verified.output


# -- qwen2: no q/k interleave -----------------------------------------------------------------


def test_a_qwen2_adapter_runs_like_its_merged_model(
    hf_default_model: Path, store: Path, tmp_path: Path
) -> None:
    from thinkjson_edge.convert.merge import load_merged
    from thinkjson_edge.convert.to_gguf import write_gguf

    folder = tiny_qwen2(hf_default_model, tmp_path / "qwen2", tied=False)
    plain = load_merged(folder)
    base = write_gguf(plain.model, plain.tokenizer, folder, tmp_path / "tiny.gguf")
    installed = model_store.install_file(base, "tiny-qwen2", {}).path
    adapter = make_adapter(folder, tmp_path / "adapter", std=ADAPTER_STD)
    gguf = write_lora_gguf(adapter, "tiny-qwen2", tmp_path / "tiny-lora.gguf")
    merged = load_merged(folder, adapter)
    reference = HFReference(merged.model, merged.tokenizer, label="merged")
    bare = verify_gguf(installed, reference)
    applied = verify_gguf(installed, reference, adapter=gguf)
    print(f"bare base: {bare.summary()}\nbase + adapter: {applied.summary()}")
    # An F16 base adds no quantization noise: measured mean KL 0.000005 with the adapter,
    # 0.54 without it. qwen2's q/k rows stay as they are (llama.cpp rotates halves for it).
    assert applied.mean_kl < 0.001
    assert applied.mean_kl < bare.mean_kl / 10
