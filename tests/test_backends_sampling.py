"""Every sampling control, for every backend type, either reaches the request the server receives (or the
embedded model's create_completion call) or is named as ignored: none is silently dropped."""

from __future__ import annotations

import pytest

import backends
import presets
from backends import Settings
from tests.fakes import fake_server

GBNF = 'root ::= "yes" | "no"'
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string", "maxLength": 3}}, "required": ["answer"]}
DISTINCT = {"max_new_tokens": 7, "temperature": 0.37, "top_p": 0.83, "top_k": 17, "min_p": 0.07, "typical_p": 0.91,
            "repetition_penalty": 1.13, "presence_penalty": 0.21, "frequency_penalty": 0.33, "mirostat_mode": 2,
            "mirostat_tau": 4.5, "mirostat_eta": 0.15, "seed": 4242, "stop": ["<|stop-7|>"], "grammar": GBNF,
            "json_schema": SCHEMA}
# the wire names of the Mirostat controls, from each server's documentation (None: the server has none)
MIROSTAT = {
    "llamacpp": ("mirostat", "mirostat_tau", "mirostat_eta"),
    "koboldcpp": ("mirostat", "mirostat_tau", "mirostat_eta"),
    "ollama": ("options.mirostat", "options.mirostat_tau", "options.mirostat_eta"),
    "webui": ("mirostat_mode", "mirostat_tau", "mirostat_eta"),
    "webui-legacy": ("mirostat_mode", "mirostat_tau", "mirostat_eta"),
    "embedded": ("mirostat_mode", "mirostat_tau", "mirostat_eta"),
    "openai": None, "vllm": None, "lmstudio": None,
}


def test_the_distinct_values_cover_every_control():
    assert set(DISTINCT) == set(presets.KEYS) and set(MIROSTAT) == set(backends.TYPES)


def _values(body) -> list:
    """Every value in a request body, nested ones included."""
    if isinstance(body, dict):
        return [body] + [v for value in body.values() for v in _values(value)]
    return [body]


def _at(body: dict, dotted: str):
    for part in dotted.split("."):
        body = body[part]
    return body


def _sent(kind: str, params: dict, monkeypatch) -> dict:
    """The request body (embedded: create_completion's arguments) for one generation with `params`."""
    if kind == "embedded":
        from llama_cpp import Llama

        calls = []
        real = Llama.create_completion

        def recording(self, *args, **kwargs):
            calls.append(kwargs)
            return real(self, *args, **kwargs)

        monkeypatch.setattr(Llama, "create_completion", recording)
        done = backends.create("embedded", Settings()).complete("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", params)
        (call,) = calls
        if "grammar" in call:  # compiled at call time from the recorded constraint
            assert type(call["grammar"]).__name__ == "LlamaGrammar"
            call = {**call, "grammar": done.request["json"].get("grammar", done.request["json"].get("json_schema"))}
        return call
    model = {"vllm": "Qwen/Qwen2.5-7B-Instruct", "ollama": "llama3.2:latest"}.get(kind, "")
    with fake_server(kind) as fake:
        done = backends.create(kind, Settings(url=fake.url, model=model, timeout=10)).complete("Hi", params)
        path = done.request["url"][len(fake.url):]
        (body,) = fake.posts(path)
    return body


@pytest.mark.parametrize("kind", list(backends.TYPES))
def test_every_control_reaches_the_server_or_is_named_as_ignored(kind, monkeypatch):
    cls = backends.TYPES[kind]
    with_grammar = _sent(kind, {**DISTINCT, "json_schema": None}, monkeypatch)
    with_schema = _sent(kind, {**DISTINCT, "grammar": ""}, monkeypatch)
    for key, value in DISTINCT.items():
        body = with_schema if key == "json_schema" else with_grammar
        if key in cls.ignored([key]):
            assert value not in _values(body), f"{kind}: {key} is named as ignored but was sent"
        else:
            assert value in _values(body), f"{kind}: {key}={value!r} is not in the request: {body}"


@pytest.mark.parametrize("kind", list(backends.TYPES))
def test_mirostat_goes_by_each_servers_own_names(kind, monkeypatch):
    names = MIROSTAT[kind]
    keys = ("mirostat_mode", "mirostat_tau", "mirostat_eta")
    if names is None:
        assert backends.TYPES[kind].ignored(keys) == list(keys)
        return
    body = _sent(kind, {"max_new_tokens": 2, "mirostat_mode": 2, "mirostat_tau": 4.5, "mirostat_eta": 0.15}, monkeypatch)
    assert [_at(body, name) for name in names] == [2, 4.5, 0.15]
