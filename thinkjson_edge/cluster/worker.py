"""One worker of a cluster batch: a Ray actor holding one loaded model.

The class is plain Python; the pool makes it an actor (``ray.remote``) when it starts one,
so importing this module loads no Ray. The model is placed and loaded in the constructor:
when Ray restarts a worker whose process died, the constructor runs again and the worker
comes back with its model. A model that cannot be placed or loaded does not raise (which
would make Ray give the worker up without a word): ``ready`` says why, once, and the
driver lets the worker go.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from thinkjson_edge.batch.runner import extraction_failure
from thinkjson_edge.cluster.model_files import (
    ModelNotOnNode,
    ModelPlan,
    default_cache,
    place_model_file,
)
from thinkjson_edge.cluster.records import DocumentReply, WorkerInfo
from thinkjson_edge.errors import InputError, ThinkJsonError
from thinkjson_edge.pipeline.extractor import ExtractOptions, Extractor
from thinkjson_edge.schema import Schema, check_schema

if TYPE_CHECKING:
    from ray import ObjectRef


@dataclass(frozen=True)
class WorkerSetup:
    """Everything a worker needs, sent once when it starts."""

    plan: ModelPlan
    schema: dict[str, Any]
    schema_source: str
    schema_hash: str  # the driver's: the worker's copy must hash the same
    options: ExtractOptions
    device: str = "auto"
    threads: int = 1
    ocr: str = "auto"
    reuse_prefix: bool = True
    model_cache: str | None = None
    use_shared_model_path: bool = True
    # The driver's settings that reading consults (read limits), applied on the worker.
    environment: dict[str, str] = field(default_factory=dict)


class ExtractionWorker:
    """Places the model on its node, loads it, then extracts one document per call."""

    def __init__(
        self, index: int, setup: WorkerSetup, pieces: dict[str, list[ObjectRef]] | None = None
    ) -> None:
        """``pieces``: the driver's copy of each model file (by role), once it sent one."""
        import ray

        started = time.perf_counter()
        self._setup = setup
        self._address = ray.util.get_node_ip_address()
        self._node_id = ray.get_runtime_context().get_node_id()
        self._extractor: Extractor | None = None
        self._schema: Schema | None = None
        os.environ.update(setup.environment)
        placed: dict[str, str] = {}
        error: str | None = None
        missing = False
        try:
            paths: dict[str, Path] = {}
            cache = Path(setup.model_cache) if setup.model_cache else default_cache()
            for file in setup.plan.files:
                refs = None if pieces is None else pieces[file.role]
                paths[file.role], placed[file.name] = place_model_file(
                    file, cache, _fetcher(refs), use_shared_path=setup.use_shared_model_path
                )
            self._schema = check_schema(setup.schema, setup.schema_source)
            if self._schema.sha256 != setup.schema_hash:
                raise ThinkJsonError(
                    "the schema reads differently on this node (its hash differs from the "
                    "driver's); install the same thinkjson-edge version on every node"
                )
            self._extractor = Extractor(
                setup.plan.on_node(paths),
                device=setup.device,
                n_threads=setup.threads,
                options=setup.options,
            )
        except ModelNotOnNode as exc:  # the driver sends the model and starts this one again
            error, missing = str(exc), True
        except Exception as exc:  # reported by ``ready``; the rest of the cluster goes on
            error = extraction_failure(exc)
        self._info = WorkerInfo(
            index=index,
            node_address=self._address,
            node_id=self._node_id,
            pid=os.getpid(),
            model=setup.plan.choice.describe(),
            load_seconds=time.perf_counter() - started,
            placed=placed,
            error=error,
            missing_model=missing,
        )

    def ready(self) -> WorkerInfo:
        """Where this worker runs, and whether its model is loaded (``error`` if not)."""
        return self._info

    def extract(self, source: str, data: bytes) -> DocumentReply:
        """Read a document from its bytes and extract its object; never raises for it."""
        from thinkjson_edge.pipeline.documents import read_document_bytes
        from thinkjson_edge.pipeline.reading import ReadOptions

        started = time.perf_counter()
        result = None
        error: str | None = None
        extractor, schema = self._extractor, self._schema
        if extractor is None or schema is None:
            error = f"worker {self._info.index} has no model: {self._info.error}"
        else:
            if not self._setup.reuse_prefix:
                extractor.engine.forget_prompt()
            try:
                document = read_document_bytes(data, source, ReadOptions(ocr=self._setup.ocr))
                result = extractor.extract(document, schema)
            except InputError as exc:  # unreadable, unsupported, too long: this file only
                error = str(exc)
            except Exception as exc:  # a bug on one document must not stop the others
                extractor.engine.forget_prompt()  # the cached state may be half-updated
                error = extraction_failure(exc)
        return DocumentReply(result, error, time.perf_counter() - started, self._address)


def _fetcher(refs: list[ObjectRef] | None) -> Callable[[], Iterator[bytes]] | None:
    """The driver's pieces of one file, fetched one at a time (None: none were sent)."""
    if refs is None:
        return None
    import ray

    return lambda: (ray.get(ref) for ref in refs)
