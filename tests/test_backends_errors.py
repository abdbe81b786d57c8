"""The failures a user meets, per backend type: each is one sentence naming the URL and what to check."""

from __future__ import annotations

import socket

import pytest

import backends
import backends.base
from backends import BackendError, Settings
from tests.conftest import free_port
from tests.fakes import fake_server

HTTP_TYPES = ["openai", "webui", "webui-legacy", "llamacpp", "koboldcpp", "ollama", "vllm", "lmstudio"]
PROMPT = "Hello"
PARAMS = {"max_new_tokens": 8, "stop": []}


def complete(kind, url, **settings):
    settings.setdefault("timeout", 10)
    settings.setdefault("model", "m" if kind in ("ollama", "vllm") else "")
    return backends.create(kind, Settings(url=url, **settings)).complete(PROMPT, PARAMS)


@pytest.mark.parametrize("kind", HTTP_TYPES)
def test_connection_refused(kind):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(BackendError, match=r"cannot connect to (http|ws)://127\.0\.0\.1:\d+/\S+: is the server running") as e:
        complete(kind, url, legacy_stream_port=free_port())
    assert len(str(e.value)) < 300


def test_dns_failure_names_the_host():
    with pytest.raises(BackendError, match=r"cannot resolve the host in http://no-such-backend\.invalid:8080/completion"):
        complete("llamacpp", "http://no-such-backend.invalid:8080")


@pytest.mark.parametrize("kind", ["llamacpp", "ollama", "koboldcpp"])
def test_a_server_that_never_answers_times_out(kind):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        with pytest.raises(BackendError, match=f"{url}/\\S+ did not answer in time .*raise the timeout"):
            complete(kind, url, timeout=1)
    finally:
        listener.close()


@pytest.mark.parametrize("kind,path,status,body,shown", [
    ("llamacpp", "/completion", 400, {"error": {"code": 400, "message": "the request exceeds the available context size",
                                                "type": "exceed_context_size_error"}},
     "answered HTTP 400: the request exceeds the available context size"),
    ("llamacpp", "/completion", 401, {"error": {"message": "Invalid API Key", "type": "authentication_error", "code": 401}},
     "answered HTTP 401: Invalid API Key (check the API key)"),
    ("openai", "/v1/completions", 429, {"error": {"message": "Rate limit reached", "type": "requests", "param": None,
                                                  "code": "rate_limit_exceeded"}},
     "answered HTTP 429: Rate limit reached"),
    ("vllm", "/v1/completions", 400, {"error": {"message": "This model's maximum context length is 4096 tokens.",
                                                "type": "BadRequestError", "param": None, "code": 400}},
     "answered HTTP 400: This model's maximum context length is 4096 tokens."),
    ("vllm", "/v1/completions", 400, {"object": "error", "message": "flat body before v0.10.1", "type": "BadRequestError",
                                      "param": None, "code": 400},
     "answered HTTP 400: flat body before v0.10.1"),
    ("lmstudio", "/v1/completions", 400, {"error": "Context length exceeded. Tokens in context: 8000, Context length: 8000"},
     "answered HTTP 400: Context length exceeded"),
    ("ollama", "/api/generate", 404, {"error": "model 'm' not found"}, "answered HTTP 404: model 'm' not found"),
    ("koboldcpp", "/api/extra/generate/stream", 503, {"detail": {"msg": "Server is busy; please try again later.",
                                                                 "type": "service_unavailable"}},
     "answered HTTP 503: Server is busy; please try again later."),
    ("webui", "/v1/completions", 422, {"detail": [{"loc": ["body", "max_tokens"], "msg": "Input should be a valid integer",
                                                   "type": "int_parsing"}]},
     "answered HTTP 422: body.max_tokens: Input should be a valid integer"),
    ("webui", "/v1/completions", 500, "Internal Server Error", "answered HTTP 500: Internal Server Error"),
    ("webui", "/v1/completions", 401, {"detail": "Unauthorized"}, "answered HTTP 401: Unauthorized (check the API key)"),
])
def test_each_servers_own_error_body_reaches_the_user(kind, path, status, body, shown):
    with fake_server(kind, errors={path: (status, body)}) as fake:
        with pytest.raises(BackendError) as e:
            complete(kind, fake.url)
    assert str(e.value).startswith(fake.url + path) and shown in str(e.value)


def test_the_fakes_own_validation_errors():
    with fake_server("webui") as fake:
        with pytest.raises(BackendError, match="HTTP 422: body.max_tokens: Input should be a valid integer"):
            backends.create("webui", Settings(url=fake.url, extra={"max_tokens": "many"})).complete(PROMPT, PARAMS)
    with fake_server("vllm", version="old") as fake:
        with pytest.raises(BackendError, match="HTTP 404: The model `nope` does not exist"):
            complete("vllm", fake.url, model="nope")
    with fake_server("koboldcpp", busy=True) as fake:
        with pytest.raises(BackendError, match="HTTP 503: Server is busy"):
            complete("koboldcpp", fake.url)


@pytest.mark.parametrize("kind", HTTP_TYPES)
def test_an_html_page_instead_of_the_api(kind):
    with fake_server(kind, html=True) as fake:
        with pytest.raises(BackendError, match=r"sent an HTML page instead of (JSON|a stream)|refused the websocket") as e:
            complete(kind, fake.url, legacy_stream_port=int(fake.url.rsplit(":", 1)[1]))
    assert fake.url.split("//")[1] in str(e.value)


@pytest.mark.parametrize("kind,message", [
    ("llamacpp", "reported an error mid-stream: slot crashed: out of memory"),
    ("vllm", "reported an error mid-stream: engine dead"),
    ("ollama", "reported an error mid-stream: an error was encountered while running the model"),
    ("openai", "reported an error mid-stream: generation failed"),
])
def test_an_error_inside_a_200_stream(kind, message):
    with fake_server(kind, fail="error") as fake:
        with pytest.raises(BackendError, match=message) as e:
            complete(kind, fake.url, model="llama3.2:latest" if kind == "ollama" else "Qwen/Qwen2.5-7B-Instruct")
    assert fake.url in str(e.value)


@pytest.mark.parametrize("kind", HTTP_TYPES)
def test_a_stream_that_stops_mid_way(kind):
    with fake_server(kind, fail="drop") as fake:
        with pytest.raises(BackendError, match=r"stopped mid-way|broke off mid-response") as e:
            complete(kind, fake.url, legacy_stream_port=fake.ws_port,
                     model="llama3.2:latest" if kind == "ollama" else "Qwen/Qwen2.5-7B-Instruct")
    assert "127.0.0.1" in str(e.value) and "log" in str(e.value)


@pytest.mark.parametrize("kind", HTTP_TYPES)
def test_an_empty_completion_is_a_result_not_an_error(kind):
    with fake_server(kind, pieces=[]) as fake:
        done = complete(kind, fake.url, legacy_stream_port=fake.ws_port,
                        model="llama3.2:latest" if kind == "ollama" else "Qwen/Qwen2.5-7B-Instruct")
    assert done.text == "" and done.finish_reason == "stop"


@pytest.mark.parametrize("typed", ["/v1", "/v1/", "/v1/v1", "/v1/completions", "/api", "/api/v1"])
def test_api_suffixes_are_understood_and_never_doubled(typed):
    with fake_server("openai") as fake:
        done = complete("openai", fake.url + typed)
    assert done.request["url"] == fake.url + "/v1/completions"
    assert [r["path"] for r in fake.requests] == ["/v1/completions"]


def test_a_doubled_api_path_is_named_when_the_server_404s():
    with fake_server("openai") as fake:
        with pytest.raises(BackendError, match=r"the API path is doubled"):
            backends.create("openai", Settings(url=fake.url)).get_json("/v1/v1/models")


def test_enormous_output_is_bounded(monkeypatch):
    monkeypatch.setattr(backends.base, "MAX_OUTPUT_CHARS", 50)
    with fake_server("llamacpp", endless=True) as fake:
        with pytest.raises(BackendError, match=r"sent more than 50 characters; stopped reading"):
            complete("llamacpp", fake.url)


def test_enormous_json_body_is_bounded(monkeypatch):
    monkeypatch.setattr(backends.base, "MAX_BODY_BYTES", 100)
    with fake_server("llamacpp") as fake:
        with pytest.raises(BackendError, match=r"sent a body larger than 100 bytes"):
            backends.create("llamacpp", Settings(url=fake.url)).model_info()


def test_allow_list():
    with fake_server("llamacpp") as fake:
        port = fake.url.rsplit(":", 1)[1]
        try:
            backends.set_allowed_hosts(["example.org", f"127.0.0.1:{int(port) + 1}"])
            with pytest.raises(BackendError, match=rf"127\.0\.0\.1:{port} is not in the allowed backends \(--allow-backend\): "):
                complete("llamacpp", fake.url)
            with pytest.raises(BackendError, match="is not in the allowed backends"):
                backends.detect(fake.url)
            assert fake.requests == [], "nothing was sent"
            backends.set_allowed_hosts([f"127.0.0.1:{port}"])
            assert complete("llamacpp", fake.url).text
            backends.set_allowed_hosts(["127.0.0.1"])
            assert complete("llamacpp", fake.url).text
        finally:
            backends.set_allowed_hosts(None)
    with fake_server("webui-legacy") as fake:
        try:
            backends.set_allowed_hosts([fake.url.split("//")[1]])  # the HTTP port, not the websocket's
            backend = backends.create("webui-legacy", Settings(url=fake.url, legacy_stream_port=fake.ws_port, timeout=10))
            with pytest.raises(BackendError, match="is not in the allowed backends"):
                list(backend.stream(PROMPT, PARAMS))
        finally:
            backends.set_allowed_hosts(None)


def test_bad_scheme_is_refused_before_any_request():
    for kind in HTTP_TYPES:
        with pytest.raises(BackendError, match="must start with http"):
            complete(kind, "ftp://localhost:8080")


def test_an_api_key_echoed_in_an_error_body_is_masked():
    secret = "sk-echoed-123"
    body = {"error": {"message": f"bad key: Bearer {secret}", "type": "authentication_error", "code": 401}}
    for kind, path in (("llamacpp", "/completion"), ("llamacpp", "/props")):
        with fake_server(kind, errors={path: (401, body)}) as fake:
            backend = backends.create(kind, Settings(url=fake.url, api_key=secret, timeout=5))
            with pytest.raises(BackendError) as e:
                backend.complete(PROMPT, PARAMS) if path == "/completion" else backend.model_info()
        assert secret not in str(e.value) and "bad key: Bearer ***" in str(e.value)


def test_done_without_a_finish_reason_is_kept_with_a_note():
    with fake_server("openai", fail="interrupt") as fake:
        done = complete("openai", fake.url)
    assert done.text == "Hello," and done.finish_reason is None
    assert any("[DONE] but no finish_reason" in n for n in done.notes)
