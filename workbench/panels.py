"""What the page does, as plain functions: the Gradio layer in `ui/` only lays out components and
wires their events to these. Each takes and returns plain values, so tests call them directly.
"""

from __future__ import annotations

import datetime
import json
import math
import threading
import time
from dataclasses import dataclass, fields
from typing import Iterator

import backends
import presets
import wrappers
from backends import BackendError, Settings, embedded, export
import flow
from flow import server_render, streaming
from flow.startup import DEFAULT_WRAPPER
from core.conversation import Conversation, ConversationError
from core.text import replace_surrogates, surrogates_note
from presets import PresetError
from wrappers import WrapperError, diff, lint, model_template
from wrappers.render import TemplateError

SLIDER_KEYS = [k for k in presets.KEYS if k not in ("stop", "grammar", "json_schema")]  # numeric controls
PRESET_CONTROLS = [*SLIDER_KEYS, "stop_json", "grammar"]  # the controls a preset fills

# One panel's controls by name: the page builds one component per name, its handlers receive
# {name: value}, a saved session keeps them under these names, and a session saved before a control
# existed gets the control's default. The order is the page's top-down order.
CONTROL_DEFAULTS: dict = {
    "backend_type": "embedded", "url": "", "model": "", "api_key": "", "timeout": 120, "first_token_timeout": 0,
    "token_timeout": 0, "legacy_stream_port": 5005, "probabilities": 0, "extra_json": "", "wrapper": DEFAULT_WRAPPER, "template": "", "preset": presets.DEFAULT,
    **{k: presets.NEUTRAL[k] for k in SLIDER_KEYS}, "stop_json": "", "grammar": "", "json_schema": "",
}
CONTROL_NAMES = list(CONTROL_DEFAULTS)
# the sampling controls and the request parameter each one sets: every one is sent or named as ignored
SAMPLING_CONTROLS = {**{k: k for k in SLIDER_KEYS}, "stop_json": "stop", "grammar": "grammar", "json_schema": "json_schema"}


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


def wrapper_info(name: str) -> str:
    """A one-paragraph description of the wrapper."""
    try:
        wrapper = wrappers.get(name)
    except WrapperError as e:
        return f"❌ {e}"
    models = f" Models: {', '.join(wrapper.models)}." if wrapper.models else ""
    origin = "built-in" if wrapper.builtin else "yours (user folder)"
    return f"**{wrapper.name}** ({origin}, parser `{wrapper.parser}`): {wrapper.description}{models}"


def wrapper_view(name: str) -> tuple[str, str]:
    """The template to edit and the wrapper's description."""
    return wrappers.get(name).template, wrapper_info(name)


def preview(wrapper: str, template: str, conversation_json: str, variables_json: str = "", now: str = "") -> tuple[str, str]:
    """(prompt, status): the rendered prompt, or the error in its place and a status naming the line."""
    try:
        conversation = conversation_from_inputs(conversation_json, variables_json, now)
        chosen = wrappers.get(wrapper)
        prompt = chosen.render(conversation, template)
    except TemplateError as e:
        where = f" at line {e.line}" if e.line else ""
        return f"Template error{where}: {e.message}", f"❌ Template error{where}: {e.message}"
    except (ConversationError, WrapperError) as e:
        return f"Cannot render: {e}", f"❌ {e}"
    findings = lint_lines(lint.lint(chosen, conversation, template, prompt))
    shown, replaced = replace_surrogates(prompt)
    note = f"\n- ⚠ {surrogates_note(replaced)}" if replaced else ""
    return shown, f"✅ {len(prompt):,} characters, {prompt.count(chr(10)) + 1:,} lines{findings}{note}"


def lint_lines(findings: list[str]) -> str:
    """The template lint's findings as Markdown lines under the prompt ('' when clean)."""
    return "".join(f"\n- {'⚠' if f.startswith('warning') else 'ℹ'} {f}" for f in findings)


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


def preset_values(name: str) -> dict:
    """What a preset puts in the controls: {name: value} for each of PRESET_CONTROLS."""
    delta = presets.load(name)
    values = {**presets.NEUTRAL, **delta}
    stop = delta.get("stop")
    return {**{k: values[k] for k in SLIDER_KEYS}, "stop_json": json.dumps(stop) if stop is not None else "",
            "grammar": values["grammar"]}


def neutral_values() -> dict:
    """The numeric controls by name with every sampler switched off (the stop list and grammar are kept)."""
    return {k: presets.NEUTRAL[k] for k in SLIDER_KEYS}


def params_from_controls(samplers: dict, stop_json: str, wrapper_stop: list[str], grammar: str = "",
                         json_schema: str = "") -> dict:
    """Explicit parameters from the page's controls (`samplers`: the numeric ones by name); an empty stop box
    means the wrapper's stop list."""
    params = {k: presets.check_value(k, samplers[k]) for k in SLIDER_KEYS}
    if stop_json and stop_json.strip():
        try:
            params["stop"] = presets.check_value("stop", json.loads(stop_json))
        except json.JSONDecodeError as e:
            raise PresetError(f'stop strings must be a JSON list such as ["\\nUSER:"]: {e.msg}') from None
    else:
        params["stop"] = list(wrapper_stop)
    params["grammar"] = grammar or ""
    if json_schema and json_schema.strip():
        try:
            params["json_schema"] = presets.check_value("json_schema", json.loads(json_schema))
        except json.JSONDecodeError as e:
            raise PresetError(f"the JSON schema is not valid JSON: {e.msg} at line {e.lineno}") from None
    return params


def save_preset(name: str, controls: dict) -> tuple[list[str], str, str]:
    """(preset names, selected, status) after saving the controls (PRESET_CONTROLS by name) as a user preset."""
    try:
        values = {k: presets.check_value(k, controls[k]) for k in SLIDER_KEYS}
        stop_json = controls.get("stop_json") or ""
        if stop_json.strip():
            values["stop"] = presets.check_value("stop", json.loads(stop_json))
        values["grammar"] = controls.get("grammar") or ""
        saved = presets.save(name, values)
    except (PresetError, json.JSONDecodeError) as e:
        return presets.names(), "", f"❌ {e}"
    return presets.names(), saved, f"✅ Saved preset **{saved}** in your preset folder."


def delete_preset(name: str) -> tuple[list[str], str, str]:
    try:
        presets.delete(name)
    except PresetError as e:
        return presets.names(), name, f"❌ {e}"
    return presets.names(), presets.DEFAULT, f"✅ Deleted preset **{name}**."


def backend_settings(url: str, model: str, api_key: str, timeout: float, extra_json: str = "", probabilities: int = 0,
                     first_token_timeout: float = 0, token_timeout: float = 0, legacy_stream_port: int = 5005) -> Settings:
    extra = {}
    if extra_json and extra_json.strip():
        try:
            extra = json.loads(extra_json)
        except json.JSONDecodeError as e:
            raise BackendError(f"extra request fields are not valid JSON: {e.msg}") from None
        if not isinstance(extra, dict):
            raise BackendError("extra request fields must be a JSON object")
    return Settings(url=url or "", model=model or "", api_key=api_key or "", timeout=float(timeout or 120), extra=extra,
                    probabilities=int(probabilities or 0), first_token_timeout=float(first_token_timeout or 0),
                    token_timeout=float(token_timeout or 0), legacy_stream_port=int(legacy_stream_port or 5005))


def check_backend(backend_type: str, url: str, model: str, api_key: str, timeout: float) -> tuple[str, list[str]]:
    """(status line, model names the server lists)."""
    try:
        backend = backends.create(backend_type, backend_settings(url, model, api_key, timeout))
        status = backend.check()
        names = backend.models()
    except BackendError as e:
        return f"❌ {e}", []
    ignored = backend.ignored(SAMPLING_CONTROLS.values())
    note = f" — ignores {', '.join(ignored)}" if ignored else ""
    return f"✅ {status}{note}", names


def backend_defaults(backend_type: str) -> tuple[str, str]:
    """(URL placeholder, what this type offers and which parameters it ignores) for the backend picker."""
    cls = backends.TYPES.get(backend_type)
    if cls is None:
        return "", ""
    caps = cls.capabilities()
    offers = [label for key, label in (("probabilities", "token probabilities"), ("tokenize", "tokenizing"),
                                       ("model_template", "the model's template"), ("grammar", "GBNF grammar"),
                                       ("json_schema", "JSON schema")) if caps.get(key)]
    ignored = cls.ignored(SAMPLING_CONTROLS.values())
    text = f"{cls.label}. Stop: {caps['abort']}."
    text += f" Offers {', '.join(offers)}." if offers else ""
    text += f" Ignores: {', '.join(ignored)}." if ignored else " Every sampling parameter is sent."
    if backend_type == "embedded":
        text += " The time limits do not apply: the model runs in this app (Stop ends a run)."
    return cls.default_url, text


def model_choices(backend_type: str) -> list[str]:
    """The Model list before Check: for embedded the models it may load; a server's own list comes from Check."""
    return embedded.choices() if backend_type == "embedded" else []


def picked_backend(backend_type: str, model: str) -> tuple[str, str, list[str], str | None]:
    """(URL placeholder, status, Model choices, Model value) when a backend type is picked: for embedded, whether
    its model is loaded; an embedded model path is not carried over to a server, nor a server's name to embedded."""
    url, status = backend_defaults(backend_type)
    listed = model_choices(backend_type)
    if backend_type == "embedded":
        return url, f"{status} Model: {embedded.load_state(model if model in listed else '')}.", listed, (
            model if model in listed else None)
    return url, status, listed, None if model in embedded.choices() else model


@dataclass
class PanelConfig:
    """One panel's settings (the controls by name; `samplers` holds the numeric ones, SLIDER_KEYS, by name)."""

    backend_type: str
    url: str
    model: str
    api_key: str
    timeout: float
    extra_json: str
    wrapper: str
    template: str
    preset: str
    samplers: dict  # SLIDER_KEYS: value
    stop_json: str
    grammar: str
    probabilities: int = 0  # alternatives per output token to ask for (0 = none)
    json_schema: str = ""  # a JSON schema constraining the output, as text ("" = none)
    first_token_timeout: float = 0  # seconds to the first token (0: the timeout alone)
    token_timeout: float = 0  # seconds between tokens (0: the timeout alone)
    legacy_stream_port: int = 5005  # webui-legacy's streaming websocket

    @classmethod
    def from_values(cls, values: dict) -> "PanelConfig":
        """From the page's {control name: value}; names not given take their defaults."""
        given = {**CONTROL_DEFAULTS, **values}
        return cls(**{f.name: given[f.name] for f in fields(cls) if f.name != "samplers"},
                   samplers={k: given[k] for k in SLIDER_KEYS})

    def settings(self) -> Settings:
        return backend_settings(self.url, self.model, self.api_key, self.timeout, self.extra_json, self.probabilities,
                                self.first_token_timeout, self.token_timeout, self.legacy_stream_port)

    def request(self, conversation_json: str, variables_json: str = "", now: str = "") -> flow.GenerateRequest:
        conversation = conversation_from_inputs(conversation_json, variables_json, now)
        wrapper = wrappers.get(self.wrapper)
        return flow.GenerateRequest(
            backend_type=self.backend_type, wrapper=self.wrapper, conversation=conversation, preset=self.preset or None,
            settings=self.settings(), params=params_from_controls(self.samplers, self.stop_json, wrapper.stop, self.grammar, self.json_schema),
            template=self.template)


STOPPED = "⏹ Stopped: the request was aborted; the output so far is kept."


def run_generation(config: PanelConfig, conversation_json: str, variables_json: str = "", now: str = "",
                   stop: threading.Event | None = None,
                   update_every: float = 0.0) -> Iterator[tuple[str, dict | None, dict | None, str, dict | None]]:
    """Stream (raw output, parsed call, request, status, finished run record) while generating.
    Errors end the stream with a status sentence; the page stays usable and what arrived is kept.
    Setting `stop` aborts the request (the backend stream is closed) and ends with a Stopped status.
    `update_every` (seconds) coalesces the streamed updates: the first chunk and the end always go out
    at once, the chunks between at most that often (a browser pays for every update it is sent).
    Lone surrogates (which no page can be sent) come out as U+FFFD, with a note in the status."""
    for raw, parsed, request, status, record in _generation(config, conversation_json, variables_json, now, stop,
                                                            update_every):
        (raw, parsed, request), replaced = replace_surrogates((raw, parsed, request))
        record, _ = replace_surrogates(record)  # it holds the same texts again
        yield raw, parsed, request, status + (f" ⚠ {surrogates_note(replaced)}." if replaced else ""), record


def _generation(config: PanelConfig, conversation_json: str, variables_json: str, now: str, stop: threading.Event | None,
                update_every: float) -> Iterator[tuple[str, dict | None, dict | None, str, dict | None]]:
    raw = ""
    try:
        request = config.request(conversation_json, variables_json, now)
        state = embedded.load_state(config.model) if config.backend_type == "embedded" else embedded.LOADED
        waiting = state in (embedded.LOADING, embedded.LOADING_IN_BACKGROUND, embedded.ON_FIRST_USE)
        yield "", None, None, f"⏳ Generating…{f' ({state})' if waiting else ''}", None
        incremental = streaming.IncrementalParse.for_wrapper(config.wrapper, request.conversation)
        deltas: list[streaming.Delta] = []
        stream = flow.generate_stream(request)
        shown, last_update = "", 0.0
        for run in stream:
            if stop is not None and stop.is_set():
                stream.close()
                yield run.raw or raw, None, None, STOPPED, None
                return
            deltas += incremental.feed(run.raw[len(raw):])
            raw = run.raw
            if run.done:
                incremental.finish(streaming.answer(run.parsed, raw))
                if incremental.diverged:  # what was shown while streaming is not what the whole output parses to
                    run.notes.append(f"the call shown while streaming differs from the final parse: {incremental.diverged}")
                record = {**run.to_dict(), "wrapper": config.wrapper, "backend_type": config.backend_type,
                          "time": datetime.datetime.now().strftime("%H:%M:%S")}
                yield raw, run.parsed.to_dict(), run.request, finished_status(run), record
            elif raw != shown and (not shown or time.monotonic() - last_update >= update_every):
                shown, last_update = raw, time.monotonic()
                yield raw, streaming_view(deltas), None, f"⏳ Generating… {len(raw):,} characters received", None
    except TemplateError as e:
        yield raw, None, None, f"❌ Template error{f' at line {e.line}' if e.line else ''}: {e.message}", None
    except (BackendError, ConversationError, WrapperError, PresetError) as e:
        yield raw, None, None, f"❌ {e}", None


def streaming_view(deltas: list) -> dict | None:
    """The parsed call as far as the output so far settles it (arguments as the JSON text written yet)."""
    if not deltas:
        return None
    answer = streaming.reassemble(deltas)
    return {"streaming": "parsed so far; the whole output's parse replaces this", "content": answer.content,
            "tool_calls": [{"name": c.name, "arguments": c.arguments} for c in answer.calls]}


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


def session_state(conversation_json: str, variables_json: str, now: str, panel_count: int, panels: list[dict]) -> dict:
    """The workbench as plain data: each panel's controls by name; API keys are never kept."""
    settings = [{name: values.get(name, CONTROL_DEFAULTS[name]) for name in CONTROL_NAMES} | {"api_key": ""}
                for values in panels]
    return {"conversation": conversation_json, "template_variables": variables_json or "", "now": now or "",
            "panels": int(panel_count), "panel_settings": settings}


def restore_panels(state: dict) -> list[dict]:
    """Each saved panel's controls by name, defaults for the controls it was saved without (an older session)."""
    return [{name: settings.get(name, CONTROL_DEFAULTS[name]) for name in CONTROL_NAMES}
            for settings in state.get("panel_settings", []) if isinstance(settings, dict)]


def export_panel(record: dict | None, wrapper_name: str, template: str) -> tuple[str, str, str, str]:
    """(curl, Python, wrapper YAML, status) for a panel's last run and its current wrapper edits."""
    try:
        wrapper = wrappers.get(wrapper_name)
    except WrapperError as e:
        return "", "", "", f"❌ {e}"
    edited = wrappers.Wrapper(**{**wrapper.__dict__, "template": template, "builtin": False})
    yaml_text = edited.to_yaml()
    if not record or not record.get("request"):
        return "", "", yaml_text, "Run this panel first to export its request; the wrapper is below."
    request = record["request"]
    return export.as_curl(request), export.as_python(request), yaml_text, "✅ Exported the last request of this panel."


def prompt_diff(a: str, b: str, a_name: str = "prompt A", b_name: str = "prompt B") -> tuple[list[tuple[str, str | None]], str]:
    """(highlighted segments, summary) of A → B, whitespace made visible where it changed."""
    result = diff.prompt_diff(a, b, a_name, b_name)
    return result.display_pairs(), result.summary


def load_model_template(path: str | None, pasted: str, name: str) -> tuple[str, str, str, str]:
    """(template, suggested parser with the reason, lint and origin notes, status) from a file or pasted text.
    The result is saved as a user wrapper named `name`, so any panel can pick it."""
    try:
        if path:
            loaded = model_template.load(path)
        elif pasted and pasted.strip():
            loaded = model_template.from_text(pasted)
        else:
            return "", "", "", "❌ Choose a GGUF, tokenizer_config.json, chat_template.jinja or instruction-template YAML, or paste a template."
        saved = wrappers.save_as(loaded, name or loaded.name, loaded.template, loaded.description)
    except (WrapperError, OSError) as e:
        return "", "", "", f"❌ {e}"
    format_id, reason = model_template.suggest_parser(saved.template)
    return (saved.template, f"`{format_id}`: {reason}", saved.description,
            f"✅ Saved as wrapper **{saved.name}**: pick it in any panel's Wrapper list.")


def token_heatmap(tokens: list[dict] | None) -> list[tuple[str, float]]:
    """The output tokens for a heat-map: the less likely the sampled token was, the redder."""
    spans = []
    for t in tokens or []:
        lp = t.get("logprob")
        p = math.exp(lp) if isinstance(lp, (int, float)) else 1.0
        spans.append((t.get("token", ""), round(1.0 - p, 3)))
    return spans


def token_alternatives(tokens: list[dict] | None, index: int) -> tuple[list[list], str]:
    """(rows of token, log-probability, probability, chosen) for the clicked output token, and a caption."""
    if not tokens or not 0 <= index < len(tokens):
        return [], "Click a token of the output to see the alternatives the model weighed."
    t = tokens[index]
    rows = [[repr(a.get("token", "")), round(a["logprob"], 4), f"{math.exp(a['logprob']):.2%}", "✓" if a.get("token") == t.get("token") else ""]
            for a in t.get("top") or [] if isinstance(a.get("logprob"), (int, float))]
    chosen = t.get("logprob")
    caption = f"Token {index + 1}: {t.get('token', '')!r}" + (f", p = {math.exp(chosen):.2%}" if isinstance(chosen, (int, float)) else "")
    return rows, caption


def prompt_tokens(config: PanelConfig, conversation_json: str, variables_json: str = "", now: str = "") -> tuple[list[list], str]:
    """(rows of index, id, piece) of the prompt as the panel's backend tokenizes it, and what to notice."""
    try:
        request = config.request(conversation_json, variables_json, now)
        prompt = flow.render(request.wrapper, request.conversation, request.template)
        backend = backends.create(config.backend_type, request.settings)
        pieces = backend.tokenize(prompt)
        findings = server_render.token_findings(backend, prompt, plain=pieces)
    except TemplateError as e:
        return [], f"❌ Template error: {e}"
    except (BackendError, ConversationError, WrapperError, PresetError) as e:
        return [], f"❌ {e}"
    rows = [[i, t.get("id"), repr(t.get("piece"))] for i, t in enumerate(pieces)]
    notes = "".join(f"\n- ⚠ {f}" for f in findings)
    return rows, f"{len(pieces):,} tokens, as {config.backend_type} tokenizes them (special tokens parsed, no BOS added).{notes}"


def server_template(config: PanelConfig) -> tuple[str, str]:
    """(the loaded model's own chat template, status) as the server reports it."""
    try:
        backend = backends.create(config.backend_type, config.settings())
        info = backend.model_info()
    except BackendError as e:
        return "", f"❌ {e}"
    template = info.get("chat_template") or ""
    if not template:
        return "", f"{info.get('name') or 'The model'} reports no chat template ({info.get('source', config.backend_type)})."
    return template, f"✅ {info.get('name') or 'model'}: its chat template from {info.get('source', config.backend_type)}."


def detect_backend(url: str) -> tuple[str | None, str]:
    """(backend type or None, what was found) for a bare URL."""
    try:
        kind, found = backends.detect(url)
    except BackendError as e:
        return None, f"❌ {e}"
    return kind, f"✅ Detected **{kind}**: {found}."
