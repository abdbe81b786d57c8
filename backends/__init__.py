"""Backend registry: each type is a small translator from the common request to one server's wire format."""

from __future__ import annotations

from .base import Backend, BackendError, Completion, Settings, set_allowed_hosts
from .embedded import Embedded
from .koboldcpp import KoboldCpp
from .llamacpp import LlamaCpp
from .ollama import Ollama
from .openai import VLLM, LMStudio, OpenAICompletions, WebUI
from .webui_legacy import WebUILegacy

TYPES: dict[str, type[Backend]] = {cls.type: cls for cls in (
    Embedded, OpenAICompletions, WebUI, WebUILegacy, LlamaCpp, KoboldCpp, Ollama, VLLM, LMStudio)}

__all__ = ["Backend", "BackendError", "Completion", "Settings", "TYPES", "capabilities", "create", "detect", "names",
           "set_allowed_hosts"]


def names() -> list[str]:
    return list(TYPES)


def create(backend_type: str, settings: Settings) -> Backend:
    try:
        cls = TYPES[backend_type]
    except KeyError:
        raise BackendError(f"unknown backend type '{backend_type}'; known types: {', '.join(TYPES)}") from None
    return cls(settings)


def capabilities() -> dict[str, dict]:
    """type -> what the page can offer for it (see Backend.capabilities)."""
    return {name: cls.capabilities() for name, cls in TYPES.items()}


def capabilities_table() -> str:
    """The capabilities as a Markdown table (for the README)."""
    rows = ["| type | streaming | stop / abort | token counts | probabilities | tokenize | model template | grammar | JSON schema |",
            "|---|---|---|---|---|---|---|---|---|"]
    yes = lambda v: "yes" if v else "—"  # noqa: E731
    for name, c in capabilities().items():
        rows.append(f"| `{name}` | {yes(c['streaming'])} | {c['abort']} | {c['usage'] or '—'} | {yes(c['probabilities'])} "
                    f"| {yes(c['tokenize'])} | {yes(c['model_template'])} | {yes(c['grammar'])} | {yes(c['json_schema'])} |")
    return "\n".join(rows)


def detect(url: str, timeout: float = 5.0) -> tuple[str, str]:
    """Probe `url` and pick the backend type: (type, what was found). BackendError if nothing answers.

    Order matters: KoboldCpp also emulates llama.cpp's /props and Ollama's /api/tags, so it is asked first.
    """
    server = create("openai", Settings(url=url, timeout=timeout))
    base = server.base_url  # scheme check, suffixes, allow-list
    data = server.probe("/api/extra/version")
    if isinstance(data, dict) and data.get("result") == "KoboldCpp":
        return "koboldcpp", f"{base}/api/extra/version says KoboldCpp {data.get('version', '?')}"
    data = server.probe("/props")
    if isinstance(data, dict) and ("default_generation_settings" in data or "chat_template" in data):
        build = data.get("build_info") or "unknown build"
        return "llamacpp", f"{base}/props answers like llama.cpp's llama-server ({build})"
    data = server.probe("/api/version")
    if isinstance(data, dict) and "version" in data:
        tags = server.probe("/api/tags")
        if isinstance(tags, dict) and "models" in tags:
            return "ollama", f"{base}/api/version says Ollama {data['version']}"
    data = server.probe("/v1/internal/model/info")
    if isinstance(data, dict) and "model_name" in data:
        return "webui", f"{base}/v1/internal/model/info answers like text-generation-webui (model {data['model_name']})"
    models = server.probe("/v1/models")
    listed = models.get("data") if isinstance(models, dict) else None
    owners = {m.get("owned_by") for m in listed if isinstance(m, dict)} if isinstance(listed, list) else set()
    if "vllm" in owners:
        return "vllm", f"{base}/v1/models lists models owned by vllm"
    data = server.probe("/api/v0/models")
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        return "lmstudio", f"{base}/api/v0/models answers like LM Studio's REST API"
    data = server.probe("/api/v1/model")
    if isinstance(data, dict) and isinstance(data.get("result"), str):
        return "webui-legacy", f"{base}/api/v1/model answers like text-generation-webui's legacy API (model {data['result']})"
    if isinstance(listed, list):
        return "openai", f"{base}/v1/models answers like an OpenAI-compatible server ({len(listed)} models)"
    raise BackendError(f"{base} answers HTTP but like none of the known servers (tried /api/extra/version, /props, "
                       "/api/version, /v1/internal/model/info, /v1/models, /api/v0/models, /api/v1/model): "
                       "is this the server's address?")
