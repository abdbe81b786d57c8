"""Backend registry: each type is a small translator from the common request to one server's wire format."""

from __future__ import annotations

from .base import Backend, BackendError, Completion, Settings
from .embedded import Embedded
from .openai import OpenAICompletions

TYPES: dict[str, type[Backend]] = {cls.type: cls for cls in (Embedded, OpenAICompletions)}

__all__ = ["Backend", "BackendError", "Completion", "Settings", "TYPES", "create", "names"]


def names() -> list[str]:
    return list(TYPES)


def create(backend_type: str, settings: Settings) -> Backend:
    try:
        cls = TYPES[backend_type]
    except KeyError:
        raise BackendError(f"unknown backend type '{backend_type}'; known types: {', '.join(TYPES)}") from None
    return cls(settings)
