"""The model's files on every node: named by the driver, checked by sha256 before loading.

The driver resolves the model as a local batch does (``--model``, the environment, the
config, the default) and describes each file it needs, the base GGUF and a LoRA adapter if
there is one, by name, size and sha256. A worker then finds each file, in this order:

1. the driver's own path, when the node sees it (a shared folder, or the driver's node);
2. the node's model cache, ``CACHE/<sha256>/<name>``, filled by an earlier run;
3. a copy sent by the driver in pieces through Ray's object store, written to the cache.
   The driver sends the pieces only once some worker found neither of the above.

Whichever it is, the bytes are hashed and must match before llama.cpp sees them, so a
stale, truncated or different file never loads. Workers on one node take turns through a
file lock, so the model crosses the network once per node, not once per worker.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import platformdirs

from thinkjson_edge.errors import ModelLoadError, OutputWriteError
from thinkjson_edge.files import atomic_target, sha256_file
from thinkjson_edge.models.choice import APP_NAME, ModelChoice

try:
    import fcntl
except ImportError:  # Windows: workers on one node may both fetch; the rename keeps it whole
    fcntl = None  # type: ignore[assignment]

PIECE_BYTES = 16 << 20  # what one object in Ray's object store holds of a model file
_HASH_PIECE = 1 << 20

# How a worker came by a file (for its ready message and the summary).
FROM_SHARED_PATH = "shared path"
FROM_NODE_CACHE = "node cache"
FROM_DRIVER = "sent by the driver"


class ModelNotOnNode(ModelLoadError):
    """The node has no matching copy of a model file, and none was sent yet."""


@dataclass(frozen=True)
class ModelFile:
    """One file of the model as the driver has it."""

    role: str  # "model" or "adapter"
    name: str  # the file's name, kept on the nodes so reports name the same file
    size: int
    sha256: str
    driver_path: str


@dataclass(frozen=True)
class ModelPlan:
    """What a worker needs to run the driver's model: its files and how it was chosen."""

    choice: ModelChoice  # the driver's; its paths are the driver's own
    files: tuple[ModelFile, ...]

    def on_node(self, paths: dict[str, Path]) -> ModelChoice:
        """The driver's choice with the files as this node has them (by role)."""
        adapter = paths.get("adapter")
        return replace(self.choice, path=paths["model"], adapter=adapter)


def model_plan(choice: ModelChoice) -> ModelPlan:
    """Describe the chosen model's files for the workers (hashing each once, here)."""
    files = [_describe("model", choice.path)]
    if choice.adapter is not None:
        files.append(_describe("adapter", choice.adapter))
    return ModelPlan(choice, tuple(files))


def _describe(role: str, path: Path) -> ModelFile:
    try:
        size = path.stat().st_size
        digest = sha256_file(path)
    except OSError as exc:
        raise ModelLoadError(f"{path}: the model cannot be read ({exc.strerror or exc})") from exc
    return ModelFile(role, path.name, size, digest, str(path))


def pieces_of(path: Path) -> Iterator[bytes]:
    """A model file in ``PIECE_BYTES`` pieces, as the driver sends it."""
    with path.open("rb") as stream:
        while piece := stream.read(PIECE_BYTES):
            yield piece


def default_cache() -> Path:
    """Where a node keeps the model files it was sent: the user's cache folder."""
    return Path(platformdirs.user_cache_dir(APP_NAME)) / "cluster-models"


def place_model_file(
    file: ModelFile,
    cache: Path,
    fetch_pieces: Callable[[], Iterator[bytes]] | None,
    *,
    use_shared_path: bool = True,
) -> tuple[Path, str]:
    """Where this node has ``file``, checked, and how it came by it.

    ``fetch_pieces`` gives the driver's copy, piece by piece; it is called only when the
    node has no matching copy, and without it that is ModelNotOnNode. ModelLoadError says
    why no checked copy can be had.
    """
    shared = Path(file.driver_path)
    if use_shared_path and _matches(shared, file):
        return shared, FROM_SHARED_PATH
    target = cache / file.sha256 / file.name
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelLoadError(
            f"the node's model cache {target.parent} cannot be made ({exc.strerror or exc})"
        ) from exc
    with _node_lock(target.parent / ".lock"):
        if _matches(target, file):
            return target, FROM_NODE_CACHE
        if fetch_pieces is None:
            raise ModelNotOnNode(f"{file.name}: this node has no copy (sha256 {file.sha256[:12]}…)")
        _receive(file, target, fetch_pieces)
    return target, FROM_DRIVER


def _matches(path: Path, file: ModelFile) -> bool:
    """Whether ``path`` holds exactly the driver's file: size first, then every byte."""
    try:
        return path.stat().st_size == file.size and sha256_file(path) == file.sha256
    except OSError:
        return False


def _receive(file: ModelFile, target: Path, fetch_pieces: Callable[[], Iterator[bytes]]) -> None:
    """Write the driver's pieces beside ``target``, hashing them; rename only a match."""
    digest = hashlib.sha256()
    received = 0
    try:
        with atomic_target(target) as temporary, temporary.open("wb") as stream:
            for piece in fetch_pieces():
                for start in range(0, len(piece), _HASH_PIECE):
                    digest.update(piece[start : start + _HASH_PIECE])
                stream.write(piece)
                received += len(piece)
            if (received, digest.hexdigest()) != (file.size, file.sha256):
                raise ModelLoadError(
                    f"{file.name}: the copy received from the driver does not match: "
                    f"{received} bytes with sha256 {digest.hexdigest()[:12]}…, expected "
                    f"{file.size} bytes with sha256 {file.sha256[:12]}…; it was not kept"
                )
    except OutputWriteError as exc:
        raise ModelLoadError(f"the model cannot be placed on this node: {exc}") from exc


@contextlib.contextmanager
def _node_lock(path: Path) -> Iterator[None]:
    """One worker of a node at a time fetches a file; the others then find it in the cache."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ModelLoadError(
            f"the node's model cache lock {path} cannot be opened ({exc.strerror or exc})"
        ) from exc
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock
