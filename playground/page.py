"""What the page does, as plain functions: the Gradio layer in `ui/` only lays out components and
wires their events to these. Each takes and returns plain values, so tests call them directly.
"""

from __future__ import annotations

import json
from typing import Iterator

import backends
import presets
import wrappers
from backends import BackendError, Settings
from playground import flow
from playground.conversation import Conversation, ConversationError
from presets import PresetError
from wrappers import WrapperError
from wrappers.render import TemplateError

SLIDER_KEYS = [k for k in presets.KEYS if k not in ("stop", "grammar", "json_schema")]


def conversation_from_inputs(conversation_json: str, variables_json: str = "", now: str = "") -> Conversation:
    conversation = Conversation.from_json(conversation_json)
    if variables_json and variables_json.strip():
        try:
            variables = json.loads(variables_json)
        except json.JSONDecodeError as e:
            raise ConversationError(f"template variables are not valid JSON: {e.msg} at line {e.lineno}") from None
        if not isinstance(variables, dict):
            raise ConversationError("template variables must be a JSON object")
        conversation.template_variables = {**conversation.template_variables, **variables}
    if now and now.strip():
        conversation.now = now.strip()
    return conversation


def wrapper_view(name: str) -> tuple[str, str]:
    """The template to edit and a one-paragraph description of the wrapper."""
    wrapper = wrappers.get(name)
    models = f" Models: {', '.join(wrapper.models)}." if wrapper.models else ""
    origin = "built-in" if wrapper.builtin else "yours (user folder)"
    info = f"**{wrapper.name}** ({origin}, parser `{wrapper.parser}`): {wrapper.description}{models}"
    return wrapper.template, info


def preview(wrapper: str, template: str, conversation_json: str, variables_json: str = "", now: str = "") -> tuple[str, str]:
    """(prompt, status): the rendered prompt, or the error in its place and a status naming the line."""
    try:
        conversation = conversation_from_inputs(conversation_json, variables_json, now)
        prompt = wrappers.get(wrapper).render(conversation, template)
    except TemplateError as e:
        where = f" at line {e.line}" if e.line else ""
        return f"Template error{where}: {e.message}", f"❌ Template error{where}: {e.message}"
    except (ConversationError, WrapperError) as e:
        return f"Cannot render: {e}", f"❌ {e}"
    return prompt, f"✅ {len(prompt):,} characters, {prompt.count(chr(10)) + 1:,} lines"


def mark_whitespace(text: str) -> str:
    """A view of the prompt where spaces, tabs and line ends are visible."""
    return text.replace(" ", "·").replace("\t", "→").replace("\n", "↵\n")


def save_wrapper(base: str, name: str, template: str) -> tuple[list[str], str, str]:
    """(wrapper names, selected name, status) after saving the edited template as `name`."""
    try:
        saved = wrappers.save_as(wrappers.get(base), name, template)
    except WrapperError as e:
        return wrappers.names(), base, f"❌ {e}"
    return wrappers.names(), saved.name, f"✅ Saved as **{saved.name}** in your wrapper folder."


def preset_values(name: str) -> list:
    """The slider values and stop list JSON a preset gives (over neutral), in SLIDER_KEYS order + stop."""
    delta = presets.load(name)
    values = {**presets.NEUTRAL, **delta}
    stop = delta.get("stop")
    return [values[k] for k in SLIDER_KEYS] + [json.dumps(stop) if stop is not None else ""]


def params_from_controls(slider_values: list, stop_json: str, wrapper_stop: list[str]) -> dict:
    """Explicit parameters from the page's controls; an empty stop box means the wrapper's stop list."""
    params = {k: presets.check_value(k, v) for k, v in zip(SLIDER_KEYS, slider_values, strict=True)}
    if stop_json and stop_json.strip():
        try:
            params["stop"] = presets.check_value("stop", json.loads(stop_json))
        except json.JSONDecodeError as e:
            raise PresetError(f'stop strings must be a JSON list such as ["\\nUSER:"]: {e.msg}') from None
    else:
        params["stop"] = list(wrapper_stop)
    return params


def backend_settings(url: str, model: str, api_key: str, timeout: float, extra_json: str) -> Settings:
    extra = {}
    if extra_json and extra_json.strip():
        try:
            extra = json.loads(extra_json)
        except json.JSONDecodeError as e:
            raise BackendError(f"extra request fields are not valid JSON: {e.msg}") from None
        if not isinstance(extra, dict):
            raise BackendError("extra request fields must be a JSON object")
    return Settings(url=url or "", model=model or "", api_key=api_key or "", timeout=float(timeout or 120), extra=extra)


def check_backend(backend_type: str, url: str, model: str, api_key: str, timeout: float) -> tuple[str, list[str]]:
    """(status line, model names the server lists)."""
    try:
        backend = backends.create(backend_type, backend_settings(url, model, api_key, timeout, ""))
        status = backend.check()
        names = backend.models()
    except BackendError as e:
        return f"❌ {e}", []
    ignored = backend.ignored(presets.KEYS)
    note = f" — ignores {', '.join(ignored)}" if ignored else ""
    return f"✅ {status}{note}", names


def backend_defaults(backend_type: str) -> tuple[str, str]:
    """(URL placeholder, which parameters this type ignores) for the backend picker."""
    cls = backends.TYPES.get(backend_type)
    if cls is None:
        return "", ""
    ignored = cls.ignored(presets.KEYS)
    return cls.default_url, (f"This backend ignores: {', '.join(ignored)}." if ignored else "Every sampling parameter is sent.")


def run_generation(backend_type: str, url: str, model: str, api_key: str, timeout: float, extra_json: str,
                   wrapper: str, template: str, conversation_json: str, variables_json: str, now: str,
                   preset: str, slider_values: list, stop_json: str) -> Iterator[tuple[str, dict | None, dict | None, str]]:
    """Stream (raw output, parsed call, request, status) while generating. Errors end the stream with
    a status sentence; the page stays usable and what was received is kept."""
    raw = ""
    try:
        conversation = conversation_from_inputs(conversation_json, variables_json, now)
        w = wrappers.get(wrapper)
        request = flow.GenerateRequest(
            backend_type=backend_type, wrapper=wrapper, conversation=conversation, preset=preset,
            settings=backend_settings(url, model, api_key, timeout, extra_json),
            params=params_from_controls(slider_values, stop_json, w.stop), template=template)
        yield "", None, None, "⏳ Generating…"
        for run in flow.generate_stream(request):
            raw = run.raw
            if run.done:
                yield raw, run.parsed.to_dict(), run.request, finished_status(run)
            else:
                yield raw, None, None, f"⏳ Generating… {len(raw):,} characters received"
    except TemplateError as e:
        yield raw, None, None, f"❌ Template error{f' at line {e.line}' if e.line else ''}: {e.message}"
    except (BackendError, ConversationError, WrapperError, PresetError) as e:
        yield raw, None, None, f"❌ {e}"


def finished_status(run: flow.Run) -> str:
    usage = run.usage or {}
    tokens = ""
    if usage.get("completion_tokens") is not None:
        tokens = f", {usage.get('prompt_tokens', '?')} prompt + {usage['completion_tokens']} completion tokens"
    seconds = run.timings.get("total")
    timing = f" in {seconds:.2f} s" if seconds is not None else ""
    parsed = run.parsed
    verdict = "❌ parse error" if parsed and parsed.error else f"✅ {len(parsed.tool_calls)} call(s) parsed" if parsed else ""
    notes = "".join(f" ⚠ {n}." for n in run.notes)
    return f"Done{timing} (finish reason: {run.finish_reason}{tokens}). {verdict}{notes}"
