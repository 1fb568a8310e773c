"""What crosses the network back to the driver: a worker's state, and a document's result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from thinkjson_edge.pipeline.result import ExtractionResult


@dataclass(frozen=True)
class WorkerInfo:
    """Where a worker runs and how its model loaded, or why it did not."""

    index: int  # from 1, as the driver numbered it
    node_address: str
    node_id: str
    pid: int
    model: str = ""  # as ModelChoice.describe() says it
    load_seconds: float = 0.0  # placing the files and loading them into llama.cpp
    placed: dict[str, str] = field(default_factory=dict)  # file name -> how it came
    error: str | None = None  # the model could not be placed or loaded: this worker is out
    missing_model: bool = False  # ... because the node has no copy and none was sent yet

    def where(self) -> str:
        return f"worker {self.index} on {self.node_address} (pid {self.pid})"


@dataclass(frozen=True)
class DocumentReply:
    """One document done by a worker: the result, or why there is none.

    The driver writes the result files and records the row; the worker writes nothing.
    """

    result: ExtractionResult | None
    error: str | None  # the row's message when the document failed on the worker
    worker_seconds: float  # reading and extracting on the worker
    node_address: str
