"""``thinkjson-edge convert``: adapter merge, GGUF export, quantization, verification.

Needs the ``train`` extra (torch, transformers, peft, gguf), imported only when it runs,
except for re-quantizing an F16 GGUF without an adapter (llama.cpp alone).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from thinkjson_edge.cli.exit_codes import guarded
from thinkjson_edge.cli.options import quiet_option
from thinkjson_edge.environment import stay_offline
from thinkjson_edge.errors import OutputWriteError, ThinkJsonError, VerificationError
from thinkjson_edge.files import write_atomically
from thinkjson_edge.models.store import resolve_source

if TYPE_CHECKING:
    from thinkjson_edge.convert.pipeline import ConvertOutcome

QUANTS = ("q4_k_m", "q5_k_m", "q8_0", "f16")  # the choices of --quant
TRAIN_INSTALL = "pip install 'thinkjson-edge[train]'"


@click.command("convert")
@click.option(
    "--base",
    required=True,
    help="Base model: a Hugging Face folder, a GGUF file, or an installed model name.",
)
@click.option(
    "--adapter",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="PEFT LoRA adapter folder to merge into the base.",
)
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(path_type=Path),
    help="Output .gguf file (with --to-hf: the output folder).",
)
@click.option(
    "--quant",
    type=click.Choice(QUANTS),
    default="q4_k_m",
    show_default=True,
    help="Quantization of the output GGUF.",
)
@click.option(
    "--to-hf",
    is_flag=True,
    help="Instead: convert the --base GGUF to a trainable Hugging Face folder at --out.",
)
@click.option(
    "--lora-gguf",
    is_flag=True,
    help="Instead of merging: write --adapter as a LoRA GGUF that llama.cpp applies to --base "
    "(the default model or an installed one) at run time; run it with --model OUT.",
)
@click.option(
    "--train-config",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Training config file, hashed into the provenance [default: the adapter's meta.json].",
)
@click.option(
    "--verify/--no-verify",
    default=True,
    show_default=True,
    help="Compare the GGUF's next-token distributions with the source model's.",
)
@click.option(
    "--report-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write timings, sizes and verification figures here as JSON.",
)
@quiet_option()
def convert(
    base: str,
    adapter: Path | None,
    out: Path,
    quant: str,
    to_hf: bool,
    lora_gguf: bool,
    train_config: Path | None,
    verify: bool,
    report_file: Path | None,
    quiet: bool,
) -> None:
    """Merge an adapter into a base model and write a verified, quantized GGUF.

    The file appears at --out only once verification passes; a file that fails is left as
    NAME.unverified.gguf and the command exits with code 8. With --lora-gguf nothing is
    merged: the adapter is written as a small GGUF that runs on the unchanged base.
    """
    stay_offline()

    def say(line: str) -> None:
        if not quiet:
            click.echo(line, err=True)

    with guarded():
        _check_paths(base, adapter, train_config, out, report_file, folder_out=to_hf)
        try:
            if lora_gguf:
                _lora_gguf(base, adapter, out, say)
                return
            _convert(base, adapter, out, quant, to_hf, train_config, verify, report_file, say)
        except ImportError as exc:
            message = f"convert needs the training libraries ({exc}): {TRAIN_INSTALL}"
            raise ThinkJsonError(message) from exc
        except OSError as exc:
            raise OutputWriteError(f"cannot write {out}: {exc}") from exc


def _check_paths(
    base: str,
    adapter: Path | None,
    train_config: Path | None,
    out: Path,
    report_file: Path | None,
    *,
    folder_out: bool,
) -> None:
    """No output may be an input, or hold one: refused before minutes of conversion."""
    from thinkjson_edge.cli.path_guard import check_paths, file_place, folder_place

    base_path = Path(base).expanduser()
    base_place = folder_place if base_path.is_dir() else file_place
    inputs = [*folder_place("--adapter", adapter), *file_place("--train-config", train_config)]
    if base_path.exists():
        inputs += base_place("--base", base_path)
    out_place = folder_place if folder_out else file_place
    check_paths(inputs, [*out_place("--out", out), *file_place("--report-file", report_file)])


def _convert(
    base: str,
    adapter: Path | None,
    out: Path,
    quant: str,
    to_hf: bool,
    train_config: Path | None,
    verify: bool,
    report_file: Path | None,
    say: Callable[[str], None],
) -> None:
    source = resolve_source(base)
    if to_hf:
        _to_hf(source, out, say)
        return
    if out.suffix != ".gguf":
        raise click.UsageError("--out must name a .gguf file (or use --to-hf)")
    from thinkjson_edge.convert.pipeline import convert_model

    try:
        outcome = convert_model(
            source,
            out,
            quant=quant,
            adapter=adapter,
            train_config=train_config,
            verify=verify,
            say=say,
        )
    except VerificationError as exc:
        if report_file is not None and exc.outcome is not None:
            _write_report(report_file, exc.outcome)
        raise
    if report_file is not None:
        _write_report(report_file, outcome)
    say(f"wrote {out} ({outcome.size / 1e6:,.1f} MB, {quant})")


def _lora_gguf(base: str, adapter: Path | None, out: Path, say: Callable[[str], None]) -> None:
    from thinkjson_edge.convert.lora_gguf import write_lora_gguf
    from thinkjson_edge.convert.verify import load_llama
    from thinkjson_edge.models.choice import choose_model

    if adapter is None or out.suffix != ".gguf":
        raise click.UsageError("--lora-gguf needs --adapter FOLDER and --out FILE.gguf")
    say(f"writing {adapter} as a LoRA GGUF for {base} ...")
    write_lora_gguf(adapter, base, out)
    choice = choose_model(str(out))
    load_llama(choice.path, adapter=choice.adapter).close()  # llama.cpp takes it on its base
    size = out.stat().st_size
    say(f"wrote {out} ({size / 1e6:,.1f} MB); run it with `--model {out}`")


def _to_hf(source: Path, out: Path, say: Callable[[str], None]) -> None:
    from thinkjson_edge.convert.to_hf import gguf_to_hf

    if not source.is_file():
        raise click.UsageError("--to-hf needs --base to be a GGUF file or model name")
    if out.exists() and any(out.iterdir()):
        raise OutputWriteError(f"{out} exists and is not empty; choose a new folder")
    say(f"converting {source} to a Hugging Face folder ...")
    gguf_to_hf(source, out)
    say(f"wrote {out}: train it, then `thinkjson-edge convert --base {out} --adapter ADAPTER`")


def _write_report(path: Path, outcome: ConvertOutcome) -> None:
    record = {
        "out": str(outcome.out),
        "quant": outcome.quant,
        "size": outcome.size,
        "seconds": outcome.seconds,
        "notes": outcome.notes,
        "f16_verification": outcome.f16_report.to_dict() if outcome.f16_report else None,
        "verification": outcome.report.to_dict() if outcome.report else None,
    }
    write_atomically(path, json.dumps(record, indent=2) + "\n")
