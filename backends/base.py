"""What every backend shares: the Completion record, the error type, and the HTTP plumbing.

A backend translates; everything else (timeouts, error wording, recording the exact request with
secrets masked, SSE framing) lives here once.
"""

from __future__ import annotations

from core.errors import UserError
import functools
import json
import ssl
import time
from dataclasses import dataclass, field
from typing import Iterator
from urllib.parse import urlsplit

import certifi
import httpx

MAX_OUTPUT_CHARS = 4_000_000  # a runaway server cannot fill the app's memory
MAX_BODY_BYTES = 16_000_000  # the largest JSON body read from a server
SECRET_MASK = "***"
ABORT_TIMEOUT = 3.0  # seconds an abort call may take; it is best effort

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


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One TLS context for every client: building one reads the CA bundle, about 40 ms here, per request otherwise."""
    return ssl.create_default_context(cafile=certifi.where())


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


class BackendError(UserError):
    """One clear sentence for the user: what failed, where, and what to check."""


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
    timeout: float = 120.0  # seconds to wait for the next byte from the server
    extra: dict = field(default_factory=dict)  # free-form fields merged into the request body
    probabilities: int = 0  # > 0: ask for per-token log-probabilities with this many alternatives
    stream_url: str = ""  # webui-legacy only: the websocket address (default: the URL's host, port 5005)


CAPABILITY_KEYS = ("streaming", "abort", "usage", "probabilities", "tokenize", "model_template", "server_render",
                   "grammar", "json_schema", "model_list")


class Backend:
    """Base of every backend type. Subclasses set `type`, `label`, `params` and implement `stream`."""

    type: str = ""
    label: str = ""
    default_url: str = ""
    # common sampling key -> this backend's field name (dotted = nested); keys not listed are ignored
    params: dict[str, str] = {}
    # what the page can offer for this type; see capabilities()
    caps: dict = {}

    def __init__(self, settings: Settings):
        self.settings = settings
        self.last_request: dict = {}  # the record of the call in flight (or the last one), secrets masked

    def partial(self, text: str) -> Completion:
        """The result of a stream the user stopped: what arrived, finish reason "aborted", the request sent."""
        return Completion(text=text, finish_reason="aborted", request=self.last_request,
                          notes=["stopped by the user: the connection was closed" +
                                 (f" and {self.abort_path} called" if getattr(self, "abort_path", "") else "")])

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

    def stream(self, prompt: str, params: dict) -> Stream:
        raise NotImplementedError

    def complete(self, prompt: str, params: dict) -> Completion:
        for event in self.stream(prompt, params):
            if isinstance(event, Completion):
                return event
        raise BackendError("the backend ended without a result")  # a stream always ends with a Completion

    def check(self) -> str:
        """A one-line connection status, or BackendError saying what is wrong."""
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


class HttpBackend(Backend):
    """A backend reached over HTTP; `transport` lets tests swap the network for a handler."""

    transport: httpx.BaseTransport | None = None
    abort_path: str = ""  # POSTed (with abort_body()) when a stream is closed before its end
    completion_path: str = ""

    @property
    def base_url(self) -> str:
        url = (self.settings.url or self.default_url).strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise BackendError(f"the backend URL '{url}' must start with http:// or https://")
        # users paste the URL with the API suffix; it is understood and never doubled
        changed = True
        while changed:
            changed = False
            for suffix in ("/v1", "/api", "/completion", "/completions"):
                if url.endswith(suffix):
                    url, changed = url[: -len(suffix)].rstrip("/"), True
        check_allowed(url)
        return url

    def headers(self) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.settings.api_key:
            headers["Authorization"] = f"Bearer {self.settings.api_key}"
        return headers

    def record(self, method: str, url: str, body: dict | None) -> dict:
        headers = {k: (f"Bearer {SECRET_MASK}" if k == "Authorization" else v) for k, v in self.headers().items()}
        return {"method": method, "url": url, "headers": headers, "json": body}

    def client(self, timeout: float | None = None) -> httpx.Client:
        timeout = timeout or self.settings.timeout
        timeout = httpx.Timeout(timeout, connect=min(10.0, timeout))
        return httpx.Client(timeout=timeout, transport=self.transport, follow_redirects=False, verify=_ssl_context())

    def masked(self, error: BackendError) -> BackendError:
        """`error` with the API key blanked out: a server may echo the Authorization header in its error body."""
        key = self.settings.api_key
        if key and key in str(error):
            return BackendError(str(error).replace(key, SECRET_MASK))
        return error

    def request_json(self, method: str, path: str, body: dict | None = None, timeout: float | None = None) -> object:
        try:
            return self._request_json(method, path, body, timeout)
        except BackendError as e:
            raise self.masked(e) from None

    def _request_json(self, method: str, path: str, body: dict | None, timeout: float | None) -> object:
        url = self.base_url + path
        with self.client(timeout) as client:
            try:
                with client.stream(method, url, json=body, headers=self.headers()) as response:
                    read_bounded(response, url)
                    raise_for_status(response, url)
                    return decode_json(response, url)
            except httpx.HTTPError as e:
                raise BackendError(connection_message(e, url)) from None

    def get_json(self, path: str) -> object:
        return self.request_json("GET", path)

    def post_json(self, path: str, body: dict | None = None, timeout: float | None = None) -> object:
        return self.request_json("POST", path, body, timeout)

    def post_lines(self, path: str, body: dict, framing: str = "sse") -> Iterator[dict]:
        """POST `body` and yield each stream event decoded as JSON until [DONE] or EOF.

        framing "sse": server-sent events (`data:` lines, comments and `event:` lines skipped, CRLF or LF);
        "ndjson": one JSON object per line (Ollama).
        """
        url = self.base_url + path
        size = 0
        self.saw_done = False
        with self.client() as client:
            try:
                with client.stream("POST", url, json=body, headers=self.headers()) as response:
                    if response.status_code >= 400:
                        read_bounded(response, url)
                        raise_for_status(response, url)
                    ctype = response.headers.get("content-type", "")
                    if "text/html" in ctype:
                        read_bounded(response, url)
                        decode_json(response, url)
                    lines = response.iter_lines()
                    items = sse_events(lines) if framing == "sse" else (line for line in lines if line.strip())
                    for data in items:
                        size += len(data)
                        if size > MAX_OUTPUT_CHARS * 4:
                            raise BackendError(f"{url} sent more than {MAX_OUTPUT_CHARS:,} characters; stopped reading")
                        if data.strip() == "[DONE]":
                            self.saw_done = True
                            return
                        try:
                            event = json.loads(data)
                        except json.JSONDecodeError:
                            if data.lstrip().lower().startswith(("<!doctype", "<html")):
                                raise BackendError(f"{url} sent an HTML page instead of a stream: "
                                                   "is this the right URL and backend type?") from None
                            raise BackendError(f"{url} sent a stream event that is not JSON: {data[:200]!r}") from None
                        if isinstance(event, dict) and (event.get("error") or event.get("object") == "error"):
                            raise BackendError(f"{url} reported an error mid-stream: {error_text(event)}")
                        yield event
            except httpx.HTTPError as e:
                raise BackendError(connection_message(e, url)) from None

    # --- streaming with abort -------------------------------------------------------------------------

    def stream(self, prompt: str, params: dict) -> Stream:
        """`generate()`'s events; closing this generator closes the connection and calls the abort endpoint."""
        inner = self.generate(prompt, params)
        finished = False
        try:
            try:
                for event in inner:
                    if isinstance(event, Completion):
                        finished = True
                    yield event
            except BackendError as e:
                raise self.masked(e) from None
        finally:
            inner.close()  # closes the HTTP connection first: most servers stop on disconnect
            if not finished:
                self.abort()

    def generate(self, prompt: str, params: dict) -> Stream:
        raise NotImplementedError

    def abort_body(self) -> dict | None:
        return None

    def abort(self) -> None:
        if not self.abort_path:
            return
        try:
            with self.client(ABORT_TIMEOUT) as client:
                client.post(self.base_url + self.abort_path, json=self.abort_body(), headers=self.headers())
        except (httpx.HTTPError, BackendError):
            pass  # best effort: the connection is closed anyway

    def check(self) -> str:
        names = self.models()
        listed = f"; models: {', '.join(names)}" if names else ""
        return f"connected to {self.base_url}{listed}"


class TextCollector:
    """The text of a stream, bounded, with the first-token clock and client-side stop trimming."""

    def __init__(self, url: str, stop: list[str] | None = None):
        self.url = url
        self.parts: list[str] = []
        self.size = 0
        self.clock = Clock()
        self.stop = [s for s in (stop or []) if s]  # only for servers that return the stop string
        self.held = ""  # text that might be the start of a stop string
        self.trimmed: str | None = None  # the stop string that was cut off client-side

    def add(self, delta: str) -> str:
        """Record `delta`; return the text that can be shown now."""
        if not delta or self.trimmed is not None:
            return ""
        self.clock.tick()
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


def tokens_from_logprobs(entries: list) -> list[dict]:
    """llama.cpp's format (Dec 2024+: token/logprob/top_logprobs or prob/top_probs) and its old one
    (content/probs[tok_str, prob]), and Ollama's, as [{"token", "logprob", "top": [{"token", "logprob"}]}]."""
    import math

    def lp(item: dict) -> float | None:
        if "logprob" in item:
            return item["logprob"]
        if "prob" in item:
            return math.log(item["prob"]) if item["prob"] > 0 else float("-inf")
        return None

    out = []
    for e in entries or []:
        if not isinstance(e, dict):
            continue
        if "probs" in e and "token" not in e:  # before Dec 2024: {"content": "Blue", "probs": [{"tok_str", "prob"}]}
            top = [{"token": p.get("tok_str", ""), "logprob": lp(p)} for p in e.get("probs") or []]
            chosen = next((t["logprob"] for t in top if t["token"] == e.get("content")), None)
            out.append({"token": e.get("content", ""), "logprob": chosen, "top": top})
            continue
        top = e.get("top_logprobs") or e.get("top_probs") or []
        out.append({"token": e.get("token", ""), "logprob": lp(e),
                    "top": [{"token": t.get("token", ""), "logprob": lp(t)} for t in top if isinstance(t, dict)]})
    return out


def tokens_from_openai_logprobs(logprobs) -> list[dict]:
    """OpenAI's legacy shape {tokens, token_logprobs, top_logprobs: [{tok: lp}]}, or llama.cpp's {content: [...]}."""
    if not isinstance(logprobs, dict):
        return []
    if isinstance(logprobs.get("content"), list):
        return tokens_from_logprobs(logprobs["content"])
    tokens = logprobs.get("tokens") or []
    lps = logprobs.get("token_logprobs") or []
    tops = logprobs.get("top_logprobs") or []
    out = []
    for i, tok in enumerate(tokens):
        top = tops[i] if i < len(tops) and isinstance(tops[i], dict) else {}
        out.append({"token": tok, "logprob": lps[i] if i < len(lps) else None,
                    "top": [{"token": t, "logprob": v} for t, v in sorted(top.items(), key=lambda kv: -kv[1])]})
    return out


def read_bounded(response: httpx.Response, url: str) -> None:
    """Read a (non-stream) body, refusing one larger than MAX_BODY_BYTES."""
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BackendError(f"{url} sent a body larger than {MAX_BODY_BYTES:,} bytes; stopped reading: "
                               "is this the right URL?")
        chunks.append(chunk)
    response._content = b"".join(chunks)


def sse_events(lines: Iterator[str]) -> Iterator[str]:
    """Server-sent events: join `data:` lines per event; skip comments and `event:` lines."""
    data: list[str] = []
    for line in lines:
        line = line.rstrip("\r")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
    if data:
        yield "\n".join(data)


def connection_message(exc: httpx.HTTPError, url: str) -> str:
    if isinstance(exc, httpx.ConnectError):
        reason = str(exc)
        if "Name or service not known" in reason or "nodename nor servname" in reason or "getaddrinfo" in reason:
            return f"cannot resolve the host in {url}: check the backend URL for typos"
        return f"cannot connect to {url}: is the server running, and is the URL (host and port) right?"
    if isinstance(exc, httpx.TimeoutException):
        return f"{url} did not answer in time ({type(exc).__name__}): the server may be busy or stuck; raise the timeout or check the server"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the connection to {url} broke off mid-response: {exc}; check the server's log"
    return f"request to {url} failed: {type(exc).__name__}: {exc}"


def error_text(body: object) -> str:
    """The human part of a server's error body, whatever its shape."""
    if isinstance(body, dict):
        err = body.get("error", body.get("detail", body))
        if isinstance(err, dict):
            return str(err.get("message") or err.get("msg") or json.dumps(err))
        if isinstance(err, list) and err and isinstance(err[0], dict):  # FastAPI validation errors
            return "; ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in err)
        return str(err)
    return str(body)


def raise_for_status(response: httpx.Response, url: str) -> None:
    if response.status_code < 400:
        return
    try:
        detail = error_text(response.json())
    except (json.JSONDecodeError, UnicodeDecodeError):
        text = response.text.strip()
        if text.lower().startswith(("<!doctype", "<html")):
            title = text.lower().find("<title>")
            detail = "an HTML page" + (f" ({text[title + 7:text.lower().find('</title>')].strip()[:80]})"
                                        if title >= 0 and "</title>" in text.lower() else "")
        else:
            detail = text[:300] or response.reason_phrase
    if len(detail) > 400:
        detail = detail[:400] + "…"
    hint = ""
    if response.status_code == 404:
        hint = " (is this the right backend type, and is the URL the server's address without an API path?)"
        if "/v1/v1" in url or "/api/api" in url:
            hint = " (the API path is doubled: give the server's address without /v1 or /api)"
    elif response.status_code in (401, 403):
        hint = " (check the API key)"
    raise BackendError(f"{url} answered HTTP {response.status_code}: {detail}{hint}")


def decode_json(response: httpx.Response, url: str) -> object:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        kind = "an HTML page" if response.text.lstrip().lower().startswith(("<!doctype", "<html")) else "something that is not JSON"
        raise BackendError(f"{url} sent {kind} instead of JSON: is this the right URL and backend type?") from None


def stopped_midway(url: str, received: str, marker: str) -> BackendError:
    return BackendError(f"the stream from {url} stopped mid-way ({len(received):,} characters received, no {marker}): "
                        "the server may have crashed, run out of memory or been restarted; check its log")


class Clock:
    """Times a stream: first token and total, in seconds."""

    def __init__(self):
        self.start = time.perf_counter()
        self.first: float | None = None

    def tick(self) -> None:
        if self.first is None:
            self.first = time.perf_counter() - self.start

    def timings(self) -> dict:
        return {"first_token": self.first, "total": time.perf_counter() - self.start}
