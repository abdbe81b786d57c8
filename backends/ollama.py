"""`ollama`: `POST /api/generate` with `raw: true` (no template applied), NDJSON stream (Ollama streams
by default), the last object has `"done": true`; models from `/api/tags`, the template from `/api/show`."""

from __future__ import annotations

from .base import (BackendError, Completion, HttpBackend, Stream, TextCollector, merge, map_params,
                   normalize_finish, stopped_midway, tokens_from_logprobs)


class Ollama(HttpBackend):
    type = "ollama"
    label = "Ollama (/api/generate, raw)"
    default_url = "http://127.0.0.1:11434"
    completion_path = "/api/generate"
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

    def generate(self, prompt: str, params: dict) -> Stream:
        body = self.body(prompt, params)
        url = self.base_url + self.completion_path
        out = TextCollector(url)
        self.last_request = self.record("POST", url, body)
        tokens, final = [], None
        for event in self.post_lines(self.completion_path, body, framing="ndjson"):
            shown = out.add(event.get("response") or "")
            if shown:
                yield shown
            tokens.extend(tokens_from_logprobs(event.get("logprobs") or []))
            if event.get("done"):
                final = event
                break
        if final is None:
            raise stopped_midway(url, out.text, '"done": true object')
        raw = final.get("done_reason")
        usage = {"prompt_tokens": final.get("prompt_eval_count"), "completion_tokens": final.get("eval_count")}
        notes = []
        if usage["prompt_tokens"] is None:
            notes.append("Ollama left out prompt_eval_count (the prompt was cached); it has no tokenizer endpoint")
        yield Completion(text=out.text, finish_reason=normalize_finish(raw), finish_raw=raw, usage=usage,
                         usage_source="server", tokens=tokens if self.settings.probabilities > 0 else None,
                         request=self.record("POST", url, body), response=final, timings=out.clock.timings(),
                         notes=notes)

    def models(self) -> list[str]:
        data = self.get_json("/api/tags")
        return [m.get("name") or m.get("model", "") for m in data.get("models", [])] if isinstance(data, dict) else []

    def model_info(self) -> dict:
        name = self.model_name()
        data = self.post_json("/api/show", {"model": name})
        return {"name": name, "chat_template": data.get("template") or None, "source": "ollama (Go template)"}

    def check(self) -> str:
        version = self.get_json("/api/version").get("version", "?")
        names = self.models()
        return f"connected to {self.base_url}: Ollama {version}; models: {', '.join(names) or 'none installed'}"
