"""Reading what a server sends, bounded, and saying in one sentence what went wrong.

Sizes are checked while reading, chunk by chunk: a line with no end or an endless stream is refused
at the limit, never held whole first. Characters that are not valid (bytes that are not UTF-8, a JSON
escape of a lone surrogate such as \\ud800) become U+FFFD and are reported, never passed on.
"""

from __future__ import annotations

import json
import re
from typing import Iterable, Iterator

import httpx

from .errors import BackendError
from .limits import TimeLimits
from .masking import mask

DONE = object()  # the stream's explicit end (`data: [DONE]`)
PREVIEW_CHARS = 200  # how much of an unexpected body an error quotes
DETAIL_CHARS = 400  # how much of a server's own error message an error quotes
SSE_FIELDS = ("data:", "event:", "id:", "retry:", ":")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def clip(text: str, secret: str, limit: int = PREVIEW_CHARS) -> str:
    """`text` with the key masked first, then cut to `limit` characters."""
    text = mask(text, secret)
    return text if len(text) <= limit else text[:limit] + "…"


# --- characters ------------------------------------------------------------------------------------------

def _replace_surrogates(value):
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_surrogates(v) for v in value]
    return value


def loads(text: str) -> tuple[object, bool]:
    """(the JSON value of `text`, whether lone surrogates in it were replaced with U+FFFD)."""
    value = json.loads(text)
    if not _SURROGATE_ESCAPE.search(text):
        return value, False
    repaired = _replace_surrogates(value)
    return repaired, repaired != value


def decode(raw: bytes) -> tuple[str, bool]:
    """(`raw` as UTF-8 text, whether bytes that are not UTF-8 were replaced with U+FFFD)."""
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), True


def invalid_note(url: str) -> str:
    return (f"{url} sent invalid characters (a lone surrogate such as \\ud800, or bytes that are not UTF-8): "
            "they are shown as U+FFFD")


# --- reading, bounded --------------------------------------------------------------------------------------

def read_body(chunks: Iterable[bytes], url: str, limits: TimeLimits, max_bytes: int) -> bytes:
    """A whole (non-stream) body, refused once it passes `max_bytes` or a time limit."""
    body = bytearray()
    for chunk in chunks:
        limits.check(url)
        body += chunk
        if len(body) > max_bytes:
            raise BackendError(f"{url} sent a body larger than {max_bytes:,} bytes; stopped reading: is this the right URL?")
    if limits.expired:
        raise limits.error(url)
    return bytes(body)


def lines(chunks: Iterable[bytes], url: str, limits: TimeLimits, max_line: int, max_chars: int) -> Iterator[bytes]:
    """The lines of a stream (without their end), checking the limits after every chunk received.

    A stream's bytes are capped at 4x `max_chars` (the output limit; JSON framing surrounds each token)."""
    buffer, total = bytearray(), 0
    for chunk in chunks:
        limits.check(url)
        start = chunk.find(b"\n")
        if start < 0:
            buffer += chunk
        else:
            buffer += chunk[:start]
            yield bytes(buffer)
            parts = chunk[start + 1:].split(b"\n")
            yield from parts[:-1]
            buffer = bytearray(parts[-1])
        if len(buffer) > max_line:
            raise BackendError(f"{url} sent a line longer than {max_line:,} bytes without a line end; stopped "
                               "reading: is this the right URL and backend type?")
        total += len(chunk)
        if total > 4 * max_chars:
            raise BackendError(f"{url} sent more than {max_chars:,} characters; stopped reading")
    if limits.expired:  # the watchdog shut the connection: that is why it ended
        raise limits.error(url)
    if buffer:
        yield bytes(buffer)


def sse_events(texts: Iterator[str], url: str = "", secret: str = "") -> Iterator[str]:
    """Server-sent events: the `data:` lines of each event joined; comments, `event:`, `id:` and `retry:` skipped.

    Before the first event, a line that is not an SSE field means the body is not an event stream at all."""
    data: list[str] = []
    started = False
    for line in texts:
        line = line.rstrip("\r")
        if not line:
            if data:
                started = True
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
        elif not started and not line.startswith(SSE_FIELDS):
            raise not_a_stream(url, line, secret)
    if data:
        yield "\n".join(data)


# --- wording ---------------------------------------------------------------------------------------------

def _html_title(text: str) -> str:
    lower = text.lower()
    at, end = lower.find("<title>"), lower.find("</title>")
    return f" ({text[at + 7:end].strip()[:80]})" if 0 <= at < end else ""


def is_html(text: str) -> bool:
    return text.lstrip().lower().startswith(("<!doctype", "<html"))


def not_a_stream(url: str, text: str, secret: str) -> BackendError:
    if is_html(text):
        return BackendError(f"{url} sent an HTML page instead of a stream{_html_title(text)}: is this the right URL "
                            "and backend type?")
    return BackendError(f"{url} sent something that is not an event stream ({clip(text, secret)!r}): is this the "
                        "right URL and backend type?")


def not_json(url: str, text: str, secret: str, what: str = "a stream event") -> BackendError:
    if is_html(text):
        instead = "a stream" if what == "a stream event" else "JSON"
        return BackendError(f"{url} sent an HTML page instead of {instead}{_html_title(text)}: is this the right URL "
                            "and backend type?")
    return BackendError(f"{url} sent {what} that is not JSON ({clip(text, secret)!r}): is this the right URL and "
                        "backend type?")


def misshapen(url: str, server: str, data: object, secret: str, what: str = "a stream event") -> BackendError:
    """A JSON value in a shape the server type never sends."""
    text = json.dumps(data, ensure_ascii=False) if not isinstance(data, str) else data
    return BackendError(f"{url} sent {what} that {server} does not send ({clip(text, secret)}): is the backend "
                        "type right?")


def decode_json(raw: bytes, url: str, secret: str) -> tuple[object, bool]:
    """(the JSON answer in `raw`, whether invalid characters in it were replaced)."""
    if not raw.strip():  # e.g. text-generation-webui's blocking API, which sends its headers before generating
        raise BackendError(f"the answer from {url} stopped mid-way (an empty body): the server may have crashed, "
                           "run out of memory or been restarted; check its log")
    text, invalid = decode(raw)
    try:
        value, repaired = loads(text)
    except json.JSONDecodeError:
        raise not_json(url, text, secret, what="an answer") from None
    return value, invalid or repaired


def stopped_midway(url: str, received: str, marker: str) -> BackendError:
    return BackendError(f"the stream from {url} stopped mid-way ({len(received):,} characters received, no {marker}): "
                        "the server may have crashed, run out of memory or been restarted; check its log")


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
            return "; ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in err if isinstance(e, dict))
        return str(err)
    return str(body)


class StatusError(BackendError):
    """The server answered a redirect or an error status."""


def status_error(response: httpx.Response, raw: bytes, url: str, secret: str) -> StatusError:
    """The sentence for a redirect or an error status, with the server's own message (key masked, then cut)."""
    status = response.status_code
    if status < 400:
        location = response.headers.get("location")
        where = f"a redirect to {clip(location, secret)}" if location else "a redirect with no address"
        return StatusError(f"{url} answered HTTP {status}, {where}: redirects are not followed (the request and its "
                            "key go only where you said); if that is the server, give its address as the backend URL")
    text, _ = decode(raw)
    try:
        detail = error_text(loads(text)[0])
    except json.JSONDecodeError:
        text = text.strip()
        detail = f"an HTML page{_html_title(text)}" if is_html(text) else (text or response.reason_phrase)
    detail = clip(detail, secret, DETAIL_CHARS)
    hint = ""
    if status == 404:
        hint = " (is this the right backend type, and is the URL the server's address without an API path?)"
        if "/v1/v1" in url or "/api/api" in url:
            hint = " (the API path is doubled: give the server's address without /v1 or /api)"
    elif status == 401 or (status == 403 and secret):
        hint = " (check the API key)"
    elif status == 403:
        hint = " (the server, or a proxy in front of it, refuses the request; no API key was sent)"
    return StatusError(f"{url} answered HTTP {status}: {detail}{hint}")
