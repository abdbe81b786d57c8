"""`openai`: any server with the legacy OpenAI completions endpoint, `POST /v1/completions`.

Only the fields the OpenAI spec defines are mapped; samplers it lacks (top_k, min_p, ...) are listed
as ignored in the page, and can still be sent through the extra-fields object.
"""

from __future__ import annotations

from .base import BackendError, Clock, Completion, HttpBackend, MAX_OUTPUT_CHARS, Stream


class OpenAICompletions(HttpBackend):
    type = "openai"
    label = "OpenAI-compatible /v1/completions"
    default_url = "http://127.0.0.1:8000"
    params = {
        "max_new_tokens": "max_tokens",
        "temperature": "temperature",
        "top_p": "top_p",
        "presence_penalty": "presence_penalty",
        "frequency_penalty": "frequency_penalty",
        "seed": "seed",
        "stop": "stop",
    }

    def body(self, prompt: str, params: dict) -> dict:
        body = {"model": self.settings.model or self.default_model(), "prompt": prompt}
        for key, field in self.params.items():
            if key in params:
                body[field] = params[key]
        if body.get("seed", 0) < 0:
            del body["seed"]  # -1 means "random": leave it to the server
        body.update(self.settings.extra)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        return body

    def default_model(self) -> str:
        return "local-model"  # most local servers ignore it; vLLM and others need the real name

    def stream(self, prompt: str, params: dict) -> Stream:
        body = self.body(prompt, params)
        url = self.base_url + "/v1/completions"
        clock = Clock()
        text, finish, usage, last = [], None, {}, None
        size = 0
        for event, _ in self.post_sse("/v1/completions", body):
            last = event
            if event.get("usage"):
                usage = {k: event["usage"].get(k) for k in ("prompt_tokens", "completion_tokens")}
            for choice in event.get("choices") or []:
                delta = choice.get("text") or ""
                if delta:
                    clock.tick()
                    size += len(delta)
                    if size > MAX_OUTPUT_CHARS:
                        raise BackendError(f"{url} sent more than {MAX_OUTPUT_CHARS:,} characters; stopped reading")
                    text.append(delta)
                    yield delta
                finish = choice.get("finish_reason") or finish
        yield Completion(text="".join(text), finish_reason=finish, usage=usage,
                         request=self.record("POST", url, body), response=last, timings=clock.timings())

    def models(self) -> list[str]:
        data = self.get_json("/v1/models")
        return [m.get("id", "") for m in data.get("data", [])] if isinstance(data, dict) else []

    def check(self) -> str:
        names = self.models()
        listed = f"; models: {', '.join(names)}" if names else ""
        return f"connected to {self.base_url}{listed}"
