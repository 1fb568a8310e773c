"""``convert``: base (+ adapter) -> merged -> F16 GGUF -> quantized GGUF -> verified.

Verification runs twice when quantizing: the F16 file against the merged model under the
strict F16 thresholds (a wrong tensor layout or tokenizer shows there, unblurred by
quantization noise), then the quantized file under its own thresholds.

The output path only ever holds a verified file: the candidate is written beside it as
``NAME.unverified.gguf`` and renamed once verification passes (or left there, for
inspection, when it fails).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thinkjson_edge.convert.quantize import QUANT_TYPES, quantize
from thinkjson_edge.convert.verify import GGUFModel, HFReference, VerificationReport, verify_gguf

from thinkjson_edge.errors import ConversionError, VerificationError
from thinkjson_edge.files import publish
from thinkjson_edge.models.adapter import cached_header, is_adapter
from thinkjson_edge.models.gguf import read_header

Say = Callable[[str], None]
UNQUANTIZED = ("f32", "f16", "bf16")  # GGUF file types llama.cpp quantizes from


@dataclass
class ConvertOutcome:
    out: Path
    quant: str
    size: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    f16_report: VerificationReport | None = None  # the layout check before quantizing
    report: VerificationReport | None = None  # the file written to ``out``
    notes: list[str] = field(default_factory=list)


def unverified_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.unverified{out.suffix or '.gguf'}")


def convert_model(
    base: Path,
    out: Path,
    *,
    quant: str = "q4_k_m",
    adapter: Path | None = None,
    train_config: Path | None = None,
    verify: bool = True,
    say: Say = lambda _line: None,
) -> ConvertOutcome:
    """Merge, write, quantize and verify; raise VerificationError when the result diverges.

    An unquantized GGUF base without an adapter is quantized directly and verified against
    itself in llama.cpp (no torch needed).
    """
    if quant not in QUANT_TYPES:
        raise ConversionError(f"unknown quantization {quant!r}; choose one of {list(QUANT_TYPES)}")
    base, out = Path(base), Path(out)
    if base.is_file() and (header := cached_header(base)) and is_adapter(header.metadata):
        raise ConversionError(f"{base} is a LoRA adapter; give the base model it applies to")
    outcome = ConvertOutcome(out=out, quant=quant)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if adapter is None and base.is_file() and read_header(base).file_type in UNQUANTIZED:
            _quantize_gguf(base, out, quant, verify, _Steps(1 + verify, outcome, say))
            return outcome
        steps = _Steps(4 + verify * (1 + (quant != "f16")) - (quant == "f16"), outcome, say)
        with tempfile.TemporaryDirectory(prefix=".thinkjson-convert-", dir=out.parent) as work:
            _convert_hf(base, adapter, train_config, out, quant, verify, Path(work), steps)
    except VerificationError as exc:
        exc.outcome = outcome
        raise
    return outcome


def _convert_hf(
    base: Path,
    adapter: Path | None,
    train_config: Path | None,
    out: Path,
    quant: str,
    verify: bool,
    work: Path,
    steps: _Steps,
) -> None:
    from thinkjson_edge.convert.merge import load_merged, trainable_folder
    from thinkjson_edge.convert.provenance import build_provenance
    from thinkjson_edge.convert.to_gguf import write_gguf

    outcome = steps.outcome
    with steps.run("load", f"loading the base model {base}"):
        model_dir = trainable_folder(base, work)
    label = f"merging the adapter {adapter}" if adapter else "loading the model in float32"
    with steps.run("merge", label):
        merged = load_merged(model_dir, adapter)
    reference = HFReference(merged.model, merged.tokenizer, label=f"the merged model ({base.name})")
    candidate = unverified_path(out)
    f16 = candidate if quant == "f16" else work / "model.f16.gguf"
    with steps.run("write_f16", "writing the F16 GGUF"):
        metadata = build_provenance(base, adapter, train_config)
        write_gguf(merged.model, merged.tokenizer, merged.model_dir, f16, name=out.stem,
                   metadata=metadata)  # fmt: skip
    if quant != "f16":
        if verify:
            with steps.run("verify_f16", f"checking the F16 file against {reference.label}"):
                outcome.f16_report = verify_gguf(f16, reference, quant="f16")
            outcome.f16_report.candidate = "the F16 conversion (before quantizing)"
            steps.say(outcome.f16_report.summary())
            outcome.f16_report.raise_if_failed()
        with steps.run("quantize", f"quantizing to {quant}"):
            notes = quantize(f16, candidate, quant)
        outcome.notes += [notes] if notes else []
    _finish(candidate, out, reference if verify else None, quant, steps)


def _quantize_gguf(base: Path, out: Path, quant: str, verify: bool, steps: _Steps) -> None:
    candidate = unverified_path(out)
    with steps.run("quantize", f"quantizing {base.name} to {quant}"):
        notes = quantize(base, candidate, quant)
    steps.outcome.notes += [notes] if notes else []
    reference = GGUFModel(base) if verify else None
    try:
        _finish(candidate, out, reference, quant, steps)
    finally:
        if reference is not None:
            reference.close()


def _finish(
    candidate: Path, out: Path, reference: HFReference | GGUFModel | None, quant: str,
    steps: _Steps,
) -> None:  # fmt: skip
    outcome = steps.outcome
    if reference is not None:
        with steps.run("verify", f"verifying the {quant} file against {reference.label}"):
            outcome.report = verify_gguf(candidate, reference, quant=quant)
        steps.say(outcome.report.summary())
        outcome.report.raise_if_failed()
    publish(candidate, out)
    outcome.size = out.stat().st_size


class _Steps:
    """Numbered progress lines ("[2/6] merging ... done in 3.1 s") and timings per step."""

    def __init__(self, total: int, outcome: ConvertOutcome, say: Say) -> None:
        self.total, self.outcome, self.say, self.done = total, outcome, say, 0

    @contextmanager
    def run(self, key: str, text: str) -> Iterator[Any]:
        self.done += 1
        self.say(f"[{self.done}/{self.total}] {text} ...")
        started = time.perf_counter()
        yield
        seconds = time.perf_counter() - started
        self.outcome.seconds[key] = round(seconds, 2)
        self.say(f"    done in {seconds:.1f} s")
