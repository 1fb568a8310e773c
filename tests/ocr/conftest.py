"""The OCR tests' session fixture: the real receipt scan, read by OCR once (a few seconds)."""

from __future__ import annotations

import pytest
from scan_material import RECEIPT

from thinkjson_edge.pipeline.documents import Document, read_document


@pytest.fixture(scope="session")
def receipt() -> Document:
    return read_document(RECEIPT)
