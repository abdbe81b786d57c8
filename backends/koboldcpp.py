"""`koboldcpp`: KoboldCpp's Kobold API. Streams over SSE (`event: message`) at
`/api/extra/generate/stream`, with no end marker: the event whose `finish_reason` is neither null nor
the string "null" (builds v1.64-v1.76) is the last, then the connection closes.

KoboldCpp keeps the stop string in the text unless `trim_stop: true` (older builds ignore it), so the
client also cuts the text at the first stop string: raw output stays comparable across backends.
"""

from __future__ import annotations

import uuid

from .base import (BackendError, Completion, HttpBackend, Stream, TextCollector, merge, map_params,
                   normalize_finish, stopped_midway)


class KoboldCpp(HttpBackend):
    type = "koboldcpp"
    label = "KoboldCpp (Kobold API)"
    default_url = "http://127.0.0.1:5001"
    completion_path = "/api/extra/generate/stream"
    abort_path = "/api/extra/abort"
    params = {
        "max_new_tokens": "max_length",
        "temperature": "temperature",
        "top_p": "top_p",
        "top_k": "top_k",
        "min_p": "min_p",
        "typical_p": "typical",
        "repetition_penalty": "rep_pen",
        "presence_penalty": "presence_penalty",
        "seed": "sampler_seed",
        "stop": "stop_sequence",
        "grammar": "grammar",
    }
    caps = {"abort": "close + /api/extra/abort (genkey)", "usage": "/api/extra/tokencount", "tokenize": True,
            "model_template": True}

    def __init__(self, settings):
        super().__init__(settings)
        self.genkey = f"KCPP{uuid.uuid4().hex[:8].upper()}"

    def body(self, prompt: str, params: dict) -> dict:
        body = {"prompt": prompt, **map_params(self.params, params), "trim_stop": True, "genkey": self.genkey}
        merge(body, self.settings.extra)
        return body

    def generate(self, prompt: str, params: dict) -> Stream:
        body = self.body(prompt, params)
        url = self.base_url + self.completion_path
        out = TextCollector(url, stop=body.get("stop_sequence") or [])
        self.last_request = self.record("POST", url, body)
        finish, last = None, None
        for event in self.post_lines(self.completion_path, body):
            last = event
            shown = out.add(event.get("token") or "")
            if shown:
                yield shown
            if event.get("finish_reason") not in (None, "null"):
                finish = event["finish_reason"]  # then EOF
        if finish is None and out.trimmed is None:
            raise stopped_midway(url, out.text, "finish_reason")
        tail = out.flush()
        if tail:
            yield tail
        notes = []
        normalized = normalize_finish(finish)
        if out.trimmed is not None:
            # a custom stop string reports "length" in KoboldCpp's 2024 code; the text says otherwise
            normalized = "stop"
            notes.append(f"the stop string {out.trimmed!r} was cut off client-side (KoboldCpp returns it "
                         "unless trim_stop is honoured)")
        usage = self.count_usage(prompt, out.text)
        yield Completion(text=out.text, finish_reason=normalized, finish_raw=finish, usage=usage,
                         usage_source="/api/extra/tokencount", request=self.record("POST", url, body),
                         response=last, timings=out.clock.timings(), notes=notes)

    def abort_body(self) -> dict:
        return {"genkey": self.genkey}

    def token_ids(self, text: str) -> list[int]:
        data = self.post_json("/api/extra/tokencount", {"prompt": text, "special": True})
        if data.get("value", 0) < 0:
            raise BackendError(f"{self.base_url}/api/extra/tokencount could not count the tokens")
        return data.get("ids") or []

    def count_usage(self, prompt: str, text: str) -> dict:
        counts = [self.post_json("/api/extra/tokencount", {"prompt": t, "special": True}).get("value")
                  for t in (prompt, text)]
        return {"prompt_tokens": counts[0], "completion_tokens": counts[1]}

    def tokenize(self, text: str, add_special: bool = False) -> list[dict]:
        """/api/extra/tokencount counts what the loaded model adds; it has no switch for it."""
        ids = self.token_ids(text)
        pieces: list = []
        try:
            for i in ids[:512]:
                pieces.append(self.post_json("/api/extra/detokenize", {"ids": [i]}).get("result"))
        except BackendError:  # builds before /api/extra/detokenize: ids only
            pieces = []
        return [{"id": i, "piece": pieces[n] if n < len(pieces) else None} for n, i in enumerate(ids)]

    def model_info(self) -> dict:
        name = self.get_json("/api/v1/model").get("result")
        template = None
        try:
            template = self.get_json("/props").get("chat_template") or None  # newer builds only
        except BackendError:
            pass
        return {"name": name, "chat_template": template,
                "source": "KoboldCpp /props" if template else "KoboldCpp /api/v1/model (no template in this build)"}

    def check(self) -> str:
        version = self.get_json("/api/extra/version")
        name = self.get_json("/api/v1/model").get("result")
        return f"connected to {self.base_url}: KoboldCpp {version.get('version', '?')}; model: {name}"
