"""The API face: named endpoints (`/render`, `/parse`, `/generate`, `/wrappers`) for gradio_client and scripts.

Same inputs as the CLI, with files passed as JSON strings. Errors become gr.Error so the client
gets the sentence the CLI would print. `/generate` waits in the queue of requests to backends
(`flow.admission`); `/render`, `/parse` and `/wrappers` never wait behind it.
"""

from __future__ import annotations

import contextlib
import json

import gradio as gr

import flow
import presets
import wrappers as wrapper_registry
from backends import BackendError, Settings
from core.conversation import Conversation
from core.errors import UserError
from core.text import replace_surrogates, surrogates_note
from flow.admission import QUEUE, BackendSlots
from presets import PresetError


@contextlib.contextmanager
def _sentences(what_json: str):
    """Errors as the sentence the client sees; `what_json` names the JSON argument a decode error is about."""
    try:
        yield
    except json.JSONDecodeError as e:
        raise gr.Error(f"{what_json} not valid JSON: {e.msg}") from None
    except BackendError as e:  # a cut stream: what arrived is kept in the message
        kept = f" Text received before the failure: {replace_surrogates(e.partial_text)[0]!r}" if e.partial_text else ""
        raise gr.Error(str(e) + kept) from None
    except UserError as e:
        raise gr.Error(str(e)) from None


def _sendable(value):
    """`value` with lone surrogates replaced (they cannot be sent); the note goes to the client as a warning,
    and into the result's notes where it has some."""
    value, count = replace_surrogates(value)
    if count:
        gr.Warning(surrogates_note(count))
        if isinstance(value, dict):
            value["notes"] = [*value.get("notes", []), surrogates_note(count)]
    return value


def render(wrapper: str, conversation: str, template: str | None = None) -> str:
    """The exact prompt `wrapper` makes of `conversation` (JSON); `template` renders in the wrapper's place."""
    with _sentences("the conversation is"):
        return _sendable(flow.render(wrapper, Conversation.from_json(conversation), template or None))


def parse(raw: str, wrapper: str | None = None, functions: str | None = None, format: str | None = None) -> dict:
    """Parse raw model output with a wrapper (or a bare parser `format`); `functions` is JSON."""
    with _sentences("functions are"):
        conversation = Conversation.functions_only(json.loads(functions)) if functions else None
        return _sendable(flow.parse(raw, wrapper=wrapper, format_id=format, conversation=conversation).to_dict())


def wrappers() -> list[str]:
    """The names of every wrapper: built-in, then yours."""
    return wrapper_registry.names()


def register(slots: BackendSlots) -> None:
    """Add the endpoints to the Blocks being built. `/generate` runs in the queue of requests to backends,
    at most `slots.per_session` at once for one client."""

    def generate(request: gr.Request, backend_type: str, wrapper: str, conversation: str, backend_url: str = "",
                 preset: str = presets.DEFAULT, params: str = "{}", backend_model: str = "",
                 timeout: float = 120.0) -> dict:
        """Render, complete and parse; `params` is a JSON object of sampling overrides; `timeout` the seconds
        to wait for the server (the page's Timeout)."""
        with _sentences("params are"), slots.hold(request.session_hash):
            overrides = json.loads(params or "{}")
            if not isinstance(overrides, dict):
                raise PresetError("params must be a JSON object of parameter: value")
            settings = Settings(url=backend_url or "", model=backend_model or "", timeout=float(timeout or 120.0))
            run = flow.generate(flow.GenerateRequest(backend_type=backend_type, wrapper=wrapper, settings=settings,
                                                     conversation=Conversation.from_json(conversation),
                                                     preset=preset or None, params=overrides))
            return _sendable(run.to_dict())

    for fn in (render, parse, wrappers):
        gr.api(fn, api_name=fn.__name__, concurrency_limit=None)
    gr.api(generate, api_name="generate", concurrency_id=QUEUE, concurrency_limit=slots.overall)
