"""Packaging: light imports, subpackage layout, console script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
HEAVY = ("torch", "transformers", "trl", "peft", "gguf")


def imported_modules(args: list[str], cwd: Path) -> set[str]:
    """Top-level modules a fresh interpreter imports, read from ``-X importtime``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args], cwd=cwd, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_importing_the_package_loads_no_engine_and_no_training_library(tmp_path: Path) -> None:
    modules = imported_modules(["-c", "import thinkjson_edge"], tmp_path)
    assert "thinkjson_edge" in modules
    assert not modules & {*HEAVY, "llama_cpp"}


@pytest.mark.model
def test_extract_command_imports_no_training_library(tmp_path: Path) -> None:
    modules = imported_modules(
        [
            "-m",
            "thinkjson_edge",
            "extract",
            str(EXAMPLES / "receipt.txt"),
            "--schema",
            str(EXAMPLES / "receipt.schema.json"),
            "--no-think",
            "--no-self-correct",
            "--device",
            "cpu",
            "--quiet",
        ],
        tmp_path,
    )
    assert "llama_cpp" in modules
    assert not modules & set(HEAVY)
    assert not modules & {"starlette", "uvicorn", "python_multipart", "fastapi"}  # serve's


def test_train_and_convert_install_inside_the_package(tmp_path: Path) -> None:
    code = (
        "import importlib.util, thinkjson_edge.train, thinkjson_edge.convert;"
        "print(importlib.util.find_spec('train'), importlib.util.find_spec('convert'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "None"]


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "thinkjson-edge"
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout.startswith("thinkjson-edge, version ")


def test_every_subpackage_is_listed_for_installation() -> None:
    """A non-editable install takes only the packages pyproject.toml lists."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    listed = set(
        tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(root).parts)
        for init in (root / "thinkjson_edge").rglob("__init__.py")
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
