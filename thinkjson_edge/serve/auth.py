"""Who may reach the server: loopback by default, any other address only behind an API key.

The key is read from a file (never from the command line, where ``ps`` shows it to every
user) and compared in constant time: both sides are hashed first, so neither the content
nor the length of the expected key leaks through timing.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import stat
from pathlib import Path

from thinkjson_edge.errors import UsageError
from thinkjson_edge.files import open_regular

MIN_KEY_CHARACTERS = 16  # a guessable key is no lock
_KEY_FILE_BYTES = 4096  # a key is one line; anything longer is the wrong file
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) only ever reaches this machine."""
    name = host.strip().strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # any other name may resolve to an outside address


def require_key_for(host: str, key_file: Path | None) -> None:
    """Refuse, before anything starts, to bind outside loopback without an API key."""
    if key_file is None and not is_loopback(host):
        raise UsageError(
            f"--host {host}: binding an address other than loopback (127.0.0.1, ::1, "
            "localhost) needs --api-key-file FILE, a file holding the key clients send as "
            "'Authorization: Bearer KEY'"
        )


def load_api_key(path: Path) -> str:
    """The key in ``path`` (surrounding whitespace dropped); UsageError when unusable."""
    with open_regular(path, error=UsageError, noun="API key file") as stream:
        data = stream.read(_KEY_FILE_BYTES + 1)
    if len(data) > _KEY_FILE_BYTES:
        raise UsageError(f"{path}: over {_KEY_FILE_BYTES} bytes; an API key file holds one key")
    try:
        key = data.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: the API key file is not UTF-8 text") from exc
    if len(key) < MIN_KEY_CHARACTERS or any(c.isspace() or not c.isprintable() for c in key):
        raise UsageError(
            f"{path}: the API key must be one line of at least {MIN_KEY_CHARACTERS} printable "
            "characters without spaces (e.g. `openssl rand -hex 32 > FILE`)"
        )
    return key


def key_file_warning(path: Path) -> str | None:
    """A warning when other users may read the key file, else None."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return f"{path}: other users can read the API key file (chmod 600 it)"
    return None


class KeyCheck:
    """Compares the key a request presents with the server's, in constant time."""

    def __init__(self, key: str) -> None:
        self._digest = _digest(key)

    def admits(self, presented: str | None) -> bool:
        # Hash even when nothing was presented, so the answer takes the same time.
        return hmac.compare_digest(_digest(presented or ""), self._digest) and bool(presented)


def presented_key(authorization: str | None, api_key_header: str | None) -> str | None:
    """The key a request carries: ``Authorization: Bearer KEY`` (what OpenAI clients send)
    or ``X-API-Key: KEY``."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    if api_key_header and api_key_header.strip():
        return api_key_header.strip()
    return None


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
