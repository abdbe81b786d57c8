"""`webui-legacy`: text-generation-webui's API before Nov 2023. Blocking `POST /api/v1/generate` on
port 5000 (`{"results": [{"text": ...}]}`); streaming over a websocket on another port (5005 by
default, `/api/v1/stream`): send the request JSON as one text frame, receive
`{"event": "text_stream", "text": delta}` frames, then `{"event": "stream_end"}`. No usage and no
finish reason: counts come from `/api/v1/token-count`.

A non-streamed generation uses the blocking call (no websocket needed, as MemGPT's client did); a
stream whose websocket cannot be opened falls back to it, with a note."""

from __future__ import annotations

import json
from typing import Iterator
from urllib.parse import urlsplit

from .base import (CONNECT_TIMEOUT, MAX_BODY_BYTES, Completion, HttpBackend, Stream, Turn,
                   check_allowed, merge, map_params)
from .masking import MASK
from .wire import invalid_note, loads, not_json

NO_FINISH = "the legacy API reports no finish reason: inferred from the token count"


class _Refused(Exception):
    """The websocket could not be opened (nothing listening, or not a websocket there)."""


class WebUILegacy(HttpBackend):
    type = "webui-legacy"
    label = "text-generation-webui legacy API (before Nov 2023)"
    default_url = "http://127.0.0.1:5000"
    completion_path = "/api/v1/generate"
    abort_path = "/api/v1/stop-stream"
    end_marker = "stream_end event"
    params = {
        "max_new_tokens": "max_new_tokens",
        "temperature": "temperature",
        "top_p": "top_p",
        "top_k": "top_k",
        "min_p": "min_p",
        "typical_p": "typical_p",
        "repetition_penalty": "repetition_penalty",
        "presence_penalty": "presence_penalty",
        "frequency_penalty": "frequency_penalty",
        "mirostat_mode": "mirostat_mode",
        "mirostat_tau": "mirostat_tau",
        "mirostat_eta": "mirostat_eta",
        "seed": "seed",
        "stop": "stopping_strings",
        "grammar": "grammar_string",
    }
    caps = {"abort": "close + /api/v1/stop-stream", "usage": "/api/v1/token-count"}

    @property
    def stream_url(self) -> str:
        """The websocket: the URL's host, the streaming port (Settings.legacy_stream_port)."""
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
        url = f"{scheme}://{host}:{self.settings.legacy_stream_port}"
        check_allowed(url)
        return url + "/api/v1/stream"

    def body(self, prompt: str, params: dict) -> dict:
        body = {"prompt": prompt, **map_params(self.params, params)}
        merge(body, self.settings.extra)
        return body

    # --- streaming: the websocket, or the blocking call when it cannot be opened ------------------------

    def stream_record(self, body: dict) -> dict:
        headers = {"Authorization": f"Bearer {MASK}"} if self.settings.api_key else {}
        return {"method": "WEBSOCKET", "url": self.stream_url, "headers": headers, "json": body}

    def open_stream(self, body: dict, turn: Turn) -> Iterator[object]:
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
        from websockets.sync.client import connect

        url, key = turn.url, self.settings.api_key
        headers = {"Authorization": f"Bearer {key}"} if key else None
        try:
            ws = connect(url, open_timeout=min(CONNECT_TIMEOUT, turn.limits.remaining()), additional_headers=headers,
                         max_size=MAX_BODY_BYTES)
        except (InvalidHandshake, InvalidURI) as e:
            raise _Refused(f"{url} refused the websocket ({e})") from None
        except OSError as e:  # refused, unreachable, or no handshake in time (TimeoutError)
            raise _Refused(f"cannot open the websocket {url} ({getattr(e, 'strerror', None) or e})") from None
        with ws:
            ws.send(json.dumps(body))
            while True:
                try:
                    frame = ws.recv(timeout=turn.limits.remaining())
                except TimeoutError:
                    raise turn.limits.error(url) from None
                except ConnectionClosed:
                    return  # without stream_end: the loop says it stopped mid-way
                if not isinstance(frame, str):
                    raise not_json(url, repr(frame), key, what="a frame")
                try:
                    event, repaired = loads(frame)
                except json.JSONDecodeError:
                    raise not_json(url, frame, key, what="a frame") from None
                turn.repaired |= repaired
                yield event
                if isinstance(event, dict) and event.get("event") == "stream_end":
                    return  # the socket loops for more requests: this one is over

    def read_event(self, event: dict, turn: Turn) -> str | None:
        kind = event["event"]
        if kind == "stream_end":
            turn.ended = True
            return ""
        return event["text"] if kind == "text_stream" else None  # None: a frame this API never sends

    def conclude(self, turn: Turn, body: dict) -> None:
        turn.reason = self.finish(turn.usage, body)
        turn.notes.append(NO_FINISH)

    def generate(self, prompt: str, params: dict) -> Stream:
        try:
            yield from super().generate(prompt, params)
        except _Refused as refused:  # raised before anything was streamed
            completion = self.complete(prompt, params)
            completion.notes.insert(0, f"{refused}: used the blocking {completion.request['url']} instead, so the text "
                                       "arrives at once; set the streaming port (--legacy-stream-port) to stream")
            if completion.text:
                yield completion.text
            yield completion

    # --- blocking ---------------------------------------------------------------------------------------

    def complete(self, prompt: str, params: dict) -> Completion:
        """One blocking `POST /api/v1/generate`: the whole text at once, no websocket."""
        body = self.body(prompt, params)
        url = self.base_url + self.completion_path
        limits = self.limits()
        answer, repaired = self.fetch_json("POST", self.completion_path, body, read=_answer)
        text = answer["results"][0]["text"]
        limits.token()
        usage, source = self.count_usage(prompt, text)
        completion = Completion(text=text, finish_reason=self.finish(usage, body), usage=usage, usage_source=source,
                                request=self.record("POST", url, body), response=answer, timings=limits.timings(),
                                notes=[NO_FINISH] + ([invalid_note(url)] if repaired else []))
        return self.masked(completion)

    @staticmethod
    def finish(usage: dict, body: dict) -> str:
        """The server reports no finish reason; its own token count tells a full budget from an early stop."""
        limit, produced = body.get("max_new_tokens"), usage.get("completion_tokens")
        return "length" if limit and produced is not None and produced >= limit else "stop"

    def count_usage(self, prompt: str, text: str) -> tuple[dict, str]:
        counts = [self.post_json("/api/v1/token-count", {"prompt": t}, read=lambda data: data["results"][0].get("tokens"))
                  for t in (prompt, text)]
        return {"prompt_tokens": counts[0], "completion_tokens": counts[1]}, "/api/v1/token-count"

    def model_info(self) -> dict:
        name = self.get_json("/api/v1/model", read=lambda data: data.get("result"))
        return {"name": name, "chat_template": None, "source": "text-generation-webui /api/v1/model (no template endpoint)"}

    def status(self) -> str:
        return f"connected to {self.base_url}; model: {self.model_info()['name']}"


def _answer(data) -> dict:
    """The blocking answer, checked for its shape: {"results": [{"text": str}]}."""
    if not isinstance(data["results"][0]["text"], str):
        raise TypeError("the text is not a string")
    return data
