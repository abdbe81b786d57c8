"""Auto-detection, copy as curl / Python, capabilities, and the shared stream helpers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

import backends
from backends import BackendError, Completion, Settings
from backends.base import TextCollector, normalize_finish, sse_events
from backends.export import as_curl, as_python
from tests.conftest import free_port
from tests.fakes import fake_server


@pytest.mark.parametrize("kind,found", [
    ("koboldcpp", "/api/extra/version says KoboldCpp 1.76"),
    ("llamacpp", "/props answers like llama.cpp's llama-server (b4501-fake)"),
    ("ollama", "/api/version says Ollama 0.12.11"),
    ("webui", "/v1/internal/model/info answers like text-generation-webui"),
    ("vllm", "/v1/models lists models owned by vllm"),
    ("lmstudio", "/api/v0/models answers like LM Studio"),
    ("webui-legacy", "/api/v1/model answers like text-generation-webui's legacy API"),
    ("openai", "/v1/models answers like an OpenAI-compatible server"),
])
def test_detect_picks_the_type_and_says_what_it_found(kind, found):
    with fake_server(kind) as fake:
        detected, explanation = backends.detect(fake.url + "/v1")
    assert detected == kind
    assert explanation.startswith(fake.url) and found in explanation


def test_detect_explains_failures():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(BackendError, match=f"cannot connect to {url}"):
        backends.detect(url)
    with fake_server("openai", html=True) as fake:
        with pytest.raises(BackendError, match="like none of the known servers"):
            backends.detect(fake.url)


def _record(kind, **settings):
    with fake_server(kind) as fake:
        done = backends.create(kind, Settings(url=fake.url, timeout=5, **settings)).complete(
            "Say \"hi\" it's\n", {"max_new_tokens": 3, "stop": ["\n"]})
    return done.request


def test_copy_as_curl_reproduces_the_request_without_the_key():
    record = _record("llamacpp", api_key="sk-secret")
    command = as_curl(record)
    assert "sk-secret" not in command and "$BACKEND_API_KEY" in command
    if not shutil.which("curl"):
        pytest.skip("curl is not installed")
    with fake_server("llamacpp") as fake:
        command = as_curl({**record, "url": fake.url + "/completion"})
        subprocess.run(["bash", "-c", command], check=True, capture_output=True, timeout=20,
                       env={**os.environ, "BACKEND_API_KEY": "sk-from-env"})
        (sent,) = fake.requests
    assert sent["json"] == record["json"]
    assert sent["headers"]["Authorization"] == "Bearer sk-from-env"


def test_copy_as_python_reproduces_the_request_without_the_key(tmp_path):
    record = _record("ollama", api_key="sk-secret")
    with fake_server("ollama") as fake:
        script = as_python({**record, "url": fake.url + "/api/generate"})
        assert "sk-secret" not in script and "os.environ['BACKEND_API_KEY']" in script
        path = tmp_path / "call.py"
        path.write_text(script)
        out = subprocess.run([sys.executable, str(path)], check=True, capture_output=True, text=True, timeout=30,
                             env={**os.environ, "BACKEND_API_KEY": "k2"})
        (sent,) = fake.requests
    assert sent["json"] == record["json"] and sent["headers"]["Authorization"] == "Bearer k2"
    assert '"done": true' in out.stdout


def test_exports_of_websocket_and_embedded_records():
    ws = {"method": "WEBSOCKET", "url": "ws://127.0.0.1:5005/api/v1/stream", "headers": {}, "json": {"prompt": "x"}}
    assert "websocat" in as_curl(ws) and "from websockets.sync.client import connect" in as_python(ws)
    emb = {"method": "embedded", "model": "/m.gguf", "call": "llama_cpp.Llama.create_completion",
           "json": {"prompt": "x", "seed": 5}}
    assert "no HTTP request" in as_curl(emb)
    script = as_python(emb)
    assert "Llama(model_path='/m.gguf'" in script and "create_completion(**args" in script
    compile(script, "emb.py", "exec")


def test_capabilities_cover_every_type_with_the_same_keys():
    caps = backends.capabilities()
    assert list(caps) == ["embedded", "openai", "webui", "webui-legacy", "llamacpp", "koboldcpp", "ollama", "vllm",
                          "lmstudio"]
    keys = {tuple(c) for c in caps.values()}
    assert len(keys) == 1
    assert caps["llamacpp"]["json_schema"] and caps["llamacpp"]["tokenize"] and caps["llamacpp"]["model_template"]
    assert not caps["openai"]["grammar"] and not caps["lmstudio"]["json_schema"]
    assert caps["koboldcpp"]["abort"].endswith("/api/extra/abort (genkey)")
    table = backends.capabilities_table()
    assert table.count("\n") == 10 and "| `ollama` |" in table


def test_ignored_is_derived_from_the_mapping():
    for cls in backends.TYPES.values():
        assert set(cls.ignored(list(cls.params) + ["nonsense"])) == {"nonsense"}
    assert backends.TYPES["koboldcpp"].ignored(["frequency_penalty"]) == ["frequency_penalty"]
    assert backends.TYPES["vllm"].ignored(["typical_p"]) == ["typical_p"]


@pytest.mark.parametrize("raw,normal", [
    ("stop", "stop"), ("eos", "stop"), ("word", "stop"), ("length", "length"), ("limit", "length"),
    ("null", None), (None, None), ("content_filter", "content_filter"), ("load", "load")])
def test_finish_reasons_are_normalized(raw, normal):
    assert normalize_finish(raw) == normal


def test_sse_framing_crlf_comments_events_and_done_without_blank_line():
    lines = ["data: {\"a\": 1}\r", "\r", ":", "", "event: message", "data: {\"b\":", "data: 2}", "", "data: [DONE]"]
    assert list(sse_events(iter(lines))) == ['{"a": 1}', '{"b":\n2}', "[DONE]"]


def test_stop_trimming_holds_back_a_possible_stop_prefix():
    out = TextCollector("u", stop=["\n###"])
    shown = [out.add(d) for d in ["Hi", "\n", "#", "## done", "more"]]
    assert shown == ["Hi", "", "", ""] + [""] and out.text == "Hi" and out.trimmed == "\n###"
    out = TextCollector("u", stop=["\n###"])
    assert [out.add(d) for d in ["a\n", "#b"]] == ["a", "\n#b"] and out.flush() == ""


def test_completion_to_dict_keeps_old_keys_and_adds_the_new():
    d = Completion(text="x", finish_reason="stop", finish_raw="word", usage_source="server",
                   tokens=[{"token": "x", "logprob": -1.0, "top": []}]).to_dict()
    assert {"text", "finish_reason", "usage", "request", "response", "timings"} <= set(d)
    assert d["finish_raw"] == "word" and d["tokens"][0]["token"] == "x"
    json.dumps(d)
