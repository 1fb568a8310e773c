"""``thinkjson-edge tune FOLDER``: a labelled folder in, an installed adapter and its figures out.

One command for a site: read the folder (``train/folders.py``), hold back a part drawn
with the seed, train a LoRA adapter with SFT within a time budget (resumable), write it
as a llama.cpp LoRA GGUF and install it under a model name, then extract the held-back
documents with the base model and with the adapter and print the two side by side.

Everything lives in one work folder: the config as run, the training stage, the adapter
file and the two evaluations. Run again with the same folder and name, it goes on from
the last checkpoint; the evaluations reuse their caches.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thinkjson_edge.train.config import TrainConfig, load_config
from thinkjson_edge.train.folders import FolderExamples, read_labelled_folder
from thinkjson_edge.train.sft import run_sft
from thinkjson_edge.train.sources import folder_split

from thinkjson_edge.errors import ConfigError, InputError, ModelExistsError
from thinkjson_edge.evaluation.dataset import Case, Dataset
from thinkjson_edge.files import write_atomically

Say = Callable[[str], None]
RUN_FILE = "tune.json"
MAX_HELD_OUT = 40  # enough for a before/after table, few enough to evaluate in minutes


@dataclass(frozen=True)
class TuneRequest:
    folder: Path
    name: str
    work_dir: Path
    time_budget_minutes: float = 60.0
    held_out: int | None = None  # None: a tenth of the folder, at most MAX_HELD_OUT
    epochs: float = 3.0  # an upper bound; the time budget usually ends the run first
    config: str = "tune"
    overrides: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    force: bool = False  # replace an installed model of the same name


@dataclass
class TuneOutcome:
    adapter: Path  # the installed adapter file
    table: str  # base and tuned, side by side, on the held-out documents ("" without any)
    reports: dict[str, Path] = field(default_factory=dict)
    held_out: int = 0
    trained_on: int = 0


def default_held_out(examples: int) -> int:
    return min(MAX_HELD_OUT, examples // 10)


def run_tune(request: TuneRequest, say: Say = print) -> TuneOutcome:
    """Read, train, install, evaluate; see the module's docstring."""
    from thinkjson_edge.models.store import store_dir

    # A run resumed in its own work folder may replace the adapter it installed itself.
    resumed = (request.work_dir / RUN_FILE).is_file()
    if (store_dir() / f"{request.name}.gguf").exists() and not (request.force or resumed):
        raise ModelExistsError(
            f"model {request.name!r} is already installed; choose another --name or pass --force"
        )
    found = read_labelled_folder(request.folder)
    _report_folder(found, request, say)
    held_out = request.held_out if request.held_out is not None else default_held_out(
        len(found.examples)
    )
    trained_on = len(found.examples) - held_out
    if trained_on < 1:
        raise InputError(
            f"{request.folder}: {len(found.examples)} usable example(s) and {held_out} held "
            "out leave nothing to train on"
        )
    config = tune_config(request, held_out, trained_on)
    _check_same_run(request, config)
    say(
        f"tune: training on {trained_on} example(s), {held_out} held out, for at most "
        f"{request.time_budget_minutes:g} min ({config.sft.max_steps} steps at most)"
    )
    result = run_sft(config, lambda message: say(f"tune: {message}"), resume=True)
    adapter = _install(request, config, result.output, trained_on, say, replace=resumed)
    outcome = TuneOutcome(adapter, "", held_out=held_out, trained_on=trained_on)
    if held_out:
        held = folder_split(found.examples, trained_on, held_out, config.data.seed).heldout
        _evaluate(request, found, [example.id for example in held], config, outcome, say)
    return outcome


def tune_config(request: TuneRequest, held_out: int, trained_on: int) -> TrainConfig:
    """The packaged tune config with this run's folder, split, budget and step bound
    (``--epochs`` passes at the batch size the overrides leave, unless they set the steps)."""
    settings = {
        "name": f"tune-{request.name}",
        "output_dir": str(request.work_dir),
        "device": request.device,
        "data.source": str(request.folder.resolve()),
        "data.heldout_examples": held_out,
        "data.train_examples": trained_on,
        "sft.time_budget_minutes": request.time_budget_minutes,
        **request.overrides,
    }
    config = load_config(request.config, settings)
    if "sft.max_steps" not in request.overrides:
        per_step = config.sft.batch_size * config.sft.gradient_accumulation_steps
        steps = max(1, math.ceil(request.epochs * math.ceil(trained_on / per_step)))
        config = load_config(request.config, {**settings, "sft.max_steps": steps})
    return config


def _report_folder(found: FolderExamples, request: TuneRequest, say: Say) -> None:
    say(
        f"tune: {request.folder} is a {found.layout}: {len(found.examples)} example(s), "
        f"{len(found.skipped)} skipped"
    )
    for row in found.skipped[:5]:
        say(f"tune: skipped {row.name}: {row.reason}")
    if len(found.skipped) > 5:
        say(f"tune: ... {len(found.skipped) - 5} more, all in {request.work_dir / 'skipped.json'}")
    request.work_dir.mkdir(parents=True, exist_ok=True)
    rows = [{"name": row.name, "reason": row.reason} for row in found.skipped]
    write_atomically(request.work_dir / "skipped.json", json.dumps(rows, indent=1) + "\n")


def _check_same_run(request: TuneRequest, config: TrainConfig) -> None:
    """A work folder resumes only the run it was made for: other settings would mix two."""
    run_file = request.work_dir / RUN_FILE
    settings = config.to_dict()
    settings["sft"].pop("time_budget_minutes")  # more time for a resumed run is fine
    planned = {"name": request.name, "config": settings}
    if run_file.is_file():
        previous = json.loads(run_file.read_text(encoding="utf-8"))
        if previous != json.loads(json.dumps(planned)):
            raise ConfigError(
                f"{request.work_dir} holds a tune run with other settings; give another "
                "--work-dir, or remove that folder to start again"
            )
        return
    write_atomically(run_file, json.dumps(planned, ensure_ascii=False, indent=1) + "\n")


def _install(
    request: TuneRequest,
    config: TrainConfig,
    adapter_dir: Path,
    trained_on: int,
    say: Say,
    *,
    replace: bool,
) -> Path:
    from thinkjson_edge.convert.lora_gguf import write_lora_gguf

    from thinkjson_edge.models.store import install_file

    out = request.work_dir / f"{request.name}.gguf"
    provenance = {
        "thinkjson.tuned_on": str(request.folder.resolve()),
        "thinkjson.tuned_examples": str(trained_on),
        "thinkjson.training_config": json.dumps(config.to_dict(), ensure_ascii=False),
    }
    write_lora_gguf(adapter_dir, config.base_model, out, name=request.name, metadata=provenance)
    installed = install_file(
        out, request.name, {"source": str(out), "kind": "adapter"}, force=request.force or replace
    )
    say(f"tune: installed {request.name!r} ({installed.path}); use it with --model {request.name}")
    return installed.path


def _evaluate(
    request: TuneRequest,
    found: FolderExamples,
    held_ids: list[str],
    config: TrainConfig,
    outcome: TuneOutcome,
    say: Say,
) -> None:
    from thinkjson_edge.evaluation.report import compare_rows, render_compare, write_report
    from thinkjson_edge.evaluation.run import EvalSettings, run_evaluation
    from thinkjson_edge.evaluation.summary import build_report

    dataset = held_out_dataset(found, held_ids, request.work_dir / "held-out")
    reports = {}
    for label, model in (("base", config.base_model), ("tuned", request.name)):
        say(f"tune: extracting the {len(held_ids)} held-out document(s) with the {label} model")
        report_dir = request.work_dir / f"eval-{label}"
        settings = EvalSettings(model=model, device=request.device)
        progress = _EvalProgress(label, say)
        run = run_evaluation(dataset, report_dir, settings, progress=progress, warn=say)
        reports[label] = build_report(run, report_dir)
        write_report(reports[label], report_dir, say)
        outcome.reports[label] = report_dir / "report.json"
    rows = compare_rows(reports["base"], reports["tuned"])
    outcome.table = render_compare(
        rows,
        (str(outcome.reports["base"]), reports["base"]),
        (str(outcome.reports["tuned"]), reports["tuned"]),
    )


def held_out_dataset(found: FolderExamples, held_ids: list[str], folder: Path) -> Dataset:
    """The held-out examples as an evaluation data set: the schema and gold are written to
    ``folder`` (a batch folder keeps its gold inside review records), documents stay put."""
    gold_dir = folder / "gold"
    gold_dir.mkdir(parents=True, exist_ok=True)
    schema_path = folder / "schema.json"
    write_atomically(schema_path, json.dumps(found.schema.schema, ensure_ascii=False) + "\n")
    by_id = {example.id: example for example in found.examples}
    cases = []
    for example_id in held_ids:
        name = example_id.replace("/", "__")
        gold = gold_dir / f"{name}.json"
        write_atomically(gold, json.dumps(by_id[example_id].gold, ensure_ascii=False) + "\n")
        cases.append(Case(name, found.documents[example_id], gold))
    return Dataset(found.documents_root, schema_path, cases, [])


class _EvalProgress:
    """One line per held-out document: which model, how far, how long it took."""

    def __init__(self, label: str, say: Say) -> None:
        self.label, self.say = label, say
        self.total = self.done = 0
        self.started = 0.0

    def start(self, total: int) -> None:
        self.total = total

    def begin(self, name: str) -> None:
        self.started = time.perf_counter()

    def advance(self, name: str, cached: bool) -> None:
        self.done += 1
        took = "cached" if cached else f"{time.perf_counter() - self.started:.1f} s"
        self.say(f"tune: {self.label} model, {self.done}/{self.total}: {name} ({took})")
