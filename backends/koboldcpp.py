"""`koboldcpp`: KoboldCpp's Kobold API. Streams over SSE (`event: message`) at
`/api/extra/generate/stream`, with no end marker: the event whose `finish_reason` is neither null nor
the string "null" (builds v1.64-v1.76) is the last, then the connection closes.

KoboldCpp keeps the stop string in the text unless `trim_stop: true` (older builds ignore it), so the
client also cuts the text at the first stop string: raw output stays comparable across backends.
"""

from __future__ import annotations

import uuid

from .base import BackendError, HttpBackend, Turn, merge, map_params


class KoboldCpp(HttpBackend):
    type = "koboldcpp"
    label = "KoboldCpp (Kobold API)"
    default_url = "http://127.0.0.1:5001"
    completion_path = "/api/extra/generate/stream"
    abort_path = "/api/extra/abort"
    end_marker = "finish_reason"
    params = {
        "max_new_tokens": "max_length",
        "temperature": "temperature",
        "top_p": "top_p",
        "top_k": "top_k",
        "min_p": "min_p",
        "typical_p": "typical",
        "repetition_penalty": "rep_pen",
        "presence_penalty": "presence_penalty",
        "mirostat_mode": "mirostat",
        "mirostat_tau": "mirostat_tau",
        "mirostat_eta": "mirostat_eta",
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

    def client_stop(self, body: dict) -> list[str]:
        return body.get("stop_sequence") or []

    def read_event(self, event: dict, turn: Turn) -> str:
        if event.get("finish_reason") not in (None, "null"):
            turn.finish, turn.ended = event["finish_reason"], True  # then EOF
        return event["token"]  # every event has it (a separate final one "")

    def conclude(self, turn: Turn, body: dict) -> None:
        if turn.text.trimmed is not None:
            # a custom stop string reports "length" in KoboldCpp's 2024 code; the text says otherwise
            turn.reason = "stop"
            turn.notes.append(f"the stop string {turn.text.trimmed!r} was cut off client-side (KoboldCpp returns it "
                              "unless trim_stop is honoured)")

    def abort_body(self) -> dict:
        return {"genkey": self.genkey}

    def _count(self, text: str) -> dict:
        data = self.post_json("/api/extra/tokencount", {"prompt": text, "special": True},
                              read=lambda data: {"value": data.get("value", 0), "ids": list(data.get("ids") or [])})
        if not isinstance(data["value"], int) or data["value"] < 0:
            raise BackendError(f"{self.base_url}/api/extra/tokencount could not count the tokens")
        return data

    def count_usage(self, prompt: str, text: str) -> tuple[dict, str]:
        counts = [self._count(t)["value"] for t in (prompt, text)]
        return {"prompt_tokens": counts[0], "completion_tokens": counts[1]}, "/api/extra/tokencount"

    def tokenize(self, text: str, add_special: bool = False) -> list[dict]:
        """/api/extra/tokencount counts what the loaded model adds; it has no switch for it."""
        ids = self._count(text)["ids"]
        pieces: list = []
        try:
            for i in ids[:512]:
                pieces.append(self.post_json("/api/extra/detokenize", {"ids": [i]}, read=lambda data: data.get("result")))
        except BackendError:  # builds before /api/extra/detokenize: ids only
            pieces = []
        return [{"id": i, "piece": pieces[n] if n < len(pieces) else None} for n, i in enumerate(ids)]

    def model_name_on_server(self) -> str:
        return self.get_json("/api/v1/model", read=lambda data: data.get("result"))

    def model_info(self) -> dict:
        name = self.model_name_on_server()
        template = None
        try:
            template = self.get_json("/props", read=lambda data: data.get("chat_template") or None)  # newer builds only
        except BackendError:
            pass
        return {"name": name, "chat_template": template,
                "source": "KoboldCpp /props" if template else "KoboldCpp /api/v1/model (no template in this build)"}

    def status(self) -> str:
        version = self.get_json("/api/extra/version", read=lambda data: data.get("version", "?"))
        return f"connected to {self.base_url}: KoboldCpp {version}; model: {self.model_name_on_server()}"
