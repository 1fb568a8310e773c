"""Training configuration: one YAML file for data, GRPO, SFT and SCoRe, checked on load.

``load_config`` takes a path, or the name of a packaged config (``cpu-smoke``,
``gpu-qwen2.5-1.5b``; see ``train/configs/``). Unknown keys, impossible
combinations and out-of-range values are refused with a message that says what
to set. Every section has defaults, so a config names only what it changes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thinkjson_edge.train.data import GeneratorOptions
from thinkjson_edge.train.rewards import COMPONENTS

from thinkjson_edge.errors import ConfigError

PACKAGED = ("cpu-smoke", "default-adapter", "gpu-qwen2.5-1.5b", "tune")
STAGES = ("grpo", "sft", "score1", "score2")



@dataclass
class DataSettings:
    """Where examples come from. ``source``: ``synthetic``, a labelled folder (a gold
    folder or a reviewed batch folder) or a CSV/JSONL/Parquet path."""

    source: str = "synthetic"
    train_examples: int = 256
    heldout_examples: int = 32
    seed: int = 0
    domains: list[str] | None = None  # None: all
    layouts: list[str] | None = None  # None: all
    max_fields: int = 8
    max_items: int = 3
    max_prompt_tokens: int = 1024  # longer prompts are dropped (and counted)
    # Chance a synthetic schema's fields, and independently its document's, are shuffled
    # out of the domain's order (0: always in order, as the shipped default was trained).
    reorder_share: float = 0.0
    # Chance a synthetic field that has other names (train/domains.py aliases) is asked
    # for and labelled under one of them (0: never, as the shipped default was trained).
    alias_share: float = 0.0
    # Labelled folders whose every example is trained on too, beside the source's, shuffled
    # in with them by the seed (none held out: the source's held-out set stays what it was).
    mixed_in: list[str] = field(default_factory=list)
    # Share of the mixed-in examples rewritten as OCR writes text (train/ocr_habits.py; 0:
    # none, as the shipped default was trained).
    ocr_habits_share: float = 0.0

    def generator_options(self) -> GeneratorOptions:
        """The synthetic generator's options; a ValueError names the setting that is wrong."""
        defaults = GeneratorOptions()
        return GeneratorOptions(
            seed=self.seed,
            domains=tuple(self.domains) if self.domains else defaults.domains,
            layouts=tuple(self.layouts) if self.layouts else defaults.layouts,
            max_fields=self.max_fields,
            max_items=self.max_items,
            reorder_share=self.reorder_share,
            alias_share=self.alias_share,
        )


@dataclass
class LoraSettings:
    enabled: bool = True  # false: full fine-tuning
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )


@dataclass
class GrpoSettings:
    max_steps: int = 200
    learning_rate: float = 1e-5
    batch_size: int = 8  # completions per device and step (a multiple of num_generations)
    gradient_accumulation_steps: int = 1
    num_generations: int = 8  # the group size
    max_completion_length: int = 512
    temperature: float = 1.0
    beta: float = 0.04  # KL weight to the reference policy
    save_steps: int = 0  # 0: only at the end
    init_from: str | None = None  # null: the base model; or a stage name or a folder


@dataclass
class SftSettings:
    max_steps: int = 200
    learning_rate: float = 2e-5
    batch_size: int = 4
    gradient_accumulation_steps: int = 1
    max_length: int = 2048  # longer examples are dropped (and counted), never cut
    init_from: str | None = "grpo"  # a stage name, an adapter/model folder, or null: the base
    # Wall-clock bound (0: none). With it, the rate decays to zero as the time or the
    # steps run out, whichever is first, and the run stops saved (train/budget.py).
    time_budget_minutes: float = 0.0
    warmup_steps: int = 0
    save_steps: int = 0  # checkpoints to resume from; 0: none
    # False: the reasoning block is trained empty and the answer follows at once, so the
    # tuned model spends no tokens reasoning (the traces are kept for GRPO and SCoRe).
    reasoning: bool = True


@dataclass
class ScoreSettings:
    """SCoRe: alpha, β1, β2 as in the paper (alpha = 10, β1 = 0.01, β2 = 0.1)."""

    stage1_steps: int = 100
    stage2_steps: int = 100
    learning_rate: float = 5e-6
    batch_size: int = 4  # prompts per step
    num_generations: int = 4  # first attempts per prompt (the group of the baseline)
    max_completion_length: int = 512
    temperature: float = 1.0
    alpha: float = 10.0
    beta1: float = 0.01
    beta2: float = 0.1
    init_from: str | None = "sft"  # stage 1 starts here; stage 2 starts from stage 1


@dataclass
class TrainConfig:
    name: str = "custom"
    base_model: str = "default"  # "default", a GGUF path, a Hugging Face folder or model id
    output_dir: str = "runs/custom"
    seed: int = 0
    think: bool = True  # train the reasoning block, as the runtime's default --think
    device: str = "auto"  # auto | cpu | cuda
    dtype: str = "float32"  # float32 | bfloat16 | float16
    gradient_checkpointing: bool = False
    logging_steps: int = 1
    tensorboard: bool = True
    data: DataSettings = field(default_factory=DataSettings)
    lora: LoraSettings = field(default_factory=LoraSettings)
    rewards: dict[str, float] = field(
        default_factory=lambda: {
            "format": 0.5,
            "json": 1.0,
            "schema": 1.0,
            "field_match": 2.0,
            "noise": 1.0,
            "grounding": 0.5,
        }
    )
    grpo: GrpoSettings = field(default_factory=GrpoSettings)
    sft: SftSettings = field(default_factory=SftSettings)
    score: ScoreSettings = field(default_factory=ScoreSettings)
    source: str = ""  # the file it came from (set by load_config)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        unknown = set(self.rewards) - set(COMPONENTS)
        if unknown:
            raise ConfigError(
                f"rewards: unknown components {sorted(unknown)}; "
                f"choose from {', '.join(COMPONENTS)}"
            )
        if not self.rewards or any(w < 0 for w in self.rewards.values()):
            raise ConfigError("rewards: give at least one component, every weight 0 or more")
        if sum(self.rewards.values()) <= 0:
            raise ConfigError("rewards: the weights must add up to more than 0")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device: {self.device!r}; use auto, cpu or cuda")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError(f"dtype: {self.dtype!r}; use float32, bfloat16 or float16")
        g = self.grpo
        if g.num_generations < 2:
            raise ConfigError("grpo.num_generations: a group needs at least 2 completions")
        if (g.batch_size * g.gradient_accumulation_steps) % g.num_generations:
            raise ConfigError(
                f"grpo.batch_size x grpo.gradient_accumulation_steps "
                f"({g.batch_size} x {g.gradient_accumulation_steps}) must be a multiple of "
                f"grpo.num_generations ({g.num_generations}): each step trains whole groups"
            )
        s = self.score
        if s.batch_size < 1:
            raise ConfigError("score.batch_size must be at least 1")
        if s.num_generations < 2:
            raise ConfigError(
                "score.num_generations: the baseline is the mean of a prompt's rollouts, "
                "so it needs at least 2"
            )
        if min(s.alpha, s.beta1, s.beta2) < 0:
            raise ConfigError("score.alpha, score.beta1 and score.beta2 must be 0 or more")
        for section, name in ((g, "grpo"), (self.sft, "sft"), (s, "score")):
            if section.learning_rate <= 0:
                raise ConfigError(f"{name}.learning_rate must be more than 0")
        if min(g.max_steps, self.sft.max_steps, s.stage1_steps, s.stage2_steps) < 1:
            raise ConfigError("every stage needs at least 1 step")
        if self.data.train_examples < 1 or self.data.heldout_examples < 0:
            raise ConfigError("data.train_examples must be at least 1 (heldout_examples 0 or more)")
        if not 0 <= self.data.ocr_habits_share <= 1:
            raise ConfigError("data.ocr_habits_share must be between 0 and 1")
        try:  # checked here, at load, not when the data is drawn after the model is loaded
            self.data.generator_options()
        except ValueError as exc:
            raise ConfigError(f"data: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """A short hash of the settings, recorded beside every adapter."""
        settings = {k: v for k, v in self.to_dict().items() if k != "source"}
        text = json.dumps(settings, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def stage_dir(self, stage: str) -> Path:
        return Path(self.output_dir) / stage


_SECTIONS = {
    "data": DataSettings,
    "lora": LoraSettings,
    "grpo": GrpoSettings,
    "sft": SftSettings,
    "score": ScoreSettings,
}


def load_config(spec: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The config at ``spec`` (a path or a packaged name), with dotted-key ``overrides``.

    ``overrides`` maps ``"grpo.max_steps"``-style keys to values (the CLI's ``--set``).
    """
    import yaml

    path = _config_path(spec)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot be read as YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    for key, value in (overrides or {}).items():
        _set_dotted(raw, key, value)
    return config_from_dict(raw, str(path))


def config_from_dict(raw: dict[str, Any], source: str = "<dict>") -> TrainConfig:
    known = {f.name for f in dataclasses.fields(TrainConfig)} - {"source"}
    _refuse_unknown(raw, known, source, "")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {key} must be a mapping of settings")
            section = _SECTIONS[key]
            _refuse_unknown(value, {f.name for f in dataclasses.fields(section)}, source, key)
            values[key] = section(**value)
        else:
            values[key] = value
    try:
        return TrainConfig(**values, source=source)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def _refuse_unknown(raw: dict[str, Any], known: set[str], source: str, where: str) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"{source}: unknown setting(s) {', '.join(prefix + k for k in unknown)}; "
            f"known: {', '.join(sorted(prefix + k for k in known))}"
        )


def _config_path(spec: str | Path) -> Path:
    path = Path(spec)
    if path.is_file():
        return path
    if str(spec) in PACKAGED:
        resource = importlib.resources.files("thinkjson_edge.train.configs") / f"{spec}.yaml"
        with importlib.resources.as_file(resource) as packaged:
            return Path(packaged)
    raise ConfigError(
        f"{spec}: no such config file; give a YAML path or one of: {', '.join(PACKAGED)}"
    )


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    node = raw
    *parents, last = key.split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {part} is not a section")
        node = child
    node[last] = value
