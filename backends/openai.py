"""The OpenAI-completions family: `POST /v1/completions`, SSE, `data: [DONE]` (or EOF, for old servers).

`openai` maps only the fields the OpenAI spec defines; `webui`, `vllm` and `lmstudio` add their own
sampling fields, tokenizers, constraints and abort endpoints. Samplers a type lacks are listed as
ignored in the page and can still be sent through the extra-fields object.
"""

from __future__ import annotations

from .base import BackendError, HttpBackend, Turn, merge, map_params
from .logprobs import tokens_from_openai_logprobs

OPENAI_PARAMS = {
    "max_new_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "seed": "seed",
    "stop": "stop",
}


class OpenAICompletions(HttpBackend):
    type = "openai"
    label = "OpenAI-compatible /v1/completions"
    default_url = "http://127.0.0.1:8000"
    completion_path = "/v1/completions"
    params = OPENAI_PARAMS
    caps = {"usage": "server (usage)", "probabilities": True, "model_list": True}
    needs_model = False  # vLLM needs the served name; most others accept anything
    end_marker = "finish_reason or [DONE]"

    def body(self, prompt: str, params: dict) -> dict:
        body = {"model": self.model_name(), "prompt": prompt, **map_params(self.params, params)}
        if body.get("seed", 0) < 0:
            del body["seed"]  # -1 means "random": leave it to the server
        if self.settings.probabilities > 0:
            body["logprobs"] = self.settings.probabilities
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}  # the usage chunk before [DONE]
        merge(body, self.settings.extra)
        body["stream"] = True  # the client reads a stream, whatever the extra fields say
        return body

    def model_name(self) -> str:
        if self.settings.model:
            return self.settings.model
        if self.needs_model:
            return self.only_model()
        return "local-model"  # most local servers ignore it

    def only_model(self) -> str:
        names = self.models()
        if len(names) == 1:
            return names[0]
        if not names:
            raise BackendError(f"{self.base_url} lists no models: load one on the server, or set the model name")
        raise BackendError(f"{self.base_url} serves several models ({', '.join(names[:10])}): choose one in the model field")

    def read_event(self, event: dict, turn: Turn) -> str:
        if event.get("usage"):
            turn.usage = {k: event["usage"].get(k) for k in ("prompt_tokens", "completion_tokens")}
            turn.usage_source = "server"
        text = ""
        for choice in event["choices"] or []:  # every chunk has it (the usage chunk [])
            text += choice.get("text") or ""
            if choice.get("logprobs"):
                turn.tokens.extend(tokens_from_openai_logprobs(choice["logprobs"]))
            if choice.get("finish_reason") not in (None, "null"):
                turn.finish, turn.ended = choice["finish_reason"], True
        return text

    def conclude(self, turn: Turn, body: dict) -> None:
        if not turn.ended:
            turn.notes.append(f"{turn.url} ended the stream with [DONE] but no finish_reason: the generation may have "
                              "been interrupted (llama_cpp.server interrupts a stream when another request arrives)")

    def models(self) -> list[str]:
        return self.get_json("/v1/models", read=lambda data: [m.get("id", "") for m in data.get("data", [])])


class LMStudio(OpenAICompletions):
    """LM Studio's raw-prompt endpoint: OpenAI fields plus its documented top_k and repeat_penalty."""

    type = "lmstudio"
    label = "LM Studio /v1/completions"
    default_url = "http://127.0.0.1:1234"
    params = {**OPENAI_PARAMS, "top_k": "top_k", "repetition_penalty": "repeat_penalty"}


class VLLM(OpenAICompletions):
    """vLLM: its sampling extras, structured outputs, `/tokenize`, and a model name it checks."""

    type = "vllm"
    label = "vLLM /v1/completions"
    default_url = "http://127.0.0.1:8000"
    needs_model = True
    params = {**OPENAI_PARAMS, "top_k": "top_k", "min_p": "min_p", "repetition_penalty": "repetition_penalty",
              "grammar": "structured_outputs.grammar", "json_schema": "structured_outputs.json"}
    caps = {**OpenAICompletions.caps, "usage": "server (usage); else /tokenize", "tokenize": True,
            "server_render": "/tokenize with messages, then /detokenize"}

    def body(self, prompt: str, params: dict) -> dict:
        body = super().body(prompt, params)
        so = body.get("structured_outputs") or {}
        if "grammar" in so and "json" in so:  # only one constraint at a time: the JSON schema wins
            del so["grammar"]
        return body

    def tokenize(self, text: str, add_special: bool = False) -> list[dict]:
        def pieces(data: dict) -> list[dict]:
            ids = list(data.get("tokens") or [])
            strs = list(data.get("token_strs") or [None] * len(ids))
            return [{"id": i, "piece": p} for i, p in zip(ids, strs, strict=False)]

        return self.post_json("/tokenize", {"model": self.model_name(), "prompt": text, "add_special_tokens": add_special,
                                            "return_token_strs": True}, read=pieces)

    def render_chat(self, messages: list[dict], tools: list[dict] | None = None) -> str:
        """`POST /tokenize` in its chat form (the server's template, no inference), then `/detokenize` for the text."""
        model = self.model_name()
        body = {"model": model, "messages": messages, "add_generation_prompt": True, **({"tools": tools} if tools else {})}
        ids = self.post_json("/tokenize", body, read=lambda data: list(data["tokens"]))
        return self.post_json("/detokenize", {"model": model, "tokens": ids}, read=lambda data: str(data.get("prompt") or ""))

    def count_usage(self, prompt: str, text: str) -> tuple[dict, str]:
        model = self.model_name()
        counts = [self.post_json("/tokenize", {"model": model, "prompt": t, "add_special_tokens": add},
                                 read=lambda data: data.get("count")) for t, add in ((prompt, True), (text, False))]
        return {"prompt_tokens": counts[0], "completion_tokens": counts[1]}, "/tokenize"


class WebUI(OpenAICompletions):
    """text-generation-webui's OpenAI-compatible API: its extra samplers, grammar_string, internal endpoints."""

    type = "webui"
    label = "text-generation-webui (OpenAI API)"
    default_url = "http://127.0.0.1:5000"
    abort_path = "/v1/internal/stop-generation"
    params = {**OPENAI_PARAMS, "top_k": "top_k", "min_p": "min_p", "typical_p": "typical_p",
              "repetition_penalty": "repetition_penalty", "mirostat_mode": "mirostat_mode",
              "mirostat_tau": "mirostat_tau", "mirostat_eta": "mirostat_eta", "grammar": "grammar_string"}
    caps = {**OpenAICompletions.caps, "abort": "close + /v1/internal/stop-generation",
            "usage": "server (usage); else /v1/internal/token-count", "tokenize": True, "model_list": False}

    def count_usage(self, prompt: str, text: str) -> tuple[dict, str]:
        counts = [self.post_json("/v1/internal/token-count", {"text": t}, read=lambda data: data.get("length"))
                  for t in (prompt, text)]
        return {"prompt_tokens": counts[0], "completion_tokens": counts[1]}, "/v1/internal/token-count"

    def tokenize(self, text: str, add_special: bool = False) -> list[dict]:
        """/v1/internal/encode adds what the loaded model adds; it has no switch for it."""
        ids = self.post_json("/v1/internal/encode", {"text": text}, read=lambda data: list(data.get("tokens") or []))
        pieces = [self.post_json("/v1/internal/decode", {"tokens": [i]}, read=lambda data: data.get("text"))
                  for i in ids[:512]]
        return [{"id": i, "piece": pieces[n] if n < len(pieces) else None} for n, i in enumerate(ids)]

    def render_chat(self, messages: list[dict], tools: list[dict] | None = None) -> str:
        raise BackendError("text-generation-webui's API has no endpoint that renders a conversation without generating: "
                           "compare with the model's template instead (Backend: Server's chat template)")

    def model_info(self) -> dict:
        name = self.get_json("/v1/internal/model/info", read=lambda data: data.get("model_name"))
        return {"name": name, "chat_template": None,
                "source": "text-generation-webui /v1/internal/model/info (no template endpoint)"}

    def status(self) -> str:
        name = self.model_info()["name"]
        return f"connected to {self.base_url}; model: {name or 'none loaded'}"
