"""A misbehaving server, per backend type: every case ends in one sentence naming the server and what it
sent, never a Python internal; the text received so far is kept (on the error, and shown by the CLI
and the API); invalid characters arrive as U+FFFD with a note."""

from __future__ import annotations

import json
import subprocess
import sys

import orjson
import pytest

import backends
import flow
from backends import BackendError, Settings
from core.conversation import EXAMPLE_PATH, Conversation
from tests.conftest import ROOT
from tests.fakes import fake_server

HTTP_TYPES = ["openai", "webui", "webui-legacy", "llamacpp", "koboldcpp", "ollama", "vllm", "lmstudio"]
MODEL = {"ollama": "llama3.2:latest", "vllm": "Qwen/Qwen2.5-7B-Instruct"}
PROMPT = "Say hi"
PARAMS = {"max_new_tokens": 16}
ELSEWHERE = "http://elsewhere.example/v1"


def backend(kind, fake, **settings):
    settings.setdefault("timeout", 10)
    return backends.create(kind, Settings(url=fake.url, model=MODEL.get(kind, ""), legacy_stream_port=fake.ws_port,
                                          **settings))


def streamed(kind, fake, **settings):
    """The Completion of a streamed generation (webui-legacy: over its websocket)."""
    events = list(backend(kind, fake, **settings).stream(PROMPT, PARAMS))
    assert "".join(e for e in events[:-1]) == events[-1].text
    return events[-1]


def stream_error(kind, fake, **settings) -> BackendError:
    with pytest.raises(BackendError) as caught:
        list(backend(kind, fake, **settings).stream(PROMPT, PARAMS))
    return caught.value


# --- invalid characters --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", HTTP_TYPES)
@pytest.mark.parametrize("how", ["stream", "complete"])
def test_a_lone_surrogate_becomes_a_replacement_character_with_a_note(kind, how):
    with fake_server(kind, pieces=["Hello", "\ud800", " world"], models=[MODEL.get(kind, "m")]) as fake:
        done = streamed(kind, fake) if how == "stream" else backend(kind, fake).complete(PROMPT, PARAMS)
    assert done.text == "Hello\ufffd world"
    assert any("invalid characters" in n and "U+FFFD" in n for n in done.notes), done.notes
    orjson.dumps(done.to_dict())  # what Gradio does with it: a lone surrogate here ended in a bare CancelledError


def test_a_lone_surrogate_through_the_flow_reaches_the_page_as_json():
    with fake_server("llamacpp", pieces=["{\"a\": \"\ud800\"}"]) as fake:
        request = flow.GenerateRequest(backend_type="llamacpp", wrapper="chatml", conversation=Conversation.from_file(EXAMPLE_PATH),
                                       settings=Settings(url=fake.url, timeout=10))
        *_, run = flow.generate_stream(request)
    assert "\ufffd" in run.raw and orjson.dumps(run.to_dict())


# --- JSON in the wrong shape ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", HTTP_TYPES)
@pytest.mark.parametrize("sent", ['{"choices": "nope"}', "[1, 2, 3]"])
def test_a_stream_event_in_the_wrong_shape_is_one_sentence_and_keeps_the_text(kind, sent):
    with fake_server(kind, inject=sent, models=[MODEL.get(kind, "m")]) as fake:
        error = stream_error(kind, fake)
    message = str(error)
    label = backends.TYPES[kind].label
    assert message.startswith("http://127.0.0.1:") or message.startswith("ws://127.0.0.1:")
    assert f"sent a stream event that {label} does not send ({sent})" in message
    assert "object has no attribute" not in message and error.partial_text == "Hello,"


@pytest.mark.parametrize("sent", [{"choices": "nope"}, [1, 2, 3], {"results": [{"text": 5}]}])
def test_webui_legacy_blocking_answer_in_the_wrong_shape(sent):
    with fake_server("webui-legacy", errors={"/api/v1/generate": (200, sent)}) as fake:
        with pytest.raises(BackendError, match=r"/api/v1/generate sent an answer that text-generation-webui legacy API "
                                               r"\(before Nov 2023\) does not send \(") as caught:
            backend("webui-legacy", fake).complete(PROMPT, PARAMS)
    assert "has no attribute" not in str(caught.value)


CALLS = [  # (type, what is asked, the path whose answer is replaced)
    ("llamacpp", "tokenize", "/tokenize"), ("llamacpp", "model_info", "/props"), ("llamacpp", "models", "/v1/models"),
    ("llamacpp", "render_chat", "/apply-template"), ("vllm", "render_chat", "/tokenize"), ("openai", "models", "/v1/models"),
    ("lmstudio", "models", "/v1/models"), ("vllm", "tokenize", "/tokenize"), ("vllm", "count_usage", "/tokenize"),
    ("webui", "tokenize", "/v1/internal/encode"), ("webui", "count_usage", "/v1/internal/token-count"),
    ("webui", "model_info", "/v1/internal/model/info"), ("koboldcpp", "tokenize", "/api/extra/tokencount"),
    ("koboldcpp", "count_usage", "/api/extra/tokencount"), ("koboldcpp", "model_info", "/api/v1/model"),
    ("koboldcpp", "check", "/api/extra/version"), ("ollama", "models", "/api/tags"), ("ollama", "model_info", "/api/show"),
    ("ollama", "check", "/api/version"), ("webui-legacy", "count_usage", "/api/v1/token-count"),
    ("webui-legacy", "model_info", "/api/v1/model"),
]


def _ask(server, what):
    if what == "count_usage":
        return server.count_usage("a b", "c")
    if what == "render_chat":
        return server.render_chat([{"role": "user", "content": "Hi"}])
    return server.tokenize("a b") if what == "tokenize" else getattr(server, what)()


@pytest.mark.parametrize("kind,what,path", CALLS)
def test_a_json_answer_in_the_wrong_shape_is_one_sentence(kind, what, path):
    for sent in ([1, 2, 3], "nope"):
        with fake_server(kind, errors={path: (200, json.dumps(sent))}, models=[MODEL.get(kind, "m")]) as fake:
            with pytest.raises(BackendError) as caught:
                _ask(backend(kind, fake), what)
        assert f"{path} sent an answer that {backends.TYPES[kind].label} does not send" in str(caught.value)
    odd = {"data": 5, "tokens": 5, "models": 5, "results": 5, "value": "x", "count": [], "version": {}, "template": 3}
    with fake_server(kind, errors={path: (200, odd)}, models=[MODEL.get(kind, "m")]) as fake:
        try:
            _ask(backend(kind, fake), what)
        except BackendError:
            pass  # a sentence, or an answer read as far as it goes: never a Python internal


# --- what a stream is not: an HTML page, a redirect; and who refused ---------------------------------------

@pytest.mark.parametrize("kind", HTTP_TYPES)
def test_an_html_page_served_as_plain_text_is_called_an_html_page(kind):
    with fake_server(kind, html="text/plain") as fake:
        with pytest.raises(BackendError) as caught:
            backend(kind, fake).complete(PROMPT, PARAMS)
    message = str(caught.value)
    assert "sent an HTML page instead of" in message and "(Welcome to nginx!)" in message
    assert "stopped mid-way" not in message


@pytest.mark.parametrize("kind", HTTP_TYPES)
def test_a_redirect_is_named_with_its_address(kind):
    with fake_server(kind, redirect=ELSEWHERE) as fake:
        with pytest.raises(BackendError) as caught:
            backend(kind, fake).complete(PROMPT, PARAMS)
    message = str(caught.value)
    assert f"answered HTTP 301, a redirect to {ELSEWHERE}: redirects are not followed" in message
    assert "stopped mid-way" not in message and "not JSON" not in message


def test_a_403_suggests_the_key_only_when_one_was_sent():
    page = "<html><head><title>403 Forbidden</title></head><body>nginx</body></html>"
    with fake_server("openai", errors={"/v1/completions": (403, page)}) as fake:
        with pytest.raises(BackendError) as without:
            backend("openai", fake).complete(PROMPT, PARAMS)
        with pytest.raises(BackendError) as with_key:
            backend("openai", fake, api_key="sk-x").complete(PROMPT, PARAMS)
    assert "HTTP 403: an HTML page (403 Forbidden)" in str(without.value)
    assert "check the API key" not in str(without.value) and "no API key was sent" in str(without.value)
    assert str(with_key.value).endswith("(check the API key)")


# --- the text received so far, on every face ---------------------------------------------------------------

def test_the_flow_keeps_the_text_of_a_cut_stream_on_the_error():
    with fake_server("llamacpp", fail="drop") as fake:
        request = flow.GenerateRequest(backend_type="llamacpp", wrapper="chatml", conversation=Conversation.from_file(EXAMPLE_PATH),
                                       settings=Settings(url=fake.url, timeout=10))
        shown = []
        with pytest.raises(BackendError, match="broke off mid-response") as caught:
            for run in flow.generate_stream(request):
                shown.append(run.raw)
        assert caught.value.partial_text == shown[-1] == "Hello,"
        with pytest.raises(BackendError) as blocking:
            flow.generate(request)
    assert blocking.value.partial_text == "Hello,"


def test_the_cli_prints_the_text_of_a_cut_stream():
    with fake_server("llamacpp", fail="drop") as fake:
        done = subprocess.run([sys.executable, "app.py", "generate", "--backend-type", "llamacpp", "--backend-url", fake.url,
                               "--wrapper", "chatml", "--conversation", str(EXAMPLE_PATH), "--timeout", "10"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("error: the connection to") and "broke off" in done.stderr
    assert json.loads(done.stdout)["raw"] == "Hello,"


def test_the_api_shows_the_text_of_a_cut_stream(app_url):
    from gradio_client import Client

    with fake_server("llamacpp", fail="drop") as fake:
        with pytest.raises(Exception) as caught:  # the client raises AppError with the server's sentence
            Client(app_url, verbose=False).predict("llamacpp", "chatml", EXAMPLE_PATH.read_text(), fake.url,
                                                   "deterministic", "{}", "", 10, api_name="/generate")
    assert "broke off mid-response" in str(caught.value) and "Text received before the failure: 'Hello,'" in str(caught.value)
