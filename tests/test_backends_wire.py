"""Every backend type against its protocol-faithful fake (tests/fakes): the exact request fields sent,
the stream framing and end marker read, the version quirks, token counts, probabilities, abort, and the
error each failure shows the user."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

import backends
import flow
from backends import BackendError, Completion, Settings
from core.conversation import EXAMPLE_PATH, Conversation
from tests.conftest import ROOT, free_port
from tests.fakes import fake_server

PROMPT = "<|im_start|>user\nSay hi<|im_end|>\n<|im_start|>assistant\n"
PARAMS = {"max_new_tokens": 64, "temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "typical_p": 1.0,
          "repetition_penalty": 1.1, "presence_penalty": 0.0, "frequency_penalty": 0.5, "seed": 42,
          "stop": ["<|im_end|>"], "grammar": "", "json_schema": None}
TEXT = "Hello, world! How are you?"


def run(kind, fake, params=PARAMS, **settings):
    backend = backends.create(kind, Settings(url=fake.url, timeout=10, **settings))
    events = list(backend.stream(PROMPT, params))
    final = events[-1]
    assert isinstance(final, Completion) and all(isinstance(e, str) for e in events[:-1])
    assert "".join(events[:-1]) == final.text, "the streamed deltas add up to the final text"
    return final, events[:-1]


# --- the exact request each type sends -------------------------------------------------------------------

EXPECTED_BODIES = {
    "openai": {"model": "local-model", "prompt": PROMPT, "max_tokens": 64, "temperature": 0.7, "top_p": 0.9,
               "presence_penalty": 0.0, "frequency_penalty": 0.5, "seed": 42, "stop": ["<|im_end|>"],
               "stream": True, "stream_options": {"include_usage": True}},
    "lmstudio": {"model": "local-model", "prompt": PROMPT, "max_tokens": 64, "temperature": 0.7, "top_p": 0.9,
                 "top_k": 40, "repeat_penalty": 1.1, "presence_penalty": 0.0, "frequency_penalty": 0.5, "seed": 42,
                 "stop": ["<|im_end|>"], "stream": True, "stream_options": {"include_usage": True}},
    "vllm": {"model": "Qwen/Qwen2.5-7B-Instruct", "prompt": PROMPT, "max_tokens": 64, "temperature": 0.7, "top_p": 0.9,
             "top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1, "presence_penalty": 0.0, "frequency_penalty": 0.5,
             "seed": 42, "stop": ["<|im_end|>"], "stream": True, "stream_options": {"include_usage": True}},
    "webui": {"model": "local-model", "prompt": PROMPT, "max_tokens": 64, "temperature": 0.7, "top_p": 0.9, "top_k": 40,
              "min_p": 0.05, "typical_p": 1.0, "repetition_penalty": 1.1, "presence_penalty": 0.0,
              "frequency_penalty": 0.5, "seed": 42, "stop": ["<|im_end|>"], "stream": True,
              "stream_options": {"include_usage": True}},
    "llamacpp": {"prompt": PROMPT, "n_predict": 64, "temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05,
                 "typical_p": 1.0, "repeat_penalty": 1.1, "presence_penalty": 0.0, "frequency_penalty": 0.5,
                 "seed": 42, "stop": ["<|im_end|>"], "stream": True},
    "ollama": {"model": "llama3.2:latest", "prompt": PROMPT, "raw": True, "stream": True,
               "options": {"num_predict": 64, "temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05,
                           "typical_p": 1.0, "repeat_penalty": 1.1, "presence_penalty": 0.0, "frequency_penalty": 0.5,
                           "seed": 42, "stop": ["<|im_end|>"]}},
}


@pytest.mark.parametrize("kind", list(EXPECTED_BODIES))
def test_each_type_sends_exactly_its_own_fields(kind):
    with fake_server(kind) as fake:
        final, deltas = run(kind, fake)
        path = final.request["url"][len(fake.url):]
        assert fake.posts(path) == [EXPECTED_BODIES[kind]]
    assert final.request["json"] == EXPECTED_BODIES[kind]
    assert final.text == TEXT and len(deltas) >= 8
    assert final.finish_reason == "stop"
    assert final.usage["completion_tokens"] == 8 and final.usage["prompt_tokens"] == 4
    assert final.usage_source


def test_koboldcpp_request_fields_and_genkey():
    with fake_server("koboldcpp") as fake:
        backend = backends.create("koboldcpp", Settings(url=fake.url + "/api", timeout=10))
        final = backend.complete(PROMPT, PARAMS)
        (body,) = fake.posts("/api/extra/generate/stream")
    assert body == {"prompt": PROMPT, "max_length": 64, "temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05,
                    "typical": 1.0, "rep_pen": 1.1, "presence_penalty": 0.0, "sampler_seed": 42,
                    "stop_sequence": ["<|im_end|>"], "trim_stop": True, "genkey": backend.genkey}
    assert body["genkey"].startswith("KCPP")
    assert final.text == TEXT and final.finish_reason == "stop" and final.finish_raw == "stop"
    assert final.usage == {"prompt_tokens": 4, "completion_tokens": 5} and final.usage_source == "/api/extra/tokencount"


def test_webui_legacy_streams_over_the_websocket():
    with fake_server("webui-legacy") as fake:
        final, deltas = run("webui-legacy", fake, legacy_stream_port=fake.ws_port)
        (sent,) = [r for r in fake.requests if r["method"] == "WEBSOCKET"]
    assert sent["path"] == "/api/v1/stream"
    assert sent["json"] == {"prompt": PROMPT, "max_new_tokens": 64, "temperature": 0.7, "top_p": 0.9, "top_k": 40,
                            "min_p": 0.05, "typical_p": 1.0, "repetition_penalty": 1.1, "presence_penalty": 0.0,
                            "frequency_penalty": 0.5, "seed": 42, "stopping_strings": ["<|im_end|>"]}
    assert final.text == TEXT and len(deltas) == 8
    assert final.usage == {"prompt_tokens": 4, "completion_tokens": 5} and final.usage_source == "/api/v1/token-count"
    assert final.finish_reason == "stop" and final.finish_raw is None and final.request["method"] == "WEBSOCKET"


def test_webui_legacy_streaming_port_defaults_to_5005():
    backend = backends.create("webui-legacy", Settings(url="http://127.0.0.1:5000/api"))
    assert backend.stream_url == "ws://127.0.0.1:5005/api/v1/stream"


def test_unset_parameters_are_not_sent_and_seed_minus_one_means_random():
    with fake_server("openai") as fake:
        run("openai", fake, {"max_new_tokens": 3, "seed": -1})
        (body,) = fake.posts("/v1/completions")
    assert "seed" not in body and "temperature" not in body and body["max_tokens"] == 3


def test_extra_fields_are_merged_and_nested_options_merge_one_level():
    with fake_server("ollama") as fake:
        run("ollama", fake, {"temperature": 0.1}, extra={"options": {"num_ctx": 8192}, "keep_alive": "5m"})
        (body,) = fake.posts("/api/generate")
    assert body["options"] == {"temperature": 0.1, "num_ctx": 8192} and body["keep_alive"] == "5m"


# --- constraints: sent only where accepted ------------------------------------------------------------------

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}}
GBNF = 'root ::= "yes" | "no"'


@pytest.mark.parametrize("kind,field,value", [
    ("llamacpp", "grammar", GBNF), ("llamacpp", "json_schema", SCHEMA),
    ("koboldcpp", "grammar", GBNF), ("webui", "grammar_string", GBNF),
    ("vllm", "structured_outputs", {"grammar": GBNF}), ("vllm", "structured_outputs", {"json": SCHEMA}),
    ("ollama", "format", SCHEMA),
])
def test_constraints_go_to_backends_that_accept_them(kind, field, value):
    params = {"max_new_tokens": 4, "grammar": GBNF if "json" not in str(value) and value != SCHEMA else "",
              "json_schema": SCHEMA if (value == SCHEMA or value == {"json": SCHEMA}) else None}
    with fake_server(kind) as fake:
        backends.create(kind, Settings(url=fake.url, timeout=10)).complete(PROMPT, params)
        body = [r["json"] for r in fake.requests if r["method"] == "POST" and r["path"] not in (
            "/api/extra/tokencount", "/v1/internal/token-count", "/tokenize")][0]
    assert body[field] == value


@pytest.mark.parametrize("kind", ["openai", "lmstudio"])
def test_constraints_are_listed_as_ignored_and_never_sent(kind):
    cls = backends.TYPES[kind]
    assert {"grammar", "json_schema"} <= set(cls.ignored(["grammar", "json_schema"]))
    with fake_server(kind) as fake:
        run(kind, fake, {"max_new_tokens": 4, "grammar": GBNF, "json_schema": SCHEMA})
        (body,) = fake.posts("/v1/completions")
    assert "grammar" not in body and "json_schema" not in body and "grammar_string" not in body


def test_vllm_sends_one_constraint_only():
    with fake_server("vllm") as fake:
        run("vllm", fake, {"max_new_tokens": 4, "grammar": GBNF, "json_schema": SCHEMA})
        (body,) = fake.posts("/v1/completions")
    assert body["structured_outputs"] == {"json": SCHEMA}


# --- version quirks ------------------------------------------------------------------------------------------

def test_webui_before_v4_1_crlf_no_done_usage_in_the_final_chunk():
    with fake_server("webui", version="v1.8") as fake:
        final, _ = run("webui", fake)
    assert final.text == TEXT and final.finish_reason == "stop"
    assert final.usage == {"prompt_tokens": 4, "completion_tokens": 8} and final.usage_source == "server"


def test_webui_without_usage_counts_with_its_own_tokenizer():
    with fake_server("webui") as fake:
        backend = backends.create("webui", Settings(url=fake.url, timeout=10, extra={"stream_options": {"include_usage": False}}))
        final = backend.complete(PROMPT, {"max_new_tokens": 64})
        counted = fake.posts("/v1/internal/token-count")
    assert counted == [{"text": PROMPT}, {"text": TEXT}]  # "text", not "prompt"
    assert final.usage == {"prompt_tokens": 4, "completion_tokens": 5} and final.usage_source == "/v1/internal/token-count"


def test_vllm_without_usage_counts_with_tokenize():
    with fake_server("vllm") as fake:
        backend = backends.create("vllm", Settings(url=fake.url, timeout=10, extra={"stream_options": {"include_usage": False}}))
        final = backend.complete(PROMPT, {"max_new_tokens": 64})
    assert final.usage == {"prompt_tokens": 5, "completion_tokens": 5} and final.usage_source == "/tokenize"


def test_koboldcpp_2024_keeps_the_stop_string_and_it_is_trimmed_client_side():
    with fake_server("koboldcpp", version="2024") as fake:
        backend = backends.create("koboldcpp", Settings(url=fake.url, timeout=10))
        events = list(backend.stream(PROMPT, {"max_new_tokens": 50, "stop": [" How"]}))
    final = events[-1]
    assert final.text == "Hello, world!" and "".join(events[:-1]) == final.text
    assert final.finish_reason == "stop" and final.finish_raw == "length"  # 2024 code reports a stop string as length
    assert any("cut off client-side" in n for n in final.notes)


def test_koboldcpp_new_honours_trim_stop_and_sends_json_null():
    with fake_server("koboldcpp", version="new") as fake:
        final = backends.create("koboldcpp", Settings(url=fake.url, timeout=10)).complete(
            PROMPT, {"max_new_tokens": 50, "stop": [" How"]})
    assert final.text == "Hello, world!" and final.finish_reason == "length" and not final.notes


def test_koboldcpp_string_null_finish_reason_is_not_the_end():
    with fake_server("koboldcpp", version="2024") as fake:
        final = backends.create("koboldcpp", Settings(url=fake.url, timeout=10)).complete(PROMPT, {"max_new_tokens": 3})
    assert final.text == "Hello, world" and final.finish_reason == "length"


def test_ollama_streams_by_default_and_reports_its_own_counts():
    with fake_server("ollama") as fake:
        final, deltas = run("ollama", fake, {"max_new_tokens": 2})
    assert final.text == "Hello," and len(deltas) == 2
    assert final.finish_reason == "length" and final.finish_raw == "length"
    assert final.usage == {"prompt_tokens": 4, "completion_tokens": 2} and final.response["done"] is True


def test_ollama_cached_prompt_has_no_prompt_count_and_says_so():
    with fake_server("ollama", cached=True) as fake:
        final, _ = run("ollama", fake, {"max_new_tokens": 2})
    assert final.usage["prompt_tokens"] is None and any("prompt_eval_count" in n for n in final.notes)


@pytest.mark.parametrize("version,stop_key", [("new", "stop_type"), ("old", "stopped_word")])
def test_llamacpp_both_stop_formats(version, stop_key):
    with fake_server("llamacpp", version=version) as fake:
        final, _ = run("llamacpp", fake, {"max_new_tokens": 20, "stop": [" are"]})
    assert final.text == "Hello, world! How" and stop_key in final.response
    assert final.finish_reason == "stop" and final.finish_raw == "word"
    with fake_server("llamacpp", version=version) as fake:
        final, _ = run("llamacpp", fake, {"max_new_tokens": 2})
    assert final.finish_reason == "length" and final.finish_raw == "limit"


@pytest.mark.parametrize("version", ["new", "post", "old"])
def test_llamacpp_both_probability_formats(version):
    with fake_server("llamacpp", version=version if version != "post" else "new") as fake:
        extra = {"post_sampling_probs": True} if version == "post" else {}
        final, _ = run("llamacpp", fake, {"max_new_tokens": 3}, probabilities=2, extra=extra)
        (body,) = fake.posts("/completion")
    assert body["n_probs"] == 2
    assert [t["token"] for t in final.tokens] == ["Hello", ",", " world"]
    first = final.tokens[0]
    assert first["logprob"] == pytest.approx(-0.2877, abs=1e-3)
    assert [t["token"] for t in first["top"]] == ["Hello", "alt"]
    assert first["top"][1]["logprob"] == pytest.approx(-1.3863, abs=1e-3)


@pytest.mark.parametrize("kind", ["openai", "vllm", "webui", "lmstudio"])
def test_openai_style_logprobs(kind):
    with fake_server(kind) as fake:
        final, _ = run(kind, fake, {"max_new_tokens": 2}, probabilities=2)
        (body,) = fake.posts("/v1/completions")
    assert body["logprobs"] == 2
    assert final.tokens == [{"token": "Hello", "logprob": -0.5, "top": [{"token": "Hello", "logprob": -0.5},
                                                                         {"token": "alt", "logprob": -1.5}]},
                            {"token": ",", "logprob": -0.5, "top": [{"token": ",", "logprob": -0.5},
                                                                     {"token": "alt", "logprob": -1.5}]}]


def test_ollama_logprobs():
    with fake_server("ollama") as fake:
        final, _ = run("ollama", fake, {"max_new_tokens": 1}, probabilities=2)
        (body,) = fake.posts("/api/generate")
    assert body["logprobs"] is True and body["top_logprobs"] == 2
    assert final.tokens == [{"token": "Hello", "logprob": -0.1, "top": [{"token": "Hello", "logprob": -0.1},
                                                                         {"token": "x", "logprob": -2.4}]}]


def test_no_probabilities_unless_asked():
    with fake_server("llamacpp") as fake:
        final, _ = run("llamacpp", fake, {"max_new_tokens": 2})
        (body,) = fake.posts("/completion")
    assert "n_probs" not in body and final.tokens is None


# --- stop really aborts ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,endpoint", [
    ("koboldcpp", ("abort", None)), ("webui", "stop-generation"), ("webui-legacy", "stop-stream"),
    ("llamacpp", None), ("ollama", None), ("vllm", None), ("openai", None), ("lmstudio", None)])
def test_closing_the_stream_closes_the_connection_and_calls_the_abort_endpoint(kind, endpoint):
    with fake_server(kind, endless=True, delay=0.02) as fake:
        backend = backends.create(kind, Settings(url=fake.url, timeout=10, legacy_stream_port=fake.ws_port))
        stream = backend.stream(PROMPT, {"max_new_tokens": 10**6})
        assert isinstance(next(stream), str) and isinstance(next(stream), str)
        started = time.monotonic()
        stream.close()
        assert time.monotonic() - started < 3
        deadline = time.monotonic() + 3
        while "disconnect" not in fake.events and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "disconnect" in fake.events, "the server saw the connection close"
        if endpoint == ("abort", None):
            assert ("abort", backend.genkey) in fake.events, "KoboldCpp's abort is called with the request's genkey"
        elif endpoint:
            assert endpoint in fake.events
        else:
            assert not [e for e in fake.events if e != "disconnect"]


# --- models, tokenizing, the model's own template ------------------------------------------------------------

def test_vllm_and_ollama_pick_the_only_model_and_ask_when_several():
    with fake_server("vllm", models=["only/model"]) as fake:
        final, _ = run("vllm", fake, {"max_new_tokens": 1})
    assert final.request["json"]["model"] == "only/model"
    with fake_server("ollama", models=["a:latest", "b:latest"]) as fake:
        with pytest.raises(BackendError, match=r"several models \(a:latest, b:latest\): choose one"):
            run("ollama", fake, {"max_new_tokens": 1})
        final, _ = run("ollama", fake, {"max_new_tokens": 1}, model="b:latest")
    assert final.request["json"]["model"] == "b:latest"


def test_model_lists():
    with fake_server("ollama", models=["a:latest", "b:7b"]) as fake:
        assert backends.create("ollama", Settings(url=fake.url)).models() == ["a:latest", "b:7b"]
    with fake_server("vllm", models=["x"]) as fake:
        assert backends.create("vllm", Settings(url=fake.url + "/v1")).models() == ["x"]


def test_tokenize_where_the_server_can():
    with fake_server("llamacpp") as fake:
        toks = backends.create("llamacpp", Settings(url=fake.url)).tokenize("<|im_start|>a b")
        assert fake.posts("/tokenize") == [{"content": "<|im_start|>a b", "add_special": False, "parse_special": True,
                                            "with_pieces": True}]
    assert toks[:2] == [{"id": 100, "piece": "<|im_start|>a"}, {"id": 101, "piece": " b"}]
    assert toks[2] == {"id": 198, "piece": "<0xC3>"}  # a byte piece that is not UTF-8 alone
    with fake_server("vllm") as fake:
        assert backends.create("vllm", Settings(url=fake.url)).tokenize("a b") == [
            {"id": 0, "piece": "a"}, {"id": 1, "piece": "b"}]
    with fake_server("webui") as fake:
        assert backends.create("webui", Settings(url=fake.url)).tokenize("a b") == [
            {"id": 500, "piece": "<500>"}, {"id": 501, "piece": "<501>"}]
    with fake_server("koboldcpp", version="2024") as fake:
        assert backends.create("koboldcpp", Settings(url=fake.url)).tokenize("a b") == [
            {"id": 1000, "piece": None}, {"id": 1001, "piece": None}]
    with fake_server("koboldcpp", version="new") as fake:
        assert backends.create("koboldcpp", Settings(url=fake.url)).tokenize("a b")[0] == {"id": 1000, "piece": "[1000]"}
    for kind in ("openai", "lmstudio", "ollama", "webui-legacy"):
        with pytest.raises(BackendError, match=f"tokenizing is not available for {kind} backends"):
            backends.create(kind, Settings(url="http://127.0.0.1:9")).tokenize("a")


def test_model_info_and_chat_templates():
    with fake_server("llamacpp") as fake:
        info = backends.create("llamacpp", Settings(url=fake.url)).model_info()
    assert info["name"] == "smollm2.gguf" and info["chat_template"].startswith("{% for m in messages %}")
    assert info["source"] == "llama.cpp /props"
    with fake_server("ollama") as fake:
        info = backends.create("ollama", Settings(url=fake.url)).model_info()
        assert fake.posts("/api/show") == [{"model": "llama3.2:latest"}]
    assert info["source"] == "ollama (Go template)" and "{{ .Prompt }}" in info["chat_template"]
    with fake_server("koboldcpp", version="2024") as fake:
        info = backends.create("koboldcpp", Settings(url=fake.url)).model_info()
    assert info == {"name": "koboldcpp/Llama-3-8B-Q4_K_M", "chat_template": None,
                    "source": "KoboldCpp /api/v1/model (no template in this build)"}
    with fake_server("webui") as fake:
        assert backends.create("webui", Settings(url=fake.url)).model_info()["name"] == "Qwen_Qwen3-0.6B-Q4_K_M.gguf"
    with pytest.raises(BackendError, match="model information is not available for openai backends"):
        backends.create("openai", Settings(url="http://127.0.0.1:9")).model_info()


def test_llamacpp_render_chat():
    with fake_server("llamacpp") as fake:
        prompt = backends.create("llamacpp", Settings(url=fake.url)).render_chat([{"role": "user", "content": "Hi"}])
    assert prompt == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.parametrize("kind", ["openai", "webui", "webui-legacy", "llamacpp", "koboldcpp", "ollama", "vllm", "lmstudio"])
def test_check_says_what_it_reached(kind):
    with fake_server(kind) as fake:
        status = backends.create(kind, Settings(url=fake.url, timeout=5)).check()
    assert status.startswith(f"connected to {fake.url}")


# --- webui-legacy: blocking without a websocket, streaming on a configurable port --------------------------

def _legacy_request(fake, **settings):
    return flow.GenerateRequest(backend_type="webui-legacy", wrapper="chatml", conversation=Conversation.from_file(EXAMPLE_PATH),
                                settings=Settings(url=fake.url, timeout=10, **settings), params={"max_new_tokens": 64})


def test_webui_legacy_blocking_generate_needs_no_websocket():
    with fake_server("webui-legacy", ws=False) as fake:
        run = flow.generate(_legacy_request(fake))
        methods = [(r["method"], r["path"]) for r in fake.requests]
    assert ("POST", "/api/v1/generate") in methods and not [m for m in methods if m[0] == "WEBSOCKET"]
    assert run.raw == TEXT and run.request["method"] == "POST" and run.request["url"] == fake.url + "/api/v1/generate"
    assert run.usage["completion_tokens"] == 5 and run.finish_reason == "stop"


def test_webui_legacy_streams_on_the_configured_port_and_falls_back_when_it_refuses():
    with fake_server("webui-legacy") as fake:
        final, deltas = run("webui-legacy", fake, legacy_stream_port=fake.ws_port)
    assert final.request["method"] == "WEBSOCKET" and final.request["url"] == f"ws://127.0.0.1:{fake.ws_port}/api/v1/stream"
    assert len(deltas) == 8
    port = free_port()
    with fake_server("webui-legacy", ws=False) as fake:
        final, deltas = run("webui-legacy", fake, legacy_stream_port=port)
    assert deltas == [TEXT] and final.request["method"] == "POST"
    assert final.notes[0].startswith(f"cannot open the websocket ws://127.0.0.1:{port}/api/v1/stream")
    assert f"used the blocking {fake.url}/api/v1/generate instead" in final.notes[0] and "--legacy-stream-port" in final.notes[0]


def test_webui_legacy_from_the_cli_without_a_websocket():
    with fake_server("webui-legacy", ws=False) as fake:
        done = subprocess.run([sys.executable, "app.py", "generate", "--backend-type", "webui-legacy", "--backend-url",
                               fake.url, "--legacy-stream-port", "5999", "--wrapper", "chatml", "--conversation",
                               str(EXAMPLE_PATH), "--param", "max_new_tokens=64"], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["raw"] == TEXT


# --- a URL without a scheme, as MemGPT's README wrote OPENAI_API_BASE -----------------------------------------

def test_host_and_port_without_a_scheme_is_read_as_http_and_said():
    with fake_server("openai") as fake:
        typed = fake.url.removeprefix("http://")
        backend = backends.create("openai", Settings(url=typed, timeout=10))
        done = backend.complete(PROMPT, {"max_new_tokens": 2})
        status = backend.check()
    note = f"the backend URL '{typed}' has no scheme: read as http://{typed}"
    assert done.request["url"] == fake.url + "/v1/completions" and note in done.notes
    assert status.startswith(f"connected to {fake.url}") and note in status


def test_openai_api_base_without_a_scheme_works_from_the_environment():
    with fake_server("openai") as fake:
        env = {**os.environ, "OPENAI_API_BASE": fake.url.removeprefix("http://"), "BACKEND_TYPE": "openai"}
        done = subprocess.run([sys.executable, "app.py", "generate", "--wrapper", "chatml", "--conversation", str(EXAMPLE_PATH),
                               "--param", "max_new_tokens=2"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["raw"] == "Hello," and any("has no scheme: read as http://" in n for n in out["notes"])
