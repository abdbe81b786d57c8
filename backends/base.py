"""What every backend shares: the Completion record, the error type, and the HTTP plumbing.

A backend translates; everything else (timeouts, error wording, recording the exact request with
secrets masked, SSE framing) lives here once.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Iterator

import httpx

MAX_OUTPUT_CHARS = 4_000_000  # a runaway server cannot fill the app's memory
SECRET_MASK = "***"


class BackendError(Exception):
    """One clear sentence for the user: what failed, where, and what to check."""


@dataclass
class Completion:
    text: str
    finish_reason: str | None = None  # "stop" (end of sequence or stop string), "length", "aborted"
    usage: dict = field(default_factory=dict)  # prompt_tokens, completion_tokens as the server counted them
    request: dict = field(default_factory=dict)  # the exact call: method, url, headers (secrets masked), json
    response: object = None  # the server's last raw response body (or final stream event)
    timings: dict = field(default_factory=dict)  # seconds: first_token, total

    def to_dict(self) -> dict:
        return {"text": self.text, "finish_reason": self.finish_reason, "usage": self.usage,
                "request": self.request, "response": self.response, "timings": self.timings}


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


class Backend:
    """Base of every backend type. Subclasses set `type`, `label`, `params` and implement `stream`."""

    type: str = ""
    label: str = ""
    default_url: str = ""
    # common sampling key -> this backend's field name; keys not listed are ignored by the server
    params: dict[str, str] = {}

    def __init__(self, settings: Settings):
        self.settings = settings

    @classmethod
    def ignored(cls, keys) -> list[str]:
        return [k for k in keys if k not in cls.params]

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


class HttpBackend(Backend):
    """A backend reached over HTTP; `transport` lets tests swap the network for a handler."""

    transport: httpx.BaseTransport | None = None

    @property
    def base_url(self) -> str:
        url = (self.settings.url or self.default_url).strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise BackendError(f"the backend URL '{url}' must start with http:// or https://")
        # users paste the URL with the API suffix; it is understood and never doubled
        for suffix in ("/v1", "/api"):
            while url.endswith(suffix):
                url = url[: -len(suffix)]
        return url

    def headers(self) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.settings.api_key:
            headers["Authorization"] = f"Bearer {self.settings.api_key}"
        return headers

    def record(self, method: str, url: str, body: dict | None) -> dict:
        headers = {k: (f"Bearer {SECRET_MASK}" if k == "Authorization" else v) for k, v in self.headers().items()}
        return {"method": method, "url": url, "headers": headers, "json": body}

    def client(self) -> httpx.Client:
        timeout = httpx.Timeout(self.settings.timeout, connect=min(10.0, self.settings.timeout))
        return httpx.Client(timeout=timeout, transport=self.transport, follow_redirects=False)

    def get_json(self, path: str) -> object:
        url = self.base_url + path
        with self.client() as client:
            try:
                response = client.get(url, headers=self.headers())
            except httpx.HTTPError as e:
                raise BackendError(connection_message(e, url)) from None
            raise_for_status(response, url)
            return decode_json(response, url)

    def post_sse(self, path: str, body: dict) -> Iterator[tuple[dict, "httpx.Response"]]:
        """POST `body` and yield each SSE `data:` event decoded as JSON, until [DONE] or EOF."""
        url = self.base_url + path
        with self.client() as client:
            try:
                with client.stream("POST", url, json=body, headers=self.headers()) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise_for_status(response, url)
                    for data in sse_events(response.iter_lines()):
                        if data == "[DONE]":
                            return
                        try:
                            event = json.loads(data)
                        except json.JSONDecodeError:
                            raise BackendError(f"{url} sent a stream event that is not JSON: {data[:200]!r}") from None
                        if isinstance(event, dict) and event.get("error"):
                            raise BackendError(f"{url} reported an error mid-stream: {error_text(event)}")
                        yield event, response
            except httpx.HTTPError as e:
                raise BackendError(connection_message(e, url)) from None


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
        detail = response.text[:300].strip() or response.reason_phrase
    if len(detail) > 400:
        detail = detail[:400] + "…"
    hint = ""
    if response.status_code == 404:
        hint = " (is this the right backend type, and is the URL the server's address without an API path?)"
    elif response.status_code in (401, 403):
        hint = " (check the API key)"
    raise BackendError(f"{url} answered HTTP {response.status_code}: {detail}{hint}")


def decode_json(response: httpx.Response, url: str) -> object:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        kind = "an HTML page" if response.text.lstrip().lower().startswith(("<!doctype", "<html")) else "something that is not JSON"
        raise BackendError(f"{url} sent {kind} instead of JSON: is this the right URL and backend type?") from None


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
