"""One pooled HTTP client per backend server, kept alive across requests and shared by every user.

Building an httpx.Client per request paid for a new connection (and TLS) before the first byte was
sent. Timeouts are given per request, so one client serves every setting; the clients close at exit.
"""

from __future__ import annotations

import atexit
import functools
import ssl
import threading
from urllib.parse import urlsplit

import certifi
import httpx

# enough connections for many concurrent streams to one server (a scoreboard, many page users)
LIMITS = httpx.Limits(max_connections=128, max_keepalive_connections=32, keepalive_expiry=30.0)

_clients: dict[tuple[str, str, int], httpx.Client] = {}
_lock = threading.Lock()


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One TLS context for every client: building one reads the CA bundle (about 40 ms here)."""
    return ssl.create_default_context(cafile=certifi.where())


def _key(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


def client_for(url: str) -> httpx.Client:
    """The client for the server `url` is on (scheme, host, port), made on first use."""
    key = _key(url)
    with _lock:
        client = _clients.get(key)
        if client is None:
            # redirects are not followed: the request (and its key) goes only where the user said;
            # identity encoding: a compressed body could expand past the size limits in one read
            client = httpx.Client(limits=LIMITS, verify=_ssl_context(), follow_redirects=False,
                                  headers={"Accept-Encoding": "identity"})
            _clients[key] = client
        return client


@atexit.register
def close_all() -> None:
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()
