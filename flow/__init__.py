"""The one flow, shared by the page, the API and the CLI:

    conversation -> wrapper.render() -> prompt -> backend.stream() -> raw -> wrapper.parse() -> parsed
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterator

import backends
import parsers
import presets
import wrappers
from backends import BackendError, Completion, Settings
from parsers import ParseContext, ParseResult
from core.conversation import Conversation
from core.text import replace_surrogates, surrogates_note


def render(wrapper: str, conversation: Conversation, template: str | None = None) -> str:
    return wrappers.get(wrapper).render(conversation, template)


def parse(raw: str, wrapper: str | None = None, format_id: str | None = None,
          conversation: Conversation | None = None) -> ParseResult:
    """Parse with a wrapper (its parser, options and forced prefix) or with a bare parser format."""
    if format_id:
        functions = conversation.functions if conversation else []
        return parsers.parse(format_id, raw, ParseContext(functions=functions))
    return wrappers.get(wrapper or "").parse(raw, conversation)


@dataclass
class GenerateRequest:
    backend_type: str
    wrapper: str
    conversation: Conversation
    settings: Settings = field(default_factory=Settings)
    preset: str | None = presets.DEFAULT
    params: dict = field(default_factory=dict)  # explicit overrides of the preset
    template: str | None = None  # an edited template in place of the wrapper's own


@dataclass
class Run:
    """Everything one generation showed: the live state while streaming, the full record at the end."""

    prompt: str
    params: dict
    raw: str = ""
    parsed: ParseResult | None = None
    request: dict = field(default_factory=dict)
    usage: dict = field(default_factory=dict)
    finish_reason: str | None = None
    finish_raw: object = None  # the server's own finish value, before normalizing
    usage_source: str | None = None  # where the token counts came from (the server's reply, its tokenizer...)
    timings: dict = field(default_factory=dict)
    done: bool = False
    notes: list[str] = field(default_factory=list)  # things the user should know, e.g. an empty completion
    response: object = None  # the server's last raw response body (or final stream event)
    tokens: list | None = None  # per output token: {"token", "logprob", "top"}, when probabilities were asked for

    def to_dict(self) -> dict:
        return {"prompt": self.prompt, "raw": self.raw, "parsed": self.parsed.to_dict() if self.parsed else None,
                "request": self.request, "usage": self.usage, "usage_source": self.usage_source,
                "finish_reason": self.finish_reason, "finish_raw": self.finish_raw,
                "timings": self.timings, "params": self.params, "notes": self.notes, "tokens": self.tokens, "response": self.response}


def _prepare(req: GenerateRequest):
    """(wrapper, backend, the run so far: prompt and parameters) for one generation."""
    wrapper = wrappers.get(req.wrapper)
    prompt, replaced = replace_surrogates(wrapper.render(req.conversation, req.template))  # unsendable as they are
    params = presets.resolve(req.preset, wrapper.stop, req.params)
    run = Run(prompt=prompt, params=params, notes=[surrogates_note(replaced)] if replaced else [])
    return wrapper, backends.create(req.backend_type, req.settings), run


def generate_stream(req: GenerateRequest) -> Iterator[Run]:
    """Yield the run after each chunk of output, and once more, complete and parsed, at the end.

    Closing this generator (the page's Stop) closes the backend stream, which aborts the request.
    Raises TemplateError, WrapperError, PresetError or BackendError with a sentence for the user; a
    BackendError's `partial_text` holds the output received before the failure.
    """
    wrapper, backend, run = _prepare(req)
    yield run
    completion = None
    with contextlib.closing(backend.stream(run.prompt, run.params)) as stream:
        for event in stream:
            if isinstance(event, Completion):
                completion = event
            else:
                run.raw += event
                yield run
    if completion is None:
        raise BackendError("the backend ended its stream without a final result", run.raw)
    _finish(run, completion, wrapper.parse(completion.text, req.conversation))
    yield run


def _finish(run: Run, completion: Completion, parsed: ParseResult) -> None:
    run.raw = completion.text
    run.parsed = parsed
    run.request = completion.request
    run.usage = completion.usage
    run.finish_reason = completion.finish_reason
    run.timings = completion.timings
    run.tokens = completion.tokens
    run.response = completion.response
    run.finish_raw = completion.finish_raw
    run.usage_source = completion.usage_source
    run.notes.extend(completion.notes or [])
    if not completion.text.strip():
        where = completion.request.get("url") or "the backend"
        run.notes.append(f"{where} returned an empty completion (finish reason: {completion.finish_reason}): "
                         "a stop string may match at once, or max_new_tokens is 0")
    run.done = True


def generate(req: GenerateRequest) -> Run:
    """The whole run at once: the backend's blocking call (webui-legacy's needs no websocket)."""
    wrapper, backend, run = _prepare(req)
    completion = backend.complete(run.prompt, run.params)
    _finish(run, completion, wrapper.parse(completion.text, req.conversation))
    return run
