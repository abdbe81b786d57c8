"""`llamacpp`: llama.cpp's `llama-server`, native API: `POST /completion` (SSE, the last event has
`"stop": true`, no [DONE]), `/tokenize`, `/props`, `/apply-template`, `/health`."""

from __future__ import annotations

import os

from .base import (BackendError, Completion, HttpBackend, Stream, TextCollector, merge, map_params, normalize_finish,
                   stopped_midway, tokens_from_logprobs)


def _stop_type(event: dict) -> str | None:
    """`stop_type` (none|eos|limit|word), or the booleans of builds before Dec 2024."""
    if event.get("stop_type"):
        return event["stop_type"]
    for flag, kind in (("stopped_eos", "eos"), ("stopped_word", "word"), ("stopped_limit", "limit")):
        if event.get(flag):
            return kind
    return None


class LlamaCpp(HttpBackend):
    type = "llamacpp"
    label = "llama.cpp llama-server (native /completion)"
    default_url = "http://127.0.0.1:8080"
    completion_path = "/completion"
    params = {
        "max_new_tokens": "n_predict",
        "temperature": "temperature",
        "top_p": "top_p",
        "top_k": "top_k",
        "min_p": "min_p",
        "typical_p": "typical_p",
        "repetition_penalty": "repeat_penalty",
        "presence_penalty": "presence_penalty",
        "frequency_penalty": "frequency_penalty",
        "seed": "seed",
        "stop": "stop",
        "grammar": "grammar",
        "json_schema": "json_schema",
    }
    caps = {"usage": "server (tokens_evaluated, tokens_predicted)", "probabilities": True, "tokenize": True,
            "model_template": True, "server_render": "/apply-template", "model_list": True}

    def body(self, prompt: str, params: dict) -> dict:
        body = {"prompt": prompt, **map_params(self.params, params)}
        if isinstance(body.get("stop"), str):
            body["stop"] = [body["stop"]]  # /completion reads only an array
        if self.settings.probabilities > 0:
            body["n_probs"] = self.settings.probabilities
        merge(body, self.settings.extra)
        body["stream"] = True
        return body

    def generate(self, prompt: str, params: dict) -> Stream:
        body = self.body(prompt, params)
        url = self.base_url + self.completion_path
        out = TextCollector(url)
        self.last_request = self.record("POST", url, body)
        tokens, final = [], None
        for event in self.post_lines(self.completion_path, body):
            shown = out.add(event.get("content") or "")
            if shown:
                yield shown
            tokens.extend(tokens_from_logprobs(event.get("completion_probabilities") or []))
            if event.get("stop"):
                final = event
                break
        if final is None:
            raise stopped_midway(url, out.text, '"stop": true event')
        raw = _stop_type(final)
        usage = {"prompt_tokens": final.get("tokens_evaluated"), "completion_tokens": final.get("tokens_predicted")}
        yield Completion(text=out.text, finish_reason=normalize_finish(raw), finish_raw=raw, usage=usage,
                         usage_source="server", tokens=tokens if self.settings.probabilities > 0 else None,
                         request=self.record("POST", url, body), response=final, timings=out.clock.timings())

    def tokenize(self, text: str, add_special: bool = False) -> list[dict]:
        data = self.post_json("/tokenize", {"content": text, "add_special": add_special, "parse_special": True,
                                            "with_pieces": True})
        out = []
        for t in data.get("tokens") or []:
            if isinstance(t, dict):
                piece = t.get("piece")
                if isinstance(piece, list):  # bytes that are not valid UTF-8 on their own (part of a character)
                    try:
                        piece = bytes(piece).decode("utf-8")
                    except UnicodeDecodeError:
                        piece = "".join(f"<0x{b:02X}>" for b in piece)
                out.append({"id": t.get("id"), "piece": piece})
            else:
                out.append({"id": t, "piece": None})
        return out

    def props(self) -> dict:
        data = self.get_json("/props")
        return data if isinstance(data, dict) else {}

    def model_info(self) -> dict:
        props = self.props()
        path = props.get("model_path") or ""
        alias = props.get("model_alias") or ""
        name = alias if alias and alias != path else os.path.basename(path) or alias or None
        return {"name": name, "chat_template": props.get("chat_template") or None, "source": "llama.cpp /props"}

    def render_chat(self, messages: list[dict], tools: list[dict] | None = None) -> str:
        """`POST /apply-template`: the server's own rendering with the model's chat template (no inference)."""
        body = {"messages": messages, "add_generation_prompt": True, **({"tools": tools} if tools else {})}
        data = self.post_json("/apply-template", body)
        if not isinstance(data, dict) or not isinstance(data.get("prompt"), str):
            raise BackendError(f"{self.base_url}/apply-template answered without a prompt: is this llama.cpp from "
                               "January 2025 or later?")
        return data["prompt"]

    def models(self) -> list[str]:
        data = self.get_json("/v1/models")
        return [m.get("id", "") for m in data.get("data", [])] if isinstance(data, dict) else []

    def check(self) -> str:
        self.get_json("/health")
        info = self.model_info()
        return f"connected to {self.base_url}; model: {info['name']}"
