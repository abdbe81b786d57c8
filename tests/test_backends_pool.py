"""One loop, one client: every HTTP type streams through HttpBackend's loop, counts tokens with one
return type, and reaches its server through one pooled, kept-alive client shared by every request."""

from __future__ import annotations

import threading

import pytest

import backends
from backends import BackendError, Settings, pool
from backends.base import HttpBackend
from backends.webui_legacy import WebUILegacy
from tests.fakes import fake_server

HTTP_TYPES = [kind for kind, cls in backends.TYPES.items() if issubclass(cls, HttpBackend)]
PROMPT = "Say hi"


def test_every_http_type_streams_through_the_one_loop():
    for kind in HTTP_TYPES:
        cls = backends.TYPES[kind]
        # webui-legacy wraps it only to fall back to its blocking call when the websocket refuses
        assert cls.generate is HttpBackend.generate or cls is WebUILegacy, f"{kind} has its own streaming loop"
        assert cls.read_event is not HttpBackend.read_event and cls.body is not HttpBackend.body


@pytest.mark.parametrize("kind", ["openai", "webui", "webui-legacy", "koboldcpp", "vllm", "llamacpp", "ollama", "lmstudio"])
def test_token_counting_has_one_return_type(kind):
    with fake_server(kind) as fake:
        counted = backends.create(kind, Settings(url=fake.url, model="Qwen/Qwen2.5-7B-Instruct" if kind == "vllm" else "",
                                                 timeout=5)).count_usage("a b c", "d e")
    usage, source = counted
    assert isinstance(usage, dict) and isinstance(source, str)
    if source:  # the types with a tokenizer endpoint count; the others say they cannot
        assert usage["prompt_tokens"] >= 3 and usage["completion_tokens"] >= 2


def test_done_is_an_explicit_signal_not_hidden_state():
    with fake_server("openai", fail="interrupt") as fake:
        backend = backends.create("openai", Settings(url=fake.url, timeout=5))
        done = backend.complete(PROMPT, {"max_new_tokens": 8})
    assert done.text == "Hello," and any("[DONE] but no finish_reason" in n for n in done.notes)
    assert not hasattr(backend, "saw_done") and not hasattr(backend, "last_request")
    assert not hasattr(backend, "partial") and not hasattr(HttpBackend, "transport")


def test_requests_to_one_server_share_one_kept_alive_connection():
    with fake_server("llamacpp") as fake:
        for _ in range(5):  # separate backend objects, as separate users' requests are
            backends.create("llamacpp", Settings(url=fake.url, timeout=5)).model_info()
        clients = {r["client"] for r in fake.requests}
    assert len(fake.requests) == 5 and len(clients) == 1, "one TCP connection served all five requests"


def test_one_client_per_server_shared_across_settings():
    with fake_server("openai") as a, fake_server("openai") as b:
        assert pool.client_for(a.url + "/v1/completions") is pool.client_for(a.url + "/v1/models")
        assert pool.client_for(a.url) is not pool.client_for(b.url)
        fast = backends.create("openai", Settings(url=a.url, timeout=5))
        slow = backends.create("openai", Settings(url=a.url, timeout=50))
        assert fast.complete(PROMPT, {"max_new_tokens": 2}).text == slow.complete(PROMPT, {"max_new_tokens": 2}).text


def test_many_concurrent_streams_on_one_client():
    results: list = []
    with fake_server("llamacpp", delay=0.05) as fake:
        def one():
            try:
                results.append(backends.create("llamacpp", Settings(url=fake.url, timeout=60)).complete(PROMPT, {"max_new_tokens": 4}))
            except BackendError as e:
                results.append(e)

        threads = [threading.Thread(target=one) for _ in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert len(results) == 64 and all(getattr(r, "text", r) == "Hello, world!" for r in results), results
