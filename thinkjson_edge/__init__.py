"""thinkjson-edge: schema-valid JSON from documents, with a small model running locally.

    from thinkjson_edge import extract, Extractor

Importing this package loads neither llama.cpp nor any training library;
the model is loaded when an Extractor is made.
"""

from thinkjson_edge.pipeline.documents import Document
from thinkjson_edge.pipeline.extractor import ExtractOptions, Extractor, extract
from thinkjson_edge.pipeline.result import Attempt, ExtractionResult

__version__ = "0.1.0"

__all__ = [
    "Attempt",
    "Document",
    "ExtractOptions",
    "ExtractionResult",
    "Extractor",
    "__version__",
    "extract",
]
