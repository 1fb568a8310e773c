"""Shared fixtures: one real model for the whole session, and files made per test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from thinkjson_edge import Extractor
from thinkjson_edge.environment import bound_openmp_spinning

# Whichever test first loads torch or llama.cpp, bound OpenMP's spinning before it does,
# as the runtime and train/ do: spinning threads of one library starve the other's.
bound_openmp_spinning()  # before torch and llama.cpp load


@pytest.fixture(scope="session")
def extractor() -> Iterator[Extractor]:
    """The embedded default model through real llama.cpp, loaded once (CPU, as in CI)."""
    with Extractor(device="cpu") as loaded:
        yield loaded


@pytest.fixture(scope="session")
def base_extractor() -> Iterator[Extractor]:
    """The embedded model without the default adapter (``smollm2-135m-base``), loaded once:
    for tests of decoding mechanisms set off by that model's known habits (a loop, a date
    begun with the year), which the tuned default no longer has."""
    with Extractor("smollm2-135m-base", device="cpu") as loaded:
        yield loaded


@pytest.fixture
def write_json(tmp_path: Path):
    def write(name: str, value: Any) -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(value), encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def hf_default_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded default model as a trainable Hugging Face folder, converted once (~30 s).

    Needs the ``train`` extra (torch, transformers, gguf); the tests using it skip without.
    """
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from thinkjson_edge.convert.to_hf import gguf_to_hf

    from thinkjson_edge.models.choice import choose_model

    return gguf_to_hf(choose_model("default").path, tmp_path_factory.mktemp("hf-default"))
