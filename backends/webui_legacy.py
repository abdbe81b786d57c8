"""`webui-legacy`: text-generation-webui's API before Nov 2023. Blocking `POST /api/v1/generate` on
port 5000; streaming over a websocket on port 5005 (`/api/v1/stream`): send the request JSON as one
text frame, receive `{"event": "text_stream", "text": delta}` frames, then `{"event": "stream_end"}`.
No usage and no finish reason: counts come from `/api/v1/token-count`."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from .base import (BackendError, Completion, HttpBackend, SECRET_MASK, Stream, TextCollector, check_allowed,
                   merge, map_params, stopped_midway)

STREAM_PORT = 5005


class WebUILegacy(HttpBackend):
    type = "webui-legacy"
    label = "text-generation-webui legacy API (before Nov 2023)"
    default_url = "http://127.0.0.1:5000"
    completion_path = "/api/v1/generate"
    abort_path = "/api/v1/stop-stream"
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
        "seed": "seed",
        "stop": "stopping_strings",
        "grammar": "grammar_string",
    }
    caps = {"abort": "close + /api/v1/stop-stream", "usage": "/api/v1/token-count"}

    @property
    def stream_url(self) -> str:
        if self.settings.stream_url:
            url = self.settings.stream_url.rstrip("/")
            if not url.startswith(("ws://", "wss://")):
                raise BackendError(f"the streaming URL '{url}' must start with ws:// or wss://")
        else:
            parts = urlsplit(self.base_url)
            scheme = "wss" if parts.scheme == "https" else "ws"
            url = f"{scheme}://{parts.hostname}:{STREAM_PORT}"
        for suffix in ("/api/v1/stream", "/api"):
            if url.endswith(suffix):
                url = url[: -len(suffix)]
        check_allowed(url)
        return url + "/api/v1/stream"

    def body(self, prompt: str, params: dict) -> dict:
        body = {"prompt": prompt, **map_params(self.params, params)}
        merge(body, self.settings.extra)
        return body

    def generate(self, prompt: str, params: dict) -> Stream:
        from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI
        from websockets.sync.client import connect

        body = self.body(prompt, params)
        url = self.stream_url
        out = TextCollector(url)
        last, ended = None, False
        headers = {"Authorization": f"Bearer {self.settings.api_key}"} if self.settings.api_key else None
        record = {"method": "WEBSOCKET", "url": url,
                  "headers": {"Authorization": f"Bearer {SECRET_MASK}"} if headers else {}, "json": body}
        self.last_request = record
        try:
            with connect(url, open_timeout=min(10.0, self.settings.timeout), additional_headers=headers,
                         max_size=2**24) as ws:
                ws.send(json.dumps(body))
                while True:
                    try:
                        frame = ws.recv(timeout=self.settings.timeout)
                    except TimeoutError:
                        raise BackendError(f"{url} did not answer in time: the server may be busy or stuck; "
                                           "raise the timeout or check the server") from None
                    try:
                        event = json.loads(frame)
                    except (json.JSONDecodeError, TypeError):
                        raise BackendError(f"{url} sent a frame that is not JSON: {str(frame)[:200]!r}") from None
                    last = event
                    if event.get("event") == "text_stream":
                        shown = out.add(event.get("text") or "")
                        if shown:
                            yield shown
                    elif event.get("event") == "stream_end":
                        ended = True
                        break
        except ConnectionClosed:
            pass  # judged below: without stream_end the stream stopped mid-way
        except (InvalidStatus, InvalidURI) as e:
            raise BackendError(f"{url} refused the websocket ({e}): is the legacy API (--api) enabled, and is "
                               "this its streaming port (5005)?") from None
        except OSError as e:
            if "Name or service not known" in str(e) or "getaddrinfo" in str(e):
                raise BackendError(f"cannot resolve the host in {url}: check the backend URL for typos") from None
            raise BackendError(f"cannot connect to {url}: is the server running with --api, and is the streaming "
                               f"port right? ({e.strerror or e})") from None
        if not ended:
            raise stopped_midway(url, out.text, "stream_end event")
        usage = self.count_usage(prompt, out.text)
        # the server reports no finish reason; its own token count tells a full budget from an early stop
        limit = body.get("max_new_tokens")
        finish = "length" if limit and usage["completion_tokens"] is not None and usage["completion_tokens"] >= limit else "stop"
        yield Completion(text=out.text, finish_reason=finish, finish_raw=None, usage=usage,
                         usage_source="/api/v1/token-count", request=record, response=last,
                         timings=out.clock.timings(),
                         notes=["the legacy API reports no finish reason: inferred from the token count"])

    def count_usage(self, prompt: str, text: str) -> dict:
        counts = []
        for t in (prompt, text):
            results = self.post_json("/api/v1/token-count", {"prompt": t}).get("results") or [{}]
            counts.append(results[0].get("tokens"))
        return {"prompt_tokens": counts[0], "completion_tokens": counts[1]}

    def model_info(self) -> dict:
        name = self.get_json("/api/v1/model").get("result")
        return {"name": name, "chat_template": None, "source": "text-generation-webui /api/v1/model (no template endpoint)"}

    def check(self) -> str:
        return f"connected to {self.base_url}; model: {self.model_info()['name']}"
