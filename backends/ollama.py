"""`ollama`: `POST /api/generate` with `raw: true` (no template applied), NDJSON stream (Ollama streams
by default), the last object has `"done": true`; models from `/api/tags`, the template from `/api/show`."""

from __future__ import annotations

from .base import BackendError, HttpBackend, Turn, merge, map_params
from .logprobs import tokens_from_logprobs


class Ollama(HttpBackend):
    type = "ollama"
    label = "Ollama (/api/generate, raw)"
    default_url = "http://127.0.0.1:11434"
    completion_path = "/api/generate"
    framing = "ndjson"
    end_marker = '"done": true object'
    params = {
        "max_new_tokens": "options.num_predict",
        "temperature": "options.temperature",
        "top_p": "options.top_p",
        "top_k": "options.top_k",
        "min_p": "options.min_p",
        "typical_p": "options.typical_p",
        "repetition_penalty": "options.repeat_penalty",
        "presence_penalty": "options.presence_penalty",
        "frequency_penalty": "options.frequency_penalty",
        # read by Ollama before v0.6.9; later builds log unknown options and ignore them
        "mirostat_mode": "options.mirostat",
        "mirostat_tau": "options.mirostat_tau",
        "mirostat_eta": "options.mirostat_eta",
        "seed": "options.seed",
        "stop": "options.stop",
        "json_schema": "format",
    }
    caps = {"usage": "server (prompt_eval_count, eval_count)", "probabilities": True, "model_template": True,
            "model_list": True}

    def model_name(self) -> str:
        if self.settings.model:
            return self.settings.model
        names = self.models()
        if len(names) == 1:
            return names[0]
        if not names:
            raise BackendError(f"{self.base_url} has no models installed: run 'ollama pull NAME' first")
        raise BackendError(f"{self.base_url} has several models ({', '.join(names[:10])}): choose one in the model field")

    def body(self, prompt: str, params: dict) -> dict:
        body = {"model": self.model_name(), "prompt": prompt, "raw": True, **map_params(self.params, params)}
        options = body.get("options", {})
        if options.get("seed", 0) < 0:
            del options["seed"]  # -1 means random: Ollama's default
        if self.settings.probabilities > 0:
            body["logprobs"] = True
            body["top_logprobs"] = min(self.settings.probabilities, 20)
        merge(body, self.settings.extra)
        body["stream"] = True
        return body

    def read_event(self, event: dict, turn: Turn) -> str:
        turn.tokens.extend(tokens_from_logprobs(event.get("logprobs") or []))
        if event.get("done"):
            turn.final, turn.ended, turn.finish = event, True, event.get("done_reason")
            turn.usage = {"prompt_tokens": event.get("prompt_eval_count"), "completion_tokens": event.get("eval_count")}
            turn.usage_source = "server"
        return event["response"]  # every object has it (the final one "")

    def conclude(self, turn: Turn, body: dict) -> None:
        if turn.usage.get("prompt_tokens") is None:
            turn.notes.append("Ollama left out prompt_eval_count (the prompt was cached); it has no tokenizer endpoint")

    def models(self) -> list[str]:
        return self.get_json("/api/tags", read=lambda data: [m.get("name") or m.get("model", "") for m in data.get("models", [])])

    def model_info(self) -> dict:
        name = self.model_name()
        template = self.post_json("/api/show", {"model": name}, read=lambda data: data.get("template") or None)
        return {"name": name, "chat_template": template, "source": "ollama (Go template)"}

    def status(self) -> str:
        version = self.get_json("/api/version", read=lambda data: data.get("version", "?"))
        names = self.models()
        return f"connected to {self.base_url}: Ollama {version}; models: {', '.join(names) or 'none installed'}"
