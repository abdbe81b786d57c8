"""What every backend shares: Settings, the Completion record, the Backend base, and the one HTTP loop.

A backend translates: it gives its request body, what each stream event says (text, finish, counts)
and how it counts tokens. Everything else lives here once: the streaming loop, the time limits,
bounded reading, the error wording, masking the key, the record of the exact request.
"""

from __future__ import annotations

import json
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator
from urllib.parse import urlsplit

import httpx

from . import pool
from .errors import BackendError
from .limits import TimeLimits
from .masking import MASK, mask
from .wire import (DETAIL_CHARS, DONE, StatusError, clip, connection_message, decode, decode_json, error_text,
                   invalid_note, lines, loads, misshapen, not_a_stream, not_json, read_body, sse_events, status_error,
                   stopped_midway)

__all__ = ["Backend", "BackendError", "Completion", "HttpBackend", "Settings", "Stream", "TextCollector", "Turn",
           "check_allowed", "connection_message", "map_params", "merge", "normalize_finish", "set_allowed_hosts",
           "sse_events"]

MAX_OUTPUT_CHARS = 4_000_000  # a runaway server cannot fill the app's memory
MAX_BODY_BYTES = 16_000_000  # the largest JSON body read from a server, and the longest stream line
SECRET_MASK = MASK
ABORT_TIMEOUT = 3.0  # seconds an abort call may take; it is best effort
CONNECT_TIMEOUT = 10.0
# what reading a JSON value of the wrong shape raises (a list where an object was expected, a string for a list...)
SHAPE_ERRORS = (AttributeError, TypeError, KeyError, IndexError, ValueError)

_allowed_hosts: set[str] | None = None  # None: every host may be reached


def set_allowed_hosts(hosts: list[str] | None) -> None:
    """Restrict HTTP backends to these HOST or HOST:PORT entries (--allow-backend); None allows all."""
    global _allowed_hosts
    _allowed_hosts = None if hosts is None else {h.strip().lower().rstrip("/") for h in hosts if h.strip()}


def check_allowed(url: str) -> None:
    if _allowed_hosts is None:
        return
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(parts.scheme, 0)
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if host in _allowed_hosts or netloc in _allowed_hosts or f"{host}:{port}" in _allowed_hosts:
        return
    allowed = ", ".join(sorted(_allowed_hosts)) or "none"
    raise BackendError(f"{host}:{port} is not in the allowed backends (--allow-backend): {allowed}; "
                       "ask whoever runs this app to allow it")


def normalize_finish(raw) -> str | None:
    """A server's own finish reason as "stop" | "length" | "aborted" | its raw value; None if unknown."""
    if raw is None or raw in ("", "null"):
        return None
    value = str(raw).lower()
    if value in ("stop", "eos", "word", "stop_string", "eos_token", "end_turn", "stoppedeos", "stop_sequence"):
        return "stop"
    if value in ("length", "limit", "max_tokens", "maxpredictedtokensreached", "max_length"):
        return "length"
    if value in ("aborted", "abort", "cancelled", "canceled"):
        return "aborted"
    return str(raw)


@dataclass
class Completion:
    text: str
    finish_reason: str | None = None  # "stop" (end of sequence or stop string), "length", "aborted", or other
    usage: dict = field(default_factory=dict)  # prompt_tokens, completion_tokens as the server counted them
    request: dict = field(default_factory=dict)  # the exact call: method, url, headers (secrets masked), json
    response: object = None  # the server's last raw response body (or final stream event)
    timings: dict = field(default_factory=dict)  # seconds: first_token, total
    finish_raw: object = None  # the server's own finish value (e.g. llama.cpp stop_type "word")
    usage_source: str = ""  # where the token counts come from: "server", "tokenizer endpoint", ...
    tokens: list | None = None  # with Settings.probabilities: [{"token", "logprob", "top": [{"token", "logprob"}]}]
    notes: list = field(default_factory=list)  # what the user should know, e.g. "stop string trimmed client-side"

    def to_dict(self) -> dict:
        return {"text": self.text, "finish_reason": self.finish_reason, "finish_raw": self.finish_raw,
                "usage": self.usage, "usage_source": self.usage_source, "tokens": self.tokens,
                "request": self.request, "response": self.response, "timings": self.timings, "notes": self.notes}


# A stream yields text deltas (str) as they arrive, then exactly one Completion at the end.
Stream = Iterator["str | Completion"]


@dataclass
class Settings:
    """Where and how to reach a backend; one per request, so concurrent users never share state."""

    url: str = ""
    model: str = ""
    api_key: str = ""
    timeout: float = 120.0  # seconds: the wall-clock deadline for a whole generation (or any other request)
    first_token_timeout: float = 0.0  # seconds a stream may take to its first token; 0: the deadline alone
    token_timeout: float = 0.0  # seconds a stream may go without a new token; 0: the deadline alone
    extra: dict = field(default_factory=dict)  # free-form fields merged into the request body
    probabilities: int = 0  # > 0: ask for per-token log-probabilities with this many alternatives
    legacy_stream_port: int = 5005  # webui-legacy only: the port of its streaming websocket, on the URL's host


CAPABILITY_KEYS = ("streaming", "abort", "usage", "probabilities", "tokenize", "model_template", "server_render",
                   "grammar", "json_schema", "model_list")


class TextCollector:
    """The text of a stream, bounded, with client-side stop trimming; tells the time limits of each token."""

    def __init__(self, url: str, stop: list[str] | None = None, limits: TimeLimits | None = None):
        self.url = url
        self.parts: list[str] = []
        self.size = 0
        self.limits = limits or TimeLimits(float("inf"))
        self.stop = [s for s in (stop or []) if s]  # only for servers that return the stop string
        self.held = ""  # text that might be the start of a stop string
        self.trimmed: str | None = None  # the stop string that was cut off client-side

    def add(self, delta: str) -> str:
        """Record `delta`; return the text that can be shown now."""
        if not delta or self.trimmed is not None:
            return ""
        self.limits.token()
        self.size += len(delta)
        if self.size > MAX_OUTPUT_CHARS:
            raise BackendError(f"{self.url} sent more than {MAX_OUTPUT_CHARS:,} characters; stopped reading")
        if not self.stop:
            self.parts.append(delta)
            return delta
        buf = self.held + delta
        hits = [(buf.find(s), s) for s in self.stop if s in buf]
        if hits:
            at, word = min(hits)
            self.trimmed = word
            self.held = ""
            out = buf[:at]
        else:
            keep = max((k for s in self.stop for k in range(1, len(s)) if buf.endswith(s[:k])), default=0)
            out, self.held = (buf[:-keep], buf[-keep:]) if keep else (buf, "")
        self.parts.append(out)
        return out

    def flush(self) -> str:
        out, self.held = self.held, ""
        if out:
            self.parts.append(out)
        return out

    @property
    def text(self) -> str:
        return "".join(self.parts)


class Backend:
    """Base of every backend type. Subclasses set `type`, `label`, `params` and implement `generate`."""

    type: str = ""
    label: str = ""
    default_url: str = ""
    # common sampling key -> this backend's field name (dotted = nested); keys not listed are ignored
    params: dict[str, str] = {}
    # what the page can offer for this type; see capabilities()
    caps: dict = {}

    def __init__(self, settings: Settings):
        self.settings = settings

    @classmethod
    def ignored(cls, keys) -> list[str]:
        return [k for k in keys if k not in cls.params]

    @classmethod
    def capabilities(cls) -> dict:
        """{streaming, abort, usage, probabilities, tokenize, model_template, server_render, grammar, json_schema,
        model_list}."""
        base = {"streaming": True, "abort": "close the connection", "usage": None, "probabilities": False,
                "tokenize": False, "model_template": False, "server_render": False, "model_list": False}
        base.update(cls.caps)
        base["grammar"] = "grammar" in cls.params
        base["json_schema"] = "json_schema" in cls.params
        return {k: base[k] for k in CAPABILITY_KEYS}

    def unavailable(self, what: str) -> BackendError:
        return BackendError(f"{what} is not available for {self.type} backends")

    def limits(self) -> TimeLimits:
        s = self.settings
        return TimeLimits(s.timeout, s.first_token_timeout, s.token_timeout)

    def generate(self, prompt: str, params: dict) -> Stream:
        """The type's own stream of deltas and one Completion (stream() wraps it)."""
        raise NotImplementedError

    def stream(self, prompt: str, params: dict) -> Stream:
        """Text deltas as they arrive, then one Completion; closing it before the end stops the generation.

        A failure is a BackendError whose `partial_text` holds the text delivered so far; the API key is
        masked in every message, note, raw response and request record."""
        inner = self.generate(prompt, params)
        received: list[str] = []
        finished = False
        try:
            for event in inner:
                if isinstance(event, Completion):
                    finished = True
                    event = self.masked(event)
                else:
                    received.append(event)
                yield event
        except BackendError as e:
            raise BackendError(mask(str(e), self.settings.api_key), "".join(received)) from None
        finally:
            inner.close()  # closes the HTTP connection first: most servers stop on disconnect
            if not finished:
                self.abort()

    def complete(self, prompt: str, params: dict) -> Completion:
        """The whole completion at once (the flow's non-streamed generate): the stream, consumed."""
        for event in self.stream(prompt, params):
            if isinstance(event, Completion):
                return event
        raise BackendError("the backend ended without a result")  # a stream always ends with a Completion

    def masked(self, completion: Completion) -> Completion:
        """`completion` with the key masked where a server may have echoed it (e.g. a header in its final event)."""
        key = self.settings.api_key
        if key:
            completion.request = mask(completion.request, key)
            completion.response = mask(completion.response, key)
            completion.notes = mask(completion.notes, key)
        return completion

    def check(self) -> str:
        """A one-line connection status, or BackendError saying what is wrong."""
        return self.status()

    def status(self) -> str:
        raise NotImplementedError

    def models(self) -> list[str]:
        return []

    def tokenize(self, text: str, add_special: bool = False) -> list[dict]:
        """The prompt as the server tokenizes it: [{"id", "piece"}], special tokens parsed; `add_special` adds the
        BOS (and other special tokens) the server adds to a completion prompt, where the server can say."""
        raise self.unavailable("tokenizing")

    def render_chat(self, messages: list[dict], tools: list[dict] | None = None) -> str:
        """The prompt this server builds from `messages` and `tools` with its own chat template, with the
        generation prompt, and without generating anything."""
        raise self.unavailable("rendering a conversation with the server's own template")

    def model_info(self) -> dict:
        """{"name", "chat_template" (str | None), "source"}: the loaded model and its own chat template."""
        raise self.unavailable("model information")

    def abort(self) -> None:
        """Ask the server to stop the current generation, where it has an endpoint for it (best effort)."""


def map_params(mapping: dict[str, str], params: dict) -> dict:
    """The body fields for the common `params`: dotted names nest; empty grammar and None schema are left out."""
    body: dict = {}
    for key, name in mapping.items():
        if key not in params:
            continue
        value = params[key]
        if (key == "grammar" and not value) or (key == "json_schema" and value is None):
            continue
        target = body
        *parents, leaf = name.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return body


def merge(body: dict, extra: dict) -> dict:
    """Extra request fields over the body; nested objects (e.g. Ollama's options) merge one level deep."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    return body


@dataclass
class Turn:
    """One generation as it streams: what the server's events have said so far."""

    url: str
    limits: TimeLimits
    text: TextCollector
    finish: object = None  # the server's own finish value
    ended: bool = False  # the server's own end marker arrived (a finish reason, a final event)
    done: bool = False  # `data: [DONE]` arrived
    usage: dict = field(default_factory=dict)
    usage_source: str = ""
    tokens: list = field(default_factory=list)
    final: object = None  # the event that ended the stream, when the server sends one
    last: object = None  # the latest event
    reason: str | None = None  # the finish reason reported (normalized, or inferred by the type)
    repaired: bool = False  # invalid characters were replaced with U+FFFD
    notes: list = field(default_factory=list)


def _interrupter(response: httpx.Response) -> Callable[[], None]:
    """What the watchdog calls when a time limit passes: shut the socket, so a blocked read returns at once."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None

    def interrupt() -> None:
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed

    return interrupt


def _send(client: httpx.Client, request: httpx.Request) -> httpx.Response:
    try:
        return client.send(request, stream=True)
    except httpx.RemoteProtocolError as e:
        # a kept-alive connection the server closed as the request went out (llama-server does after a
        # long stream): the request never reached it, so it goes once more, on a new connection
        if "without sending a response" not in str(e):
            raise
        return client.send(request, stream=True)


class HttpBackend(Backend):
    """A backend reached over HTTP: one pooled client per server, one streaming loop for every type.

    A type gives `body()`, `read_event()` (an event's text; its finish, counts and probabilities go
    on the Turn), and where needed `count_usage()`, `conclude()`, `client_stop()`."""

    completion_path: str = ""
    abort_path: str = ""  # POSTed (with abort_body()) when a stream is closed before its end
    framing: str = "sse"  # "sse": server-sent events; "ndjson": one JSON object per line
    end_marker: str = ""  # what ends a whole stream, named when a stream stops without it

    # --- addresses and the request record -------------------------------------------------------------

    def _address(self) -> tuple[str, str]:
        """(the server's base URL, a note when the URL was typed without a scheme and read as http://)."""
        typed = (self.settings.url or self.default_url).strip().rstrip("/")
        url, note = typed, ""
        if "://" not in typed:  # host:port, as MemGPT's README wrote OPENAI_API_BASE
            url = "http://" + typed
            note = f"the backend URL '{typed}' has no scheme: read as {url}"
        elif not typed.lower().startswith(("http://", "https://")):
            raise BackendError(f"the backend URL '{typed}' must start with http:// or https://")
        # users paste the URL with the API suffix; it is understood and never doubled
        changed = True
        while changed:
            changed = False
            for suffix in ("/v1", "/api", "/completion", "/completions"):
                if url.endswith(suffix):
                    url, changed = url[: -len(suffix)].rstrip("/"), True
        check_allowed(url)
        return url, note

    @property
    def base_url(self) -> str:
        return self._address()[0]

    def headers(self) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.settings.api_key:
            headers["Authorization"] = f"Bearer {self.settings.api_key}"
        return headers

    def record(self, method: str, url: str, body: dict | None) -> dict:
        headers = {k: (f"Bearer {MASK}" if k == "Authorization" else v) for k, v in self.headers().items()}
        return {"method": method, "url": url, "headers": headers, "json": body}

    # --- one exchange -----------------------------------------------------------------------------------

    @contextmanager
    def _exchange(self, method: str, path: str, body: dict | None, limits: TimeLimits) -> Iterator[httpx.Response]:
        """The open response to one request, its status a success; every failure as one BackendError."""
        url = self.base_url + path
        left = max(0.01, limits.remaining())
        # read until the headers: the first-token limit or the deadline; the dict is read again for the body
        timeout = {"connect": min(CONNECT_TIMEOUT, left), "read": left, "write": left, "pool": left}
        client = pool.client_for(url)
        try:
            request = client.build_request(method, url, json=body, headers=self.headers(), extensions={"timeout": timeout})
            response = _send(client, request)
            try:
                # the body: the watchdog holds the token limits; the read timeout only backs up the deadline
                timeout["read"] = max(0.01, limits.start + limits.deadline - time.monotonic())
                with limits.watch(_interrupter(response)):
                    if response.status_code >= 300:
                        raw = read_body(response.iter_bytes(), url, limits, MAX_BODY_BYTES)
                        raise status_error(response, raw, url, self.settings.api_key)
                    yield response
            finally:
                response.close()
        except httpx.HTTPError as e:
            if limits.passed() or isinstance(e, httpx.ReadTimeout):
                raise limits.error(url) from None
            raise BackendError(connection_message(e, url)) from None

    def request_json(self, method: str, path: str, body: dict | None = None, timeout: float | None = None,
                     read: Callable[[object], object] | None = None) -> object:
        """The JSON answer to one request, passed through `read` (which picks out what is wanted: an answer
        in a shape it cannot read becomes a sentence naming the server and what it sent)."""
        return self.fetch_json(method, path, body, timeout, read)[0]

    def fetch_json(self, method: str, path: str, body: dict | None = None, timeout: float | None = None,
                   read: Callable[[object], object] | None = None) -> tuple[object, bool]:
        """(request_json's answer, whether invalid characters in it were replaced with U+FFFD)."""
        url = self.base_url + path
        key = self.settings.api_key
        limits = TimeLimits(timeout or self.settings.timeout, what="request")
        try:
            with self._exchange(method, path, body, limits) as response:
                raw = read_body(response.iter_bytes(), url, limits, MAX_BODY_BYTES)
            data, repaired = decode_json(raw, url, key)
            try:
                return (read(data) if read else data), repaired
            except SHAPE_ERRORS:
                raise misshapen(url, self.label, data, key, what="an answer") from None
        except BackendError as e:
            raise BackendError(mask(str(e), key)) from None

    def get_json(self, path: str, read: Callable[[object], object] | None = None) -> object:
        return self.request_json("GET", path, read=read)

    def post_json(self, path: str, body: dict | None = None, timeout: float | None = None,
                  read: Callable[[object], object] | None = None) -> object:
        return self.request_json("POST", path, body, timeout, read)

    def probe(self, path: str) -> object:
        """GET `path` for auto-detection: its JSON, or None when it answers an error or something not JSON;
        a server that cannot be reached raises BackendError."""
        url = self.base_url + path
        limits = TimeLimits(self.settings.timeout, what="request")
        try:
            with self._exchange("GET", path, None, limits) as response:
                raw = read_body(response.iter_bytes(), url, limits, MAX_BODY_BYTES)
        except StatusError:
            return None
        try:
            return loads(decode(raw)[0])[0]
        except json.JSONDecodeError:
            return None

    # --- streaming ----------------------------------------------------------------------------------------

    def post_lines(self, path: str, body: dict, turn: Turn) -> Iterator[object]:
        """POST `body` and yield each stream event (decoded JSON), then DONE if the server sends `[DONE]`."""
        url = self.base_url + path
        key = self.settings.api_key
        with self._exchange("POST", path, body, turn.limits) as response:
            if "text/html" in response.headers.get("content-type", ""):
                raise not_a_stream(url, decode(read_body(response.iter_bytes(), url, turn.limits, MAX_BODY_BYTES))[0], key)

            def texts() -> Iterator[str]:
                for raw in lines(response.iter_bytes(), url, turn.limits, MAX_BODY_BYTES, MAX_OUTPUT_CHARS):
                    text, invalid = decode(raw)
                    turn.repaired |= invalid
                    yield text

            items = sse_events(texts(), url, key) if self.framing == "sse" else (t for t in texts() if t.strip())
            for data in items:
                if data.strip() == "[DONE]":
                    yield DONE
                    for _ in items:  # read to the end, so the connection can be kept alive
                        pass
                    return
                try:
                    event, repaired = loads(data)
                except json.JSONDecodeError:
                    raise not_json(url, data, key) from None
                turn.repaired |= repaired
                if isinstance(event, dict) and (event.get("error") or event.get("object") == "error"):
                    raise BackendError(f"{url} reported an error mid-stream: {clip(error_text(event), key, DETAIL_CHARS)}")
                yield event

    def stream_record(self, body: dict) -> dict:
        return self.record("POST", self.base_url + self.completion_path, body)

    def open_stream(self, body: dict, turn: Turn) -> Iterator[object]:
        """The server's stream events for `body` (HTTP here; a websocket for webui-legacy)."""
        return self.post_lines(self.completion_path, body, turn)

    def generate(self, prompt: str, params: dict) -> Stream:
        """The one streaming loop: events in, text deltas out, then the Completion."""
        body = self.body(prompt, params)
        request = self.stream_record(body)
        url = request["url"]
        limits = self.limits()
        turn = Turn(url=url, limits=limits, text=TextCollector(url, self.client_stop(body), limits))
        for event in self.open_stream(body, turn):
            if event is DONE:
                turn.done = True
                continue
            turn.last = event
            try:
                delta = self.read_event(event, turn)
            except SHAPE_ERRORS:
                delta = None
            if not isinstance(delta, str):
                raise misshapen(url, self.label, event, self.settings.api_key)
            shown = turn.text.add(delta)
            if shown:
                yield shown
        if not (turn.ended or turn.done or turn.text.trimmed is not None):
            raise stopped_midway(url, turn.text.text, self.end_marker)
        tail = turn.text.flush()
        if tail:
            yield tail
        if not turn.usage:
            try:
                turn.usage, turn.usage_source = self.count_usage(prompt, turn.text.text)
            except BackendError as e:  # the text arrived whole; only its counts are missing
                turn.notes.append(f"no token counts: {e}")
        turn.reason = normalize_finish(turn.finish)
        self.conclude(turn, body)
        if turn.repaired:
            turn.notes.append(invalid_note(url))
        if self._address()[1]:
            turn.notes.append(self._address()[1])
        yield Completion(text=turn.text.text, finish_reason=turn.reason, finish_raw=turn.finish, usage=turn.usage,
                         usage_source=turn.usage_source, tokens=turn.tokens if self.settings.probabilities > 0 else None,
                         request=request, response=turn.final if turn.final is not None else turn.last,
                         timings=limits.timings(), notes=turn.notes)

    # --- what each type gives -----------------------------------------------------------------------------

    def body(self, prompt: str, params: dict) -> dict:
        raise NotImplementedError

    def read_event(self, event: dict, turn: Turn) -> str:
        """The text `event` adds; its finish value, counts, probabilities and end go on `turn`."""
        raise NotImplementedError

    def client_stop(self, body: dict) -> list[str]:
        """Stop strings the client must cut itself (a server that returns them)."""
        return []

    def count_usage(self, prompt: str, text: str) -> tuple[dict, str]:
        """(token counts, where they come from) when the stream carried none; never guessed."""
        return {}, ""

    def conclude(self, turn: Turn, body: dict) -> None:
        """Adjust the finish reason and add notes once the stream has ended."""

    # --- stopping and status ---------------------------------------------------------------------------

    def abort_body(self) -> dict | None:
        return None

    def abort(self) -> None:
        if not self.abort_path:
            return
        try:
            self.post_json(self.abort_path, self.abort_body(), timeout=ABORT_TIMEOUT)
        except BackendError:
            pass  # best effort: the connection is closed anyway

    def check(self) -> str:
        note = self._address()[1]
        return f"{self.status()} ({note})" if note else self.status()

    def status(self) -> str:
        names = self.models()
        listed = f"; models: {', '.join(names)}" if names else ""
        return f"connected to {self.base_url}{listed}"
