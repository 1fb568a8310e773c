"""Shared fixtures: one real model for the whole session, and files made per test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from thinkjson_edge import Extractor


@pytest.fixture(scope="session")
def extractor() -> Iterator[Extractor]:
    """The embedded default model through real llama.cpp, loaded once (CPU, as in CI)."""
    with Extractor(device="cpu") as loaded:
        yield loaded


@pytest.fixture
def write_json(tmp_path: Path):
    def write(name: str, value: Any) -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(value), encoding="utf-8")
        return path

    return write
