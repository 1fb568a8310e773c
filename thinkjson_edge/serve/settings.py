"""What the server allows: its limits, the budgets it caps, and the defaults a client gets."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from thinkjson_edge.files import MB
from thinkjson_edge.pipeline.extractor import ExtractOptions

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_QUEUE = 8  # waiting requests; one more is answered 503 at once
DEFAULT_REQUEST_SECONDS = 300.0  # as long as one attempt may run by default
DEFAULT_MAX_BODY_BYTES = 20 * MB
DEFAULT_MAX_PAGES = 500
DEFAULT_MAX_JSON_TOKENS = 2048  # ExtractOptions' own budget


@dataclass(frozen=True)
class ServeSettings:
    """Everything about a running server except the model and the key."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    # Workers, each owning one loaded copy of the model (llama.cpp's context is not
    # thread-safe); 1 until parallel decoding shares one model between sequences.
    parallel: int = 1
    queue: int = DEFAULT_QUEUE
    # Wall clock of one request from arrival to answer, waiting in the queue included.
    request_seconds: float = DEFAULT_REQUEST_SECONDS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_pages: int = DEFAULT_MAX_PAGES
    # The defaults of every request; max_think_tokens and max_json_tokens are also caps.
    options: ExtractOptions = field(default_factory=ExtractOptions)

    @property
    def attempt_seconds_cap(self) -> float:
        """One attempt may not outlast the request it belongs to."""
        configured = self.options.attempt_seconds or self.request_seconds
        return min(configured, self.request_seconds)

    def request_defaults(self) -> ExtractOptions:
        """The options a request starts from: the server's, its attempt time capped."""
        return replace(self.options, attempt_seconds=self.attempt_seconds_cap)
