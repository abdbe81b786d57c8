"""The start-up configuration every face takes: the environment MemGPT users already have, then flags.

The CLI builds it from argparse; the page, the API and the endpoint read it and never see argparse.
Exposure rules live here because every face served on the network obeys the same ones.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import presets
from backends import Settings
from backends.embedded import DEFAULT_MAX_MODELS
from core.errors import UserError
from flow.admission import DEFAULT_OVERALL, DEFAULT_PER_SESSION

DEFAULT_WRAPPER = "chatml"  # MemGPT's default wrapper
RISK_FLAG = "--expose-without-auth"
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


@dataclass
class StartupConfig:
    backend_type: str = "embedded"
    backend_url: str = ""
    backend_model: str = ""  # a model name for servers, a GGUF path for the embedded backend
    wrapper: str = DEFAULT_WRAPPER
    preset: str = presets.DEFAULT
    host: str = "127.0.0.1"
    port: int = 7860
    auth: tuple[str, str] | None = None  # (user, password) for the page and the API
    share: bool = False  # a public Gradio share link; decided by this flag alone, never by GRADIO_SHARE
    expose_without_auth: bool = False
    allow_backend: list[str] = field(default_factory=list)  # HOST[:PORT] backend requests may reach; empty: anywhere
    models_dir: str = ""  # the folder whose .gguf files the embedded backend offers; "" = the user folder's models/
    max_models: int = DEFAULT_MAX_MODELS  # embedded models kept loaded at once (least recently used freed first)
    api_key: str = ""  # the bearer key /v1 requires (needed wherever --auth or a non-loopback host is)
    traffic_log: str = ""  # a JSONL file every /v1 request is appended to; empty: memory only
    traffic_size: int = 200  # the /v1 requests the Traffic tab keeps in memory
    max_generations: int = DEFAULT_OVERALL  # requests to backends the page and the API run at once (flow.admission)
    max_generations_per_session: int = DEFAULT_PER_SESSION  # ... of them one page or API client may run at once
    notes: list[str] = field(default_factory=list)  # what the user should know at start (stderr, and the page's title)
    backend_api_key: str = ""  # the start-up backend's own key (/v1 sends it; never shown in the page)
    backend_timeout: float = 120.0  # seconds a generation on the start-up backend may take (the panels' default too)
    legacy_stream_port: int = 5005  # webui-legacy's streaming websocket

    def backend_settings(self) -> Settings:
        """How /v1 reaches the start-up backend."""
        return Settings(url=self.backend_url, model=self.backend_model, api_key=self.backend_api_key,
                        timeout=self.backend_timeout, legacy_stream_port=self.legacy_stream_port)


class StartupError(UserError):
    """A start-up setting that cannot be used."""


def from_environment(environ=os.environ) -> StartupConfig:
    """`OPENAI_API_BASE` and `BACKEND_TYPE` preset the backend, as they did in MemGPT; `PFP_MAX_MODELS`
    the number of embedded models kept loaded; `PFP_API_KEY` the endpoint's key and `PFP_BACKEND_API_KEY`
    the start-up backend's (kept off the command line, where other users of the machine could read them)."""
    config = StartupConfig(api_key=environ.get("PFP_API_KEY", "").strip(),
                           backend_api_key=environ.get("PFP_BACKEND_API_KEY", "").strip())
    max_models = environ.get("PFP_MAX_MODELS", "").strip()
    if max_models:
        if not max_models.isdigit() or int(max_models) < 1:
            raise StartupError(f"PFP_MAX_MODELS must be a whole number of at least 1, not '{max_models}'")
        config.max_models = int(max_models)
    url = environ.get("OPENAI_API_BASE", "").strip()
    backend_type = environ.get("BACKEND_TYPE", "").strip()
    if url:
        config.backend_url = url
        config.backend_type = backend_type or "openai"
    elif backend_type:
        config.backend_type = backend_type
    return config


def is_loopback(host: str) -> bool:
    """True when `host` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    host = (host or "").strip().strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other name may resolve to a reachable address


def exposure_problem(config: StartupConfig) -> str | None:
    """The sentence refusing to serve where others can reach the page without a password, or None."""
    exposed = []
    if not is_loopback(config.host):
        exposed.append(f"on {config.host}")
    if config.share:
        exposed.append("through a public share link")
    if not exposed or config.auth or config.expose_without_auth:
        return None
    return (f"refusing to serve {' and '.join(exposed)} without --auth USER:PASS: anyone who can reach the page could "
            "use it, and its backend URL field lets a visitor make this machine send requests to any address it can "
            "reach, your local network included. Add --auth USER:PASS (and --allow-backend HOST[:PORT] to limit where "
            f"requests go), or pass {RISK_FLAG} if you accept that risk.")


def allowed_backends(config: StartupConfig) -> list[str] | None:
    """The hosts backend requests may reach, or None for anywhere (no --allow-backend given)."""
    hosts = [h.strip() for h in config.allow_backend if h.strip()]
    if not hosts:
        return None
    if config.backend_url:  # the operator's own start-up backend is always allowed
        url = config.backend_url
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.hostname:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            hosts.append(f"{parts.hostname}:{port}")
    return hosts
