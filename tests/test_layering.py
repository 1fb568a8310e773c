"""The package's layers, held by its imports: every import runs down (or stays inside a package).

Surfaces (cli/, tui/, serve/) -> applications (batch/, evaluation/, train/, convert/) -> the
pipeline -> engine/ -> grammar/, copying/, models/ -> the base modules (errors, files,
environment, schema). Lazy imports inside functions and imports for type checking count like
any other.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Higher imports lower; equal ranks may not import each other unless listed in SIDEWAYS.
RANKS = {
    "base": 0,
    "copying": 1,  # the span index and cursor of copied values
    "grammar": 1,
    "models": 1,
    "engine": 2,
    "pipeline": 3,
    "api": 4,  # thinkjson_edge/__init__.py, the public names
    "batch": 5,
    "evaluation": 5,
    "convert": 5,
    "train": 6,
    "cluster": 6,  # batch folders on Ray: the batch runner with workers instead of a model
    "tui": 7,
    "serve": 7,  # the HTTP service: a surface beside the interface, neither imports the other
    "cli": 8,
    "main": 9,  # python -m thinkjson_edge
}
BASE_MODULES = {
    "errors",
    "files",
    "environment",
    "schema",
    "schema_limits",
    "schema_patterns",
    "schema_references",
    "schema_walk",
}
# (importer, imported) pairs of equal rank that may import each other; none today.
SIDEWAYS: set[tuple[str, str]] = set()


def layer_of_file(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root)
    top = rel.parts[0]
    if top in ("train", "convert"):
        return top
    if len(rel.parts) == 2:  # a module directly in thinkjson_edge/
        stem = rel.stem
        if stem == "__init__":
            return "api"
        if stem == "__main__":
            return "main"
        assert stem in BASE_MODULES, f"{rel}: a new base module; add it to BASE_MODULES"
        return "base"
    return rel.parts[1]


def layer_of_module(name: str) -> str | None:
    """The layer an imported ``thinkjson_edge...`` module belongs to (None: not ours)."""
    parts = name.split(".")
    if parts[0] != "thinkjson_edge":
        return None
    if len(parts) == 1:
        return "api"
    if parts[1] in BASE_MODULES:
        return "base"
    if parts[1] == "__main__":
        return "main"
    return parts[1]


def imported_modules(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def package_files(root: Path = ROOT) -> list[Path]:
    files = [*(root / "thinkjson_edge").rglob("*.py")]
    files += [*(root / "train").rglob("*.py"), *(root / "convert").rglob("*.py")]
    return sorted(files)


def layering_violations(root: Path = ROOT) -> list[str]:
    problems = []
    for path in package_files(root):
        importer = layer_of_file(path, root)
        for line, module in imported_modules(path):
            imported = layer_of_module(module)
            if imported is None or imported == importer:
                continue
            if (importer, imported) in SIDEWAYS:
                continue
            if RANKS[imported] >= RANKS[importer]:
                problems.append(
                    f"{path.relative_to(root)}:{line}: {importer} imports {module} ({imported})"
                )
    return problems


def test_imports_run_one_way() -> None:
    assert layering_violations() == []


def test_nothing_outside_the_command_line_imports_it() -> None:
    outside = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in package_files()
        if layer_of_file(path) not in ("cli", "main")
        for line, module in imported_modules(path)
        if layer_of_module(module) == "cli"
    ]
    assert outside == []


def test_the_check_sees_a_lazy_import_that_reaches_up(tmp_path: Path) -> None:
    module = tmp_path / "thinkjson_edge" / "pipeline" / "grounding.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        "def later():\n    from thinkjson_edge.batch.runner import Batch\n    return Batch\n"
    )
    assert layering_violations(tmp_path) == [
        "thinkjson_edge/pipeline/grounding.py:2: pipeline imports thinkjson_edge.batch.runner "
        "(batch)"
    ]


@pytest.mark.parametrize(
    "module",
    [
        "thinkjson_edge",
        "thinkjson_edge.batch.runner",
        "thinkjson_edge.evaluation.run",
        "thinkjson_edge.pipeline.extractor",
        "thinkjson_edge.tui.app",
        "thinkjson_edge.serve.app",
    ],
)
def test_no_command_line_library_is_loaded_below_the_surface(module: str) -> None:
    probe = (
        f"import sys, {module}; "
        "heavy = [m for m in ('click', 'llama_cpp', 'torch', 'transformers') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == ""


WEB_STACK = ("fastapi", "starlette", "uvicorn", "python_multipart", "multipart")


def test_only_the_server_imports_the_web_stack() -> None:
    outside = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in package_files()
        if layer_of_file(path) != "serve"
        for line, module in imported_modules(path)
        if module.split(".")[0] in WEB_STACK
    ]
    assert outside == []


@pytest.mark.parametrize("module", ["thinkjson_edge", "thinkjson_edge.cli", "thinkjson_edge.serve"])
def test_the_web_stack_loads_only_when_serving(module: str) -> None:
    """Every command is registered by ``thinkjson_edge.cli``; only ``serve`` running loads
    the web stack (the ``serve`` extra), so the others work without it."""
    probe = f"import sys, {module}; print(','.join(m for m in {WEB_STACK!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == ""


# Pillow is not among them: pypdf imports it for a PDF's text layer whenever it is installed.
OCR_LIBRARIES = ("rapidocr", "onnxruntime", "cv2", "pypdfium2")


@pytest.mark.parametrize(
    "module",
    [
        "thinkjson_edge",
        "thinkjson_edge.pipeline.documents",
        "thinkjson_edge.pipeline.extractor",
        "thinkjson_edge.batch.runner",
        "thinkjson_edge.evaluation.run",
        "thinkjson_edge.cli",
    ],
)
def test_the_ocr_engine_loads_only_when_a_scan_is_read(module: str, tmp_path: Path) -> None:
    """Importing the package, and reading text and a PDF's text layer, load no OCR library."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.text(20, 20, "Delivery note DN-3")
    (tmp_path / "note.pdf").write_bytes(bytes(pdf.output()))
    (tmp_path / "note.txt").write_text("Total: 5.00 EUR\n", encoding="utf-8")
    probe = (
        f"import sys, {module}\n"
        "from thinkjson_edge.pipeline.documents import read_document\n"
        f"for name in ('note.txt', 'note.pdf'): read_document({str(tmp_path)!r} + '/' + name)\n"
        f"print(','.join(m for m in {OCR_LIBRARIES!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == ""


def test_only_the_cluster_path_imports_ray() -> None:
    """Ray (the ``cluster`` extra) is imported by thinkjson_edge/cluster/ alone."""
    outside = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in package_files()
        if layer_of_file(path) != "cluster"
        for line, module in imported_modules(path)
        if module.split(".")[0] == "ray"
    ]
    assert outside == []


@pytest.mark.parametrize(
    "module",
    [
        "thinkjson_edge",
        "thinkjson_edge.batch.runner",
        "thinkjson_edge.cli",
        "thinkjson_edge.cluster.runner",
        "thinkjson_edge.cluster.worker",
    ],
)
def test_ray_loads_only_when_a_batch_runs_on_it(module: str) -> None:
    """The package, the local batch and every command load no Ray; even the cluster runner
    imports it only once it starts its workers, so a local batch costs no Ray import."""
    probe = f"import sys, {module}; print('ray' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "False"
