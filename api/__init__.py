"""The API face: named endpoints (`/render`, `/parse`, `/generate`, `/wrappers`) for gradio_client and scripts.

Same inputs as the CLI, with files passed as JSON strings. Errors become gr.Error so the client
gets the sentence the CLI would print.
"""

from __future__ import annotations

import json

import gradio as gr

import flow
import presets
import wrappers as wrapper_registry
from backends import BackendError, Settings
from core.conversation import Conversation
from core.errors import UserError
from presets import PresetError


def render(wrapper: str, conversation: str, template: str | None = None) -> str:
    """The exact prompt `wrapper` makes of `conversation` (JSON); `template` renders in the wrapper's place."""
    try:
        return flow.render(wrapper, Conversation.from_json(conversation), template or None)
    except UserError as e:
        raise gr.Error(str(e)) from None


def parse(raw: str, wrapper: str | None = None, functions: str | None = None, format: str | None = None) -> dict:
    """Parse raw model output with a wrapper (or a bare parser `format`); `functions` is JSON."""
    try:
        conversation = Conversation.functions_only(json.loads(functions)) if functions else None
        return flow.parse(raw, wrapper=wrapper, format_id=format, conversation=conversation).to_dict()
    except json.JSONDecodeError as e:
        raise gr.Error(f"functions are not valid JSON: {e.msg}") from None
    except UserError as e:
        raise gr.Error(str(e)) from None


def generate(backend_type: str, wrapper: str, conversation: str, backend_url: str = "", preset: str = presets.DEFAULT,
             params: str = "{}", backend_model: str = "") -> dict:
    """Render, complete and parse; `params` is a JSON object of sampling overrides."""
    try:
        overrides = json.loads(params or "{}")
        if not isinstance(overrides, dict):
            raise PresetError("params must be a JSON object of parameter: value")
        request = flow.GenerateRequest(backend_type=backend_type, wrapper=wrapper,
                                       conversation=Conversation.from_json(conversation), preset=preset or None,
                                       params=overrides, settings=Settings(url=backend_url or "", model=backend_model or ""))
        return flow.generate(request).to_dict()
    except BackendError as e:  # a cut stream: what arrived is kept in the message
        kept = f" Text received before the failure: {e.partial_text!r}" if e.partial_text else ""
        raise gr.Error(str(e) + kept) from None
    except json.JSONDecodeError as e:
        raise gr.Error(f"params are not valid JSON: {e.msg}") from None
    except UserError as e:
        raise gr.Error(str(e)) from None


def wrappers() -> list[str]:
    """The names of every wrapper: built-in, then yours."""
    return wrapper_registry.names()


def register() -> None:
    """Add the endpoints to the Blocks being built."""
    for fn in (render, parse, generate, wrappers):
        gr.api(fn, api_name=fn.__name__, concurrency_limit=None)
