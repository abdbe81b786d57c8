"""`llamacpp`: llama.cpp's `llama-server`, native API: `POST /completion` (SSE, the last event has
`"stop": true`, no [DONE]), `/tokenize`, `/props`, `/apply-template`, `/health`."""

from __future__ import annotations

import os

from .base import BackendError, HttpBackend, Turn, merge, map_params
from .logprobs import tokens_from_logprobs


def _stop_type(event: dict) -> str | None:
    """`stop_type` (none|eos|limit|word), or the booleans of builds before Dec 2024."""
    if event.get("stop_type"):
        return event["stop_type"]
    for flag, kind in (("stopped_eos", "eos"), ("stopped_word", "word"), ("stopped_limit", "limit")):
        if event.get(flag):
            return kind
    return None


def _piece(token) -> dict:
    """One /tokenize entry ({"id", "piece"} with pieces asked for, else a bare id) as {"id", "piece"}."""
    if not isinstance(token, dict):
        return {"id": token, "piece": None}
    piece = token.get("piece")
    if isinstance(piece, list):  # bytes that are not valid UTF-8 on their own (part of a character)
        try:
            piece = bytes(piece).decode("utf-8")
        except UnicodeDecodeError:
            piece = "".join(f"<0x{b:02X}>" for b in piece)
    return {"id": token.get("id"), "piece": piece}


def _model_info(props: dict) -> dict:
    path = props.get("model_path") or ""
    alias = props.get("model_alias") or ""
    name = alias if alias and alias != path else os.path.basename(path) or alias or None
    return {"name": name, "chat_template": props.get("chat_template") or None, "source": "llama.cpp /props"}


class LlamaCpp(HttpBackend):
    type = "llamacpp"
    label = "llama.cpp llama-server (native /completion)"
    default_url = "http://127.0.0.1:8080"
    completion_path = "/completion"
    end_marker = '"stop": true event'
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
        "mirostat_mode": "mirostat",
        "mirostat_tau": "mirostat_tau",
        "mirostat_eta": "mirostat_eta",
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

    def read_event(self, event: dict, turn: Turn) -> str:
        turn.tokens.extend(tokens_from_logprobs(event.get("completion_probabilities") or []))
        if event.get("stop"):
            turn.final, turn.ended, turn.finish = event, True, _stop_type(event)
            turn.usage = {"prompt_tokens": event.get("tokens_evaluated"), "completion_tokens": event.get("tokens_predicted")}
            turn.usage_source = "server"
        return event["content"]  # every event has it (the final one "")

    def tokenize(self, text: str, add_special: bool = False) -> list[dict]:
        return self.post_json("/tokenize", {"content": text, "add_special": add_special, "parse_special": True,
                                            "with_pieces": True}, read=lambda data: [_piece(t) for t in data.get("tokens") or []])

    def model_info(self) -> dict:
        return self.get_json("/props", read=_model_info)

    def render_chat(self, messages: list[dict], tools: list[dict] | None = None) -> str:
        """`POST /apply-template`: the server's own rendering with the model's chat template (no inference)."""
        body = {"messages": messages, "add_generation_prompt": True, **({"tools": tools} if tools else {})}
        prompt = self.post_json("/apply-template", body, read=lambda data: data.get("prompt"))
        if not isinstance(prompt, str):
            raise BackendError(f"{self.base_url}/apply-template answered without a prompt: is this llama.cpp from "
                               "January 2025 or later?")
        return prompt

    def models(self) -> list[str]:
        return self.get_json("/v1/models", read=lambda data: [m.get("id", "") for m in data.get("data", [])])

    def status(self) -> str:
        self.get_json("/health")
        info = self.model_info()
        return f"connected to {self.base_url}; model: {info['name']}"
