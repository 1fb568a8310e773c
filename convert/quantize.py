"""F16 GGUF -> a quantized GGUF, with llama.cpp's own quantizer (``llama_model_quantize``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from thinkjson_edge.convert.native_log import captured_stderr

from thinkjson_edge.environment import bound_openmp_spinning
from thinkjson_edge.errors import ConversionError
from thinkjson_edge.files import atomic_target
from thinkjson_edge.models.gguf import read_header

# --quant name -> llama_ftype (llama.h)
QUANT_TYPES: dict[str, int] = {
    "f16": 1,
    "q8_0": 7,
    "q6_k": 18,
    "q5_k_m": 17,
    "q5_k_s": 16,
    "q4_k_m": 15,
    "q4_k_s": 14,
    "q4_0": 2,
}
CLI_QUANTS = ("q4_k_m", "q5_k_m", "q8_0", "f16")  # the ones `convert --quant` offers


def quantize(source: Path, out_path: Path, quant: str, *, threads: int | None = None) -> str:
    """Write ``source`` (F16/F32 GGUF) quantized as ``quant`` to ``out_path``; return it.

    ``f16`` copies the file. Every KV pair (tokenizer, chat template, provenance) is kept;
    llama.cpp updates ``general.file_type``. Written under a temporary name, then renamed.
    Returns llama.cpp's notes worth showing (tensors that fell back to another type).
    """
    if quant not in QUANT_TYPES:
        raise ConversionError(f"unknown quantization {quant!r}; choose one of {list(QUANT_TYPES)}")
    if read_header(source).file_type not in ("f16", "f32", "bf16"):
        raise ConversionError(
            f"{source} is already quantized; quantize from the F16 or F32 file instead"
        )
    notes = ""
    with atomic_target(Path(out_path)) as partial:
        if quant == "f16":
            shutil.copyfile(source, partial)
        else:
            notes = _llama_quantize(source, partial, QUANT_TYPES[quant], threads)
    return notes


def _llama_quantize(source: Path, target: Path, ftype: int, threads: int | None) -> str:
    bound_openmp_spinning()
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads or 0  # 0: every core
    with captured_stderr() as log:  # one line per tensor otherwise
        status = llama_cpp.llama_model_quantize(
            str(source).encode("utf-8"), str(target).encode("utf-8"), params
        )
    if status != 0:
        raise ConversionError(
            f"llama.cpp failed to quantize {source} (status {status}): {log.tail()}"
        )
    return "\n".join(line for line in log.text.splitlines() if "fallback quantization" in line)
