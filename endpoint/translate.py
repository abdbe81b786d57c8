"""OpenAI ChatCompletion shapes to the flow and back: a request becomes a `flow.GenerateRequest`
(the wrapper is `model`, the backend the start-up one), an `Answer` becomes a response or its chunks."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

import backends
import flow
import presets
import wrappers
from core.conversation import Conversation, ConversationError
from core.errors import UserError
from flow.startup import StartupConfig
from flow.streaming import Answer, Delta, Policy

# OpenAI's sampling fields -> the flow's parameter names (presets.NEUTRAL); those keys are taken as they are too
SAMPLING = {"max_tokens": "max_new_tokens", "max_completion_tokens": "max_new_tokens", "repeat_penalty": "repetition_penalty",
            "mirostat": "mirostat_mode"}
GRAMMAR_FIELD = "pfp_grammar"  # true/false: constrain the output with the derived grammar (default: on for required/named)
TIMEOUT_WORDS = ("did not answer in time", "timed out", "time limit", "deadline")  # a backend error's sentence on a time-out


class EndpointError(Exception):
    """An answer in OpenAI's error shape with its HTTP status."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def bad_request(message: str, param: str | None = None) -> EndpointError:
    return EndpointError(400, message, param)


def from_user_error(error: UserError) -> EndpointError:
    """The status a flow error gets: backend trouble is the gateway's (502, 504 for a time-out), the rest the caller's."""
    message = str(error)
    if isinstance(error, backends.BackendError):
        timed_out = _timed_out(error)
        return EndpointError(504 if timed_out else 502, message, code="backend_timeout" if timed_out else "backend_error",
                             kind="api_error")
    code = "template_error" if isinstance(error, wrappers.TemplateError) else None
    return EndpointError(400, message, code=code)


def _timed_out(error: Exception) -> bool:
    """A time-out, told by what the error carries before its wording: a `timed_out` flag or a Timeout class
    (on the error or the exception it was raised from), else the words of its sentence."""
    flag = getattr(error, "timed_out", None)
    if isinstance(flag, bool):
        return flag
    seen, cause = set(), error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, TimeoutError) or "Timeout" in type(cause).__name__:
            return True
        cause = cause.__cause__ or cause.__context__
    message = str(error).lower()
    return any(words in message for words in TIMEOUT_WORDS)


@dataclass
class Prepared:
    request: flow.GenerateRequest
    mode: str  # "tools" (answer with tool_calls) or "functions" (legacy function_call)
    stream: bool
    policy: Policy  # which parsed calls the answer may hold
    notes: list[str] = field(default_factory=list)


def _text(content, index: int):
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") not in ("text", "input_text"):
                raise bad_request(f"message {index} has a content part that is not text; only text is supported", "messages")
            parts.append(str(part.get("text", "")))
        return "".join(parts)
    raise bad_request(f"message {index}'s content must be a string or a list of text parts", "messages")


def conversation_of(body: dict) -> tuple[Conversation, str, object, bool]:
    """(conversation, mode, choice, offered): `choice` is "auto" | "none" | "required" | a function name;
    `offered`: the request gave tools or functions."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' is required: a non-empty list of {role, content} objects", "messages")
    normalized = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise bad_request(f"message {i} must be an object with a role", "messages")
        normalized.append({**m, "content": _text(m.get("content"), i)} if "content" in m else m)
    tools, functions = body.get("tools"), body.get("functions")
    if tools and functions:
        raise bad_request("give either 'tools' or the legacy 'functions', not both", "functions")
    mode = "functions" if functions else "tools"
    field_name = "function_call" if functions else "tool_choice"
    choice = body.get(field_name) or "auto"
    if isinstance(choice, dict):
        choice = (choice.get("function") or {}).get("name") if "function" in choice else choice.get("name")
        if not isinstance(choice, str) or not choice:
            raise bad_request(f"a named {field_name} needs the function's name", field_name)
    elif choice not in ("auto", "none", "required"):
        raise bad_request(f"{field_name} must be auto, none, required or a named function, not {choice!r}", field_name)
    data = {"messages": normalized}  # with tool_choice none the tools are still rendered (OpenAI's model still sees them)
    if tools:
        data["tools"] = tools
    elif functions:
        data["functions"] = functions
    try:
        conversation = Conversation.from_data(data)
    except ConversationError as e:
        raise bad_request(str(e), "messages") from None
    if choice not in ("auto", "none", "required") and choice not in [f["name"] for f in conversation.functions]:
        raise bad_request(f"{field_name} names '{choice}', which is not among the request's functions", field_name)
    return conversation, mode, choice, bool(tools or functions)


def policy_of(body: dict, mode: str, choice, offered: bool) -> Policy:
    """Which parsed calls the answer may hold, with the request's reason for each limit."""
    field_name = "function_call" if mode == "functions" else "tool_choice"
    if not offered:
        return Policy(no_calls_why="the request offers no tools")
    if choice == "none":
        return Policy(no_calls_why=f"{field_name} is none")
    named = choice not in ("auto", "required")
    if mode == "functions":
        return Policy(only=choice if named else None, only_why=f"function_call names {choice}",
                      max_calls=1, max_why="a legacy function_call answer holds one call")
    if body.get("parallel_tool_calls") is False:
        return Policy(only=choice if named else None, only_why=f"tool_choice names {choice}",
                      max_calls=1, max_why="parallel_tool_calls is false")
    if named:
        return Policy(only=choice, only_why=f"tool_choice names {choice}", max_calls=1, max_why=f"tool_choice names {choice}")
    return Policy()


def sampling_of(body: dict, wrapper: wrappers.Wrapper, preset: str | None) -> dict:
    params = {}
    for key, value in body.items():
        name = SAMPLING.get(key, key)
        if value is None or name not in presets.NEUTRAL:
            continue  # OpenAI's other fields (user, logprobs, response_format...) have no meaning for a raw prompt
        try:
            params[name] = presets.check_value(name, value)
        except presets.PresetError as e:
            raise bad_request(str(e), key) from None
    if "stop" in params:  # the caller's stop strings come on top of the wrapper's, which end its turn
        base = presets.resolve(preset, wrapper.stop)["stop"]
        params["stop"] = base + [s for s in params["stop"] if s not in base]
    return params


def _constrain(prepared: Prepared, wrapper: wrappers.Wrapper, conversation: Conversation, choice, wanted) -> None:
    """Add the scoreboard's grammar for a required or named call where the backend takes one."""
    if wanted is False or (wanted is None and choice in ("auto", "none")) or "grammar" in prepared.request.params:
        return
    backend = backends.TYPES[prepared.request.backend_type]
    if not backend.capabilities()["grammar"]:
        prepared.notes.append(f"no grammar sent: {backend.type} backends do not take one")
        return
    # imported for this request only: the scoreboard brings jsonschema and its suites, which serving does not need
    import scoreboard

    functions = conversation.functions if choice in ("auto", "required") else [f for f in conversation.functions if f["name"] == choice]
    target = Conversation(conversation.messages, functions, conversation.template_variables, conversation.now)
    try:
        constraint = scoreboard.derive(wrapper, target, max_calls=prepared.policy.max_calls or scoreboard.grammar.MAX_PARALLEL)
    except scoreboard.GrammarUnsupported as e:
        prepared.notes.append(f"no grammar sent: {e}")
        return
    prepared.request.params.update(constraint.params())
    prepared.notes.append(f"grammar sent: {constraint.format} format")


def prepare(body, config: StartupConfig) -> Prepared:
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    name = body.get("model")
    try:
        if not isinstance(name, str):
            raise wrappers.UnknownWrapper(name)
        wrapper = wrappers.get(name)
    except wrappers.UnknownWrapper:
        raise EndpointError(404, f"the model '{name}' does not exist: a model here is a wrapper name (GET /v1/models lists them)",
                            "model", "model_not_found") from None
    except UserError as e:
        raise from_user_error(e) from None
    if body.get("n") not in (None, 1):
        raise bad_request("only n=1 is supported", "n")
    conversation, mode, choice, offered = conversation_of(body)
    wanted = body.get(GRAMMAR_FIELD)
    if wanted is not None and not isinstance(wanted, bool):
        raise bad_request(f"'{GRAMMAR_FIELD}' must be true or false", GRAMMAR_FIELD)
    request = flow.GenerateRequest(backend_type=config.backend_type, wrapper=name, conversation=conversation,
                                   settings=config.backend_settings(),
                                   preset=config.preset or None, params=sampling_of(body, wrapper, config.preset or None))
    prepared = Prepared(request, mode, bool(body.get("stream")), policy_of(body, mode, choice, offered))
    _constrain(prepared, wrapper, conversation, choice, wanted)
    return prepared


# --- answers ------------------------------------------------------------------------------------------------

def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def finish_reason(answer: Answer, mode: str, backend_finish: str | None) -> str:
    if answer.calls:
        return "function_call" if mode == "functions" else "tool_calls"
    return "length" if backend_finish == "length" else "stop"


def usage(counts: dict) -> dict | None:
    prompt, completion = counts.get("prompt_tokens"), counts.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None  # unknown counts are left out rather than made up
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def message(answer: Answer, mode: str) -> dict:
    out: dict = {"role": "assistant", "content": answer.content}
    if answer.calls and mode == "functions":
        out["function_call"] = {"name": answer.calls[0].name, "arguments": answer.calls[0].arguments}
    elif answer.calls:
        out["tool_calls"] = [{"id": new_id("call_"), "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                             for c in answer.calls]
    return out


def completion(answer: Answer, mode: str, model: str, backend_finish: str | None, counts: dict) -> dict:
    return {"id": new_id("chatcmpl-"), "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message(answer, mode), "logprobs": None,
                         "finish_reason": finish_reason(answer, mode, backend_finish)}],
            "usage": usage(counts), "system_fingerprint": None}


class Chunks:
    """The `chat.completion.chunk` events of one streamed answer."""

    def __init__(self, model: str, mode: str):
        self.model, self.mode = model, mode
        self.id, self.created = new_id("chatcmpl-"), int(time.time())
        self.call_ids: list[str] = []

    def event(self, delta: dict, finish: str | None = None, **extra) -> str:
        body = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "system_fingerprint": None, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                **extra}
        return sse(body)

    def first(self) -> str:
        return self.event({"role": "assistant", "content": ""})

    def delta(self, d: Delta) -> str:
        if d.kind == "content":
            return self.event({"content": d.text})
        if self.mode == "functions":
            part = {"name": d.text, "arguments": ""} if d.kind == "call" else {"arguments": d.text}
            return self.event({"function_call": part})
        if d.kind == "call":
            self.call_ids.append(new_id("call_"))
            call = {"index": d.index, "id": self.call_ids[-1], "type": "function", "function": {"name": d.text, "arguments": ""}}
        else:
            call = {"index": d.index, "function": {"arguments": d.text}}
        return self.event({"tool_calls": [call]})

    def last(self, answer: Answer, backend_finish: str | None, counts: dict, notes: list[str] | None = None) -> str:
        """The final chunk; the headers went out before the parse, so its error and notes are said here (and in Traffic)."""
        extra: dict = {"usage": usage(counts)}
        if answer.error:
            extra["parse_error"] = answer.error
        if notes:
            extra["notes"] = notes
        return self.event({}, finish_reason(answer, self.mode, backend_finish), **extra)


def sse(body: dict) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


DONE = "data: [DONE]\n\n"
