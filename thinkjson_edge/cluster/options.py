"""How a batch runs on a cluster: where, how many workers, and what each one asks for."""

from __future__ import annotations

from dataclasses import dataclass

from thinkjson_edge.errors import UsageError

LOCAL = "local"  # ``--ray`` alone: start a Ray instance on this machine
AUTO = "auto"  # join the cluster ``ray start`` runs on this machine (or RAY_ADDRESS)
CLIENT_SCHEME = "ray://"

# Tries of one document on workers that died under it (killed, out of memory): the third
# death marks the document failed, as it may be what crashes them.
MAX_DOCUMENT_TRIES = 3
# Restarts of one worker after its process died (it reloads the model from the node cache).
MAX_WORKER_RESTARTS = 3
# How long the batch waits for the first worker to hold a loaded model: the model may
# cross a slow network once per node, and a busy cluster may have no room at first.
FIRST_WORKER_SECONDS = 900.0


@dataclass(frozen=True)
class ClusterOptions:
    """Where the batch runs and the shape of its workers; the batch's own options are apart."""

    address: str = LOCAL  # LOCAL, AUTO, "HOST:PORT" or "ray://HOST:PORT"
    workers: int | None = None  # None: as many as the cluster's resources hold
    cpus_per_worker: float = 1.0  # Ray CPUs each worker reserves; also llama.cpp's threads
    gpus_per_worker: float = 0.0
    # Where each node keeps the model files it was sent (None: the user's cache folder).
    model_cache: str | None = None
    # A node that sees the driver's model path (a shared folder, or the driver's own node)
    # loads the file there once its sha256 matches, instead of receiving a copy.
    use_shared_model_path: bool = True
    first_worker_seconds: float = FIRST_WORKER_SECONDS

    def __post_init__(self) -> None:
        check_address(self.address)
        if self.workers is not None and self.workers < 1:
            raise UsageError(f"--workers {self.workers}: at least one worker is needed")
        if self.cpus_per_worker <= 0:
            raise UsageError(f"--cpus-per-worker {self.cpus_per_worker}: must be above 0")
        if self.gpus_per_worker < 0:
            raise UsageError(f"--gpus-per-worker {self.gpus_per_worker}: must be 0 or more")

    @property
    def threads(self) -> int:
        """llama.cpp threads of each worker: the CPUs it reserved, so workers do not collide."""
        return max(1, round(self.cpus_per_worker))


def check_address(address: str) -> None:
    """Refuse what cannot be a Ray address, such as IN_DIR taken as the value of ``--ray``."""
    if address in (LOCAL, AUTO) or address.startswith(CLIENT_SCHEME):
        return
    host, colon, port = address.rpartition(":")
    if colon and host and port.isdigit():
        return
    raise UsageError(
        f"--ray {address!r}: not a Ray address; give 'auto', HOST:PORT or ray://HOST:PORT, "
        "or --ray alone for a Ray instance on this machine (put --ray after IN_DIR, or "
        "write --ray=ADDRESS)"
    )
