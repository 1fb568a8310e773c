"""Conversion and quantization of the default model: times, file sizes, verification figures.

    python bench/convert.py [--model PATH|NAME] [--quants f16,q8_0,q5_k_m,q4_k_m]
                            [--adapter-noise 0.02] [--work DIR] [--json]

Steps, each timed: the GGUF -> trainable HF folder; a LoRA adapter with random B matrices
(std --adapter-noise; 0 skips it) merged in; the merged model written as F16 GGUF; each
quantization with llama.cpp; verification of each file against the merged float32 model
(top-1 agreement and mean KL over the fixed prompt set; the reference's distributions are
computed once and reused, so the first verification includes them). Needs the train extra.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from thinkjson_edge.convert.merge import load_merged
from thinkjson_edge.convert.provenance import build_provenance
from thinkjson_edge.convert.quantize import quantize
from thinkjson_edge.convert.to_gguf import write_gguf
from thinkjson_edge.convert.to_hf import gguf_to_hf
from thinkjson_edge.convert.verify import HFReference, verify_gguf

from thinkjson_edge.environment import bound_openmp_spinning
from thinkjson_edge.models.choice import choose_model


def make_adapter(model_dir: Path, out: Path, noise: float) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=targets))
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0.0, noise)
    peft_model.save_pretrained(out)
    return out


def run(model: str, quants: list[str], noise: float, work: Path) -> dict[str, Any]:
    source = choose_model(model).path
    record: dict[str, Any] = {"model": str(source), "source_size": source.stat().st_size}
    started = time.perf_counter()
    folder = gguf_to_hf(source, work / "hf")
    record["to_hf_seconds"] = round(time.perf_counter() - started, 1)
    record["hf_folder_size"] = sum(p.stat().st_size for p in folder.iterdir())
    adapter = make_adapter(folder, work / "adapter", noise) if noise > 0 else None
    started = time.perf_counter()
    merged = load_merged(folder, adapter)
    record["load_merge_seconds"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    f16 = write_gguf(
        merged.model, merged.tokenizer, folder, work / "f16.gguf",
        metadata=build_provenance(folder, adapter),
    )  # fmt: skip
    record["write_f16_seconds"] = round(time.perf_counter() - started, 1)
    reference = HFReference(merged.model, merged.tokenizer)
    rows = []
    for quant in quants:
        started = time.perf_counter()
        path = f16 if quant == "f16" else work / f"{quant}.gguf"
        if quant != "f16":
            quantize(f16, path, quant)
        quantize_seconds = time.perf_counter() - started
        started = time.perf_counter()
        report = verify_gguf(path, reference, quant=quant)
        rows.append(
            {
                "quant": quant,
                "size": path.stat().st_size,
                "quantize_seconds": round(quantize_seconds, 1),
                "verify_seconds": round(time.perf_counter() - started, 1),
                "top1": round(report.top1, 3),
                "mean_kl": round(report.mean_kl, 5),
                "max_kl": round(report.max_kl, 3),
                "passed": report.passed,
                "threshold": f"top-1 >= {report.threshold.min_top1}, "
                f"KL <= {report.threshold.max_mean_kl}",
            }
        )
    record["positions"] = report.positions
    record["quants"] = rows
    return record


def markdown(record: dict[str, Any]) -> str:
    lines = [
        f"source {Path(record['model']).name}: {record['source_size'] / 1e6:.1f} MB",
        f"GGUF -> HF folder: {record['to_hf_seconds']} s "
        f"({record['hf_folder_size'] / 1e6:.0f} MB)",
        f"load + merge the adapter: {record['load_merge_seconds']} s",
        f"write F16 GGUF: {record['write_f16_seconds']} s",
        f"verified on {record['positions']} positions",
        "",
        "| quant | size | quantize | verify | top-1 | mean KL | max KL | threshold | passed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in record["quants"]:
        lines.append(
            f"| {row['quant']} | {row['size'] / 1e6:.1f} MB | {row['quantize_seconds']} s "
            f"| {row['verify_seconds']} s | {row['top1']} | {row['mean_kl']} | {row['max_kl']} "
            f"| {row['threshold']} | {row['passed']} |"
        )
    return "\n".join(lines)


def main() -> None:
    bound_openmp_spinning()  # before torch and llama.cpp load
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--quants", default="f16,q8_0,q5_k_m,q4_k_m")
    parser.add_argument("--adapter-noise", type=float, default=0.02)
    parser.add_argument("--work", type=Path, help="keep the files here (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-convert-") as temp:
        work = args.work or Path(temp)
        work.mkdir(parents=True, exist_ok=True)
        record = run(args.model, args.quants.split(","), args.adapter_noise, work)
    print(json.dumps(record, indent=2) if args.json else markdown(record))


if __name__ == "__main__":
    main()
