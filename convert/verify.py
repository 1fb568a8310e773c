"""Does a GGUF behave like the model it was made from? Next-token distributions, compared.

On a fixed set of prompts the reference (the merged Hugging Face model, or a GGUF such as
the F16 a quantized file came from) and the candidate GGUF in llama.cpp each give a
next-token distribution at every position, from the same token ids. Figures:

- top-1 agreement: the share of positions where both put the same token first;
- mean KL(reference || candidate) over positions, in nats.

Besides, both sides must tokenize every prompt identically and carry the same chat
template. Thresholds depend on the candidate's quantization (``THRESHOLDS``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from thinkjson_edge.convert.native_log import captured_stderr

from thinkjson_edge.engine.llama import plain_weight_buffers
from thinkjson_edge.environment import bound_openmp_spinning
from thinkjson_edge.errors import ConversionError, VerificationError
from thinkjson_edge.models.gguf import read_header


@dataclass(frozen=True)
class Threshold:
    min_top1: float
    max_mean_kl: float


# Calibrated on the default model (SmolLM2-135M with a LoRA adapter merged in) against its
# float32 HF model, 268 positions: F16 top-1 0.993, KL 0.00002; Q8_0 0.951, 0.006;
# Q6_K 0.940, 0.018; Q5_K_M 0.832, 0.096; Q4_K_M 0.847, 0.082 (576-wide rows make most
# K-quant tensors fall back to Q5_0/Q5_1/Q8_0). A wrong layout measured far outside, even
# at F16: rotary rows not interleaved top-1 0.418, KL 1.37; two layers swapped 0.739, 0.287.
# Small models suffer most from quantization; a 1.5B model sits well inside these bounds.
THRESHOLDS: dict[str, Threshold] = {
    "f32": Threshold(0.97, 0.002),
    "f16": Threshold(0.97, 0.002),
    "bf16": Threshold(0.95, 0.01),
    "q8_0": Threshold(0.90, 0.03),
    "q6_k": Threshold(0.85, 0.08),
    "q5_k_m": Threshold(0.75, 0.30),
    "q5_k_s": Threshold(0.75, 0.30),
    "q4_k_m": Threshold(0.75, 0.30),
    "q4_k_s": Threshold(0.70, 0.40),
}
DEFAULT_THRESHOLD = Threshold(0.60, 0.60)  # any other quantization (Q4_0 measured 0.672, 0.425)

# The fixed prompts: chat turns (rendered with the model's own template) and plain text.
CHAT_PROMPTS: tuple[tuple[dict[str, str], ...], ...] = (
    (
        {"role": "system", "content": "Extract the fields of the schema as one JSON object."},
        {
            "role": "user",
            "content": 'Schema: {"total": "number", "currency": "string"}\n'
            "Receipt: 2 x coffee 3.20, croissant 2.10. TOTAL 8.50 EUR. Thank you!",
        },
    ),
    (
        {
            "role": "user",
            "content": "Batch record B-2291: filled 2024-03-14 by operator J. Ortiz, "
            "pH 7.2 at 21 C, yield 98.4 %. Deviation DV-17 closed. Give the batch number.",
        },
    ),
)
TEXT_PROMPTS: tuple[str, ...] = (
    "The certificate of analysis lists the lot number, the expiry date and the assay result",
    '{"invoice_number": "INV-2024-0042", "issued": "2024-05-31", "total": 1234.5, "lines": [',
    "Contract between Acme GmbH and Beta Ltd., signed in Zürich on 1 June 2023; term: 24 months.",
)


@dataclass
class VerificationReport:
    """The figures of one verification, and whether they pass."""

    candidate: str
    reference: str
    quant: str
    threshold: Threshold
    prompts: int = 0
    positions: int = 0
    top1: float = 0.0
    mean_kl: float = 0.0
    max_kl: float = 0.0
    tokenizer_mismatches: list[str] = field(default_factory=list)
    template_matches: bool = True
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def judge(self) -> None:
        """Fill ``problems`` from the figures and the threshold."""
        self.problems = []
        if self.tokenizer_mismatches:
            shown = "; ".join(self.tokenizer_mismatches[:3])
            self.problems.append(f"tokenization differs from the reference ({shown})")
        if not self.template_matches:
            self.problems.append("the chat template differs from the reference's")
        if self.top1 < self.threshold.min_top1:
            self.problems.append(
                f"top-1 agreement {self.top1:.3f} is below {self.threshold.min_top1} "
                f"for {self.quant}"
            )
        if self.mean_kl > self.threshold.max_mean_kl:
            self.problems.append(
                f"mean KL {self.mean_kl:.4f} is above {self.threshold.max_mean_kl} for {self.quant}"
            )

    def summary(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"verification {verdict} ({self.quant}): top-1 agreement {self.top1:.3f} "
            f"(min {self.threshold.min_top1}), mean KL {self.mean_kl:.4f} nats "
            f"(max {self.threshold.max_mean_kl}), max KL {self.max_kl:.3f}, "
            f"{self.positions} positions over {self.prompts} prompts"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}

    def raise_if_failed(self) -> None:
        if not self.passed:
            raise VerificationError(
                f"{self.candidate} does not match {self.reference}: "
                + "; ".join(self.problems)
                + ". The conversion is wrong (tensor layout, tokenizer) or the quantization "
                "too coarse for this model; do not deploy this file"
            )


class Reference(Protocol):
    """What verification needs from either side."""

    label: str
    chat_template: str | None

    def render(self, messages: Sequence[dict[str, str]]) -> str: ...
    def tokenize(self, text: str) -> list[int]: ...
    def logprobs(self, ids: list[int]) -> np.ndarray: ...
    def close(self) -> None: ...


class HFReference:
    """A Hugging Face model and tokenizer in memory (float).

    Its distributions are kept, so checking several files against one model (F16, Q8_0,
    Q4_K_M) runs the reference once.
    """

    def __init__(self, model: Any, tokenizer: Any, label: str = "the Hugging Face model") -> None:
        self.model, self.tokenizer, self.label = model.eval(), tokenizer, label
        self.chat_template = tokenizer.chat_template
        self._seen: dict[tuple[int, ...], np.ndarray] = {}

    def render(self, messages: Sequence[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=True
        )

    def tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def logprobs(self, ids: list[int]) -> np.ndarray:
        import torch

        key = tuple(ids)
        if key not in self._seen:
            with torch.no_grad():
                logits = self.model(torch.tensor([ids])).logits[0]
            self._seen[key] = _log_softmax(logits.to(torch.float64).numpy())
        return self._seen[key]

    def close(self) -> None:
        pass


class GGUFModel:
    """A GGUF file in llama.cpp (CPU), used as the candidate or as the reference."""

    def __init__(self, path: Path, n_ctx: int = 1024, *, adapter: Path | None = None) -> None:
        self.path = Path(path)
        self.label = str(path) + (f" with {adapter}" if adapter else "")
        self.llama = load_llama(self.path, n_ctx=n_ctx, adapter=adapter)
        self.chat_template = self.llama.metadata.get("tokenizer.chat_template")

    def render(self, messages: Sequence[dict[str, str]]) -> str:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        model = self.llama._model
        eos = model.token_get_text(model.token_eos()) if model.token_eos() >= 0 else ""
        bos = model.token_get_text(model.token_bos()) if model.token_bos() >= 0 else ""
        template = self.chat_template or ""
        formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        return formatter(messages=list(messages)).prompt

    def tokenize(self, text: str) -> list[int]:
        return self.llama.tokenize(text.encode("utf-8"), add_bos=True, special=True)

    def logprobs(self, ids: list[int]) -> np.ndarray:
        self.llama.reset()
        self.llama.eval(ids)
        return _log_softmax(np.array(self.llama.scores[: len(ids)], dtype=np.float64))

    def close(self) -> None:
        self.llama.close()


def verify_gguf(
    candidate: Path, reference: Reference, *, quant: str | None = None, adapter: Path | None = None
) -> VerificationReport:
    """Compare ``candidate`` with ``reference`` on the fixed prompts; never raises on a fail.

    ``adapter``: a LoRA GGUF that llama.cpp applies to ``candidate`` (the base's quantization
    sets the threshold).
    """
    quant = quant or read_header(candidate).file_type
    report = VerificationReport(
        candidate=str(candidate) + (f" with {adapter}" if adapter else ""),
        reference=reference.label,
        quant=quant,
        threshold=THRESHOLDS.get(quant, DEFAULT_THRESHOLD),
    )
    model = GGUFModel(candidate, adapter=adapter)
    try:
        report.template_matches = (model.chat_template or None) == (reference.chat_template or None)
        texts = [reference.render(turns) for turns in CHAT_PROMPTS] + list(TEXT_PROMPTS)
        kls: list[np.ndarray] = []
        agree = 0
        for text in texts:
            ids = reference.tokenize(text)
            if model.tokenize(text) != ids:
                report.tokenizer_mismatches.append(repr(text[:40]))
            ref, cand = reference.logprobs(ids), model.logprobs(ids)
            if ref.shape != cand.shape:
                raise VerificationError(
                    f"{candidate} has {cand.shape[-1]} vocabulary entries, the reference "
                    f"{ref.shape[-1]}: they are not the same model"
                )
            kls.append(np.sum(np.exp(ref) * (ref - cand), axis=-1))
            agree += int(np.sum(ref.argmax(-1) == cand.argmax(-1)))
    finally:
        model.close()
    every = np.concatenate(kls)
    report.prompts, report.positions = len(texts), len(every)
    report.top1 = agree / len(every)
    report.mean_kl, report.max_kl = float(every.mean()), float(every.max())
    report.judge()
    return report


def load_llama(
    path: Path, *, vocab_only: bool = False, n_ctx: int = 512, adapter: Path | None = None
) -> Any:
    """The GGUF in llama.cpp on CPU, or ConversionError saying why it cannot be loaded.

    ``adapter``: a LoRA GGUF applied to the model (it needs the weights: not ``vocab_only``).
    """
    bound_openmp_spinning()
    import llama_cpp
    from llama_cpp import Llama

    read_header(path)  # a clear message for truncated files, before llama.cpp's terse one
    threads = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    try:
        with captured_stderr() as log, plain_weight_buffers(llama_cpp):
            return Llama(
                model_path=str(path),
                lora_path=str(adapter) if adapter else None,
                vocab_only=vocab_only,
                n_ctx=n_ctx,
                n_gpu_layers=0,
                n_threads=threads,
                n_threads_batch=threads,
                logits_all=not vocab_only,
                verbose=False,
            )
    except (ValueError, RuntimeError) as exc:
        loaded = f"{path}" + (f" with {adapter}" if adapter else "")
        raise ConversionError(f"llama.cpp cannot load {loaded}: {exc}. {log.tail(3)}") from exc


def llama_tokenize(path: Path, texts: Sequence[str]) -> list[list[int]]:
    """Token ids llama.cpp gives each text (special tokens parsed, no BOS added)."""
    llama = load_llama(path, vocab_only=True)
    try:
        return [llama.tokenize(text.encode("utf-8"), add_bos=False, special=True) for text in texts]
    finally:
        llama.close()


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
