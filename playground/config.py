"""Start-up defaults: the environment MemGPT users already have, then command-line flags."""

from __future__ import annotations

import os
from dataclasses import dataclass

import presets

DEFAULT_WRAPPER = "chatml"  # MemGPT's default wrapper


@dataclass
class StartupConfig:
    backend_type: str = "embedded"
    backend_url: str = ""
    backend_model: str = ""  # a model name for servers, a GGUF path for the embedded backend
    wrapper: str = DEFAULT_WRAPPER
    preset: str = presets.DEFAULT
    host: str = "127.0.0.1"
    port: int = 7860


def from_environment(environ=os.environ) -> StartupConfig:
    """`OPENAI_API_BASE` and `BACKEND_TYPE` preset the backend, as they did in MemGPT."""
    config = StartupConfig()
    url = environ.get("OPENAI_API_BASE", "").strip()
    backend_type = environ.get("BACKEND_TYPE", "").strip()
    if url:
        config.backend_url = url
        config.backend_type = backend_type or "openai"
    elif backend_type:
        config.backend_type = backend_type
    return config
