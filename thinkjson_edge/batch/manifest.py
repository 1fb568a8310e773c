"""The batch manifest, ``OUT_DIR/.thinkjson-batch.json``: the input folder and schema of a run.

Written by every batch run; read by whatever looks at a batch output folder afterwards
(the batch view, and training data made from reviewed results).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from thinkjson_edge.batch.layout import MANIFEST_NAME
from thinkjson_edge.errors import InputError

MAKER = "`thinkjson-edge batch IN_DIR --schema S.json --out OUT_DIR` makes one"


def manifest_text(input_dir: Path, schema_source: str, schema: dict[str, Any]) -> str:
    manifest = {
        "input_dir": str(input_dir.resolve()),
        "schema_source": schema_source,
        "schema": schema,
    }
    return json.dumps(manifest, ensure_ascii=False, indent=2) + "\n"


def read_manifest(out_dir: Path) -> dict[str, Any]:
    """The manifest's fields, checked; InputError says why it cannot be used."""
    path = out_dir / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(
            f"{out_dir}: not a batch output folder: it has no manifest ({MANIFEST_NAME}); "
            f"{MAKER} (rerunning the batch on this folder writes it)"
        ) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(
            f"{path}: the batch manifest is garbled ({exc}); rerunning "
            "`thinkjson-edge batch` on this folder writes it again"
        ) from exc
    problem = _manifest_problem(manifest)
    if problem:
        raise InputError(
            f"{path}: the batch manifest is garbled ({problem}); rerunning "
            "`thinkjson-edge batch` on this folder writes it again"
        )
    return manifest


def _manifest_problem(manifest: Any) -> str | None:
    """What is wrong with a parsed manifest, or None."""
    if not isinstance(manifest, dict):
        return "not a JSON object"
    expected = {"input_dir": str, "schema_source": str, "schema": dict}
    for key, kind in expected.items():
        if not isinstance(manifest.get(key), kind):
            return f"{key!r} is missing or not a {kind.__name__}"
    return None
