"""The OpenAI-compatible endpoint through the real `openai` SDK, against the launched app, with a scripted
completion server (tests/fakes: OpenAI /v1/completions, real SSE framing) as the start-up backend."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from contextlib import contextmanager

import httpx
import openai
import pytest

import wrappers
from backends.base import connection_message
from tests.conftest import ROOT, free_port
from tests.fakes import fake_server
from flow import traffic
from flow.startup import StartupConfig

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "The weather now in a city.", "parameters": {
    "type": "object", "properties": {"city": {"type": "string", "description": "The city."}}, "required": ["city"]}}}
SEND_MESSAGE = {"name": "send_message", "description": "Sends a message to the human user.", "parameters": {
    "type": "object", "properties": {"message": {"type": "string", "description": "Message contents."}}, "required": ["message"]}}
ASK = [{"role": "system", "content": "You answer about the weather."}, {"role": "user", "content": "Weather in Paris and Rome?"}]
TWO_CALLS = ['<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n',
             '<tool_call>\n{"name": "get_weather", ', '"arguments": {"city": "Rome"}}\n</tool_call>']
# what chatml (MemGPT) makes the model continue after its forced prefix `{\n  "function":`
MEMGPT_CALL = [' "send_message",\n  "params": {\n', '    "inner_thoughts": "Greet him.",\n', '    "message": "Hi Chad!"\n  }\n}']


@pytest.fixture(scope="module")
def served():
    """(app URL, the scripted server, the start-up config): the whole app as `python app.py` serves it."""
    from app import build_app, build_endpoint, launch

    with fake_server("openai", pieces=TWO_CALLS) as fake:
        config = StartupConfig(backend_type="openai", backend_url=fake.url)
        demo = build_app(config)
        _, url, _ = launch(demo, "127.0.0.1", free_port(), routes=build_endpoint(config), prevent_thread_lock=True)
        yield url.rstrip("/"), fake, config
        demo.close()


@pytest.fixture
def app(served):
    url, fake, config = served
    fake.opts.pop("fail", None)
    return url, fake, config


def client(url: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)


def rendered(wrapper: str, conversation: dict, tmp_path) -> str:
    """The prompt `python app.py render` prints for the conversation."""
    path = tmp_path / "conversation.json"
    path.write_text(json.dumps(conversation), encoding="utf-8")
    out = subprocess.run([sys.executable, "app.py", "render", "--wrapper", wrapper, "--conversation", str(path)], cwd=ROOT,
                         capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout.decode("utf-8")


def streamed(stream) -> dict:
    """A streamed answer put together as a client does; checks each call's first delta has its id and name."""
    content, calls, function_call, finish, usage = None, {}, None, None, None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            d = choice.delta
            if d.content:
                content = (content or "") + d.content
            for t in d.tool_calls or []:
                if t.index not in calls:
                    assert t.id and t.function.name, "a call's first delta carries its id and name"
                    calls[t.index] = {"id": t.id, "name": t.function.name, "arguments": t.function.arguments or ""}
                else:
                    assert t.function.name is None
                    calls[t.index]["arguments"] += t.function.arguments or ""
            if d.function_call:
                if function_call is None:
                    function_call = {"name": d.function_call.name, "arguments": ""}
                function_call["arguments"] += d.function_call.arguments or ""
            finish = choice.finish_reason or finish
    return {"content": content, "calls": [calls[i] for i in sorted(calls)], "function_call": function_call, "finish": finish,
            "usage": usage}


@contextmanager
def client_leaves_an_endless_backend(fake, failure: str):
    """The fake backend streams without end while the body runs a client that leaves; after it, the backend
    request must be closed (else: 'the backend {failure} after the client left') and the traffic say 499."""
    fake.opts.update(endless=True, delay=0.05)
    before = fake.events.count("disconnect")
    try:
        yield
        deadline = time.monotonic() + 10
        while fake.events.count("disconnect") == before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert fake.events.count("disconnect") > before, f"the backend {failure} after the client left"
    finally:
        fake.opts.pop("endless")
        fake.opts.pop("delay")
    deadline = time.monotonic() + 5
    while traffic.ring().entries()[0]["status"] != 499 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert traffic.ring().entries()[0]["status"] == 499


def test_models_are_the_wrapper_names(app):
    url, _, _ = app
    assert [m.id for m in client(url).models.list()] == wrappers.names()


def test_parallel_tool_calls_blocking_and_streamed_agree_and_the_prompt_is_what_render_makes(app, tmp_path):
    url, fake, _ = app
    fake.opts["pieces"] = TWO_CALLS
    answer = client(url).chat.completions.create(model="hermes-2-pro", messages=ASK, tools=[WEATHER])
    sent = fake.posts("/v1/completions")[-1]
    assert sent["prompt"] == rendered("hermes-2-pro", {"messages": ASK, "tools": [WEATHER]}, tmp_path)
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert [(c.type, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("function", "get_weather", {"city": "Paris"}), ("function", "get_weather", {"city": "Rome"})]
    assert len({c.id for c in calls}) == 2
    words = len(sent["prompt"].split())  # the scripted server counts words as tokens
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (words, len(TWO_CALLS))

    got = streamed(client(url).chat.completions.create(model="hermes-2-pro", messages=ASK, tools=[WEATHER], stream=True))
    assert fake.posts("/v1/completions")[-1]["stream"] is True
    assert [(c["name"], c["arguments"]) for c in got["calls"]] == [(c.function.name, c.function.arguments) for c in calls]
    assert (got["content"], got["finish"]) == (choice.message.content, "tool_calls")
    assert got["usage"].total_tokens == answer.usage.total_tokens


def test_legacy_functions_with_memgpt_inner_thoughts(app, tmp_path):
    url, fake, _ = app
    fake.opts["pieces"] = MEMGPT_CALL
    messages = [{"role": "system", "content": "You are Sam."}, {"role": "user", "content": "hi"}]
    answer = client(url).chat.completions.create(model="chatml", messages=messages, functions=[SEND_MESSAGE])
    assert fake.posts("/v1/completions")[-1]["prompt"] == rendered("chatml", {"messages": messages, "functions": [SEND_MESSAGE]},
                                                                    tmp_path)
    choice = answer.choices[0]
    assert choice.finish_reason == "function_call"
    assert (choice.message.function_call.name, json.loads(choice.message.function_call.arguments)) == ("send_message", {"message": "Hi Chad!"})
    assert choice.message.content == "Greet him."
    assert choice.message.tool_calls is None
    got = streamed(client(url).chat.completions.create(model="chatml", messages=messages, functions=[SEND_MESSAGE], stream=True))
    assert got["function_call"] == {"name": "send_message", "arguments": choice.message.function_call.arguments}
    assert (got["content"], got["finish"]) == ("Greet him.", "function_call")


def test_tool_results_are_rendered_and_text_streams_as_content(app, tmp_path):
    url, fake, _ = app
    fake.opts["pieces"] = ["It is", " sunny in", " Paris", " and rainy", " in Rome."]
    messages = ASK + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "rainy"}]}]
    answer = client(url).chat.completions.create(model="qwen2.5", messages=messages, tools=[WEATHER])
    flat = messages[:-1] + [{**messages[-1], "content": "rainy"}]  # text parts are joined, as the endpoint documents
    prompt = fake.posts("/v1/completions")[-1]["prompt"]
    assert prompt == rendered("qwen2.5", {"messages": flat, "tools": [WEATHER]}, tmp_path)
    assert "sunny" in prompt and "rainy" in prompt
    assert (answer.choices[0].message.content, answer.choices[0].finish_reason) == ("It is sunny in Paris and rainy in Rome.", "stop")
    stream = client(url).chat.completions.create(model="qwen2.5", messages=messages, tools=[WEATHER], stream=True)
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == answer.choices[0].message.content
    assert len(pieces) > 2, "text arrives in several deltas, not all at the end"


def test_sampling_fields_reach_the_backend(app):
    url, fake, config = app
    fake.opts["pieces"] = ["ok"]
    client(url).chat.completions.create(model="qwen2.5", messages=ASK, max_tokens=7, temperature=0.3, top_p=0.9, seed=11,
                                        presence_penalty=0.5, frequency_penalty=0.25, stop=["END"])
    sent = fake.posts("/v1/completions")[-1]
    assert (sent["max_tokens"], sent["temperature"], sent["top_p"], sent["seed"]) == (7, 0.3, 0.9, 11)
    assert (sent["presence_penalty"], sent["frequency_penalty"]) == (0.5, 0.25)
    assert "END" in sent["stop"] and "<|im_end|>" in sent["stop"], "the caller's stop strings add to the wrapper's"
    client(url).chat.completions.create(model="qwen2.5", messages=ASK, max_completion_tokens=3)
    assert fake.posts("/v1/completions")[-1]["max_tokens"] == 3
    with fake_server("llamacpp", pieces=["ok"]) as llama:  # the extras a llama.cpp server knows
        saved = config.backend_type, config.backend_url
        config.backend_type, config.backend_url = "llamacpp", llama.url
        try:
            client(url).chat.completions.create(model="qwen2.5", messages=ASK, extra_body={"top_k": 5, "min_p": 0.07})
        finally:
            config.backend_type, config.backend_url = saved
        sent = llama.posts("/completion")[-1]
    assert (sent["top_k"], sent["min_p"]) == (5, 0.07)


def test_a_parse_that_fails_returns_the_raw_text_and_says_why(app):
    url, fake, _ = app
    fake.opts["pieces"] = ["I will not", " write JSON."]
    messages = [{"role": "system", "content": "You are Sam."}, {"role": "user", "content": "hi"}]
    raw = client(url).chat.completions.with_raw_response.create(model="chatml", messages=messages, functions=[SEND_MESSAGE])
    assert raw.status_code == 200
    assert "JSON" in raw.headers["x-pfp-parse-error"]
    answer = raw.parse()
    assert answer.choices[0].message.content == "I will not write JSON."
    assert answer.choices[0].message.function_call is None
    entry = traffic.ring().entries()[0]
    assert entry["verdict"].startswith("parse failed") and entry["raw"] == "I will not write JSON."


def test_errors_come_in_openai_shape_with_their_status(app):
    url, fake, config = app
    sdk = client(url)
    with pytest.raises(openai.NotFoundError) as e:
        sdk.chat.completions.create(model="no-such-wrapper", messages=ASK)
    assert e.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as e:
        sdk.chat.completions.create(model="chatml", messages=[])
    assert "messages" in e.value.body["message"]
    bad = httpx.post(url + "/v1/chat/completions", content=b'{"model": "chatml", "messages": [', headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]["message"]
    with pytest.raises(openai.BadRequestError) as e:  # chatml needs a system message first: a template error
        sdk.chat.completions.create(model="chatml", messages=[{"role": "user", "content": "hi"}])
    assert e.value.body["code"] == "template_error" and "template line" in e.value.body["message"]
    fake.opts["fail"], fake.opts["fail_after"] = "error", 0
    with pytest.raises(openai.APIStatusError) as e:  # the backend fails: its sentence, 502
        sdk.chat.completions.create(model="qwen2.5", messages=ASK, stream=True)
    assert e.value.status_code == 502 and "generation failed" in e.value.body["message"]
    fake.opts.pop("fail")
    saved, config.backend_url = config.backend_url, f"http://127.0.0.1:{free_port()}"
    try:
        with pytest.raises(openai.APIStatusError) as e:
            sdk.chat.completions.create(model="qwen2.5", messages=ASK)
    finally:
        config.backend_url = saved
    assert e.value.status_code == 502 and "cannot connect" in e.value.body["message"]


def test_a_backend_timeout_is_a_504():
    from endpoint.translate import from_user_error
    from backends import BackendError

    error = from_user_error(BackendError(connection_message(httpx.ReadTimeout("timed out"), "http://127.0.0.1:9/v1/completions")))
    assert (error.status, error.body()["error"]["code"]) == (504, "backend_timeout")


def test_a_client_that_goes_away_aborts_the_backend_request(app):
    url, fake, _ = app
    with client_leaves_an_endless_backend(fake, "stream was not closed"):
        with httpx.stream("POST", url + "/v1/chat/completions", json={"model": "qwen2.5", "messages": ASK, "stream": True}) as r:
            lines = r.iter_lines()
            got = [next(lines) for _ in range(6)]
        assert any(line.startswith("data: ") for line in got)


def test_required_tool_choice_sends_the_derived_grammar_where_the_backend_takes_one(app):
    url, _, config = app
    with fake_server("llamacpp", pieces=['<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>']) as llama:
        saved = config.backend_type, config.backend_url
        config.backend_type, config.backend_url = "llamacpp", llama.url
        try:
            raw = client(url).chat.completions.with_raw_response.create(model="hermes-2-pro", messages=ASK, tools=[WEATHER],
                                                                        tool_choice="required")
            grammar = llama.posts("/completion")[-1]["grammar"]
            assert "get_weather" in grammar and "tool_call" in grammar
            assert "grammar sent" in raw.headers["x-pfp-notes"]
            assert raw.parse().choices[0].message.tool_calls[0].function.name == "get_weather"
            client(url).chat.completions.create(model="hermes-2-pro", messages=ASK, tools=[WEATHER])
            assert "grammar" not in llama.posts("/completion")[-1], "auto sends no grammar"
        finally:
            config.backend_type, config.backend_url = saved
    raw = client(url).chat.completions.with_raw_response.create(model="hermes-2-pro", messages=ASK, tools=[WEATHER],
                                                                tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert "openai backends do not take one" in raw.headers["x-pfp-notes"]


def test_the_key_is_required_once_set(app):
    url, fake, config = app
    fake.opts["pieces"] = ["ok"]
    config.api_key = "s3cret-key"
    try:
        with pytest.raises(openai.AuthenticationError):
            client(url, "wrong").models.list()
        assert client(url, "s3cret-key").chat.completions.create(model="qwen2.5", messages=ASK).choices[0].message.content == "ok"
    finally:
        config.api_key = ""
    assert "s3cret-key" not in json.dumps(traffic.ring().entries(), default=str)


def test_every_request_is_in_the_traffic_ring(app):
    url, fake, _ = app
    fake.opts["pieces"] = TWO_CALLS
    client(url).chat.completions.create(model="hermes-2-pro", messages=ASK, tools=[WEATHER])
    entry = traffic.ring().entries()[0]
    assert (entry["wrapper"], entry["status"], entry["verdict"]) == ("hermes-2-pro", 200, "2 calls: get_weather, get_weather")
    assert entry["prompt"] == fake.posts("/v1/completions")[-1]["prompt"]
    assert entry["raw"] == "".join(TWO_CALLS) and entry["parse"]["tool_calls"][1]["arguments"] == {"city": "Rome"}
    assert entry["response"]["choices"][0]["finish_reason"] == "tool_calls"
    assert entry["client"].startswith("127.0.0.1:") and entry["latency_ms"] > 0


GET_TIME = {"type": "function", "function": {"name": "get_time", "description": "The time now in a zone.", "parameters": {
    "type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}}}
WEATHER_THEN_TIME = ['<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n',
                     '<tool_call>\n{"name": "get_time", ', '"arguments": {"zone": "CET"}}\n</tool_call>']


def newest_finished() -> dict:
    """The newest traffic entry once its request ended (a stream's entry is finished just after its last event)."""
    deadline = time.monotonic() + 5
    while traffic.ring().entries()[0]["status"] == traffic.IN_PROGRESS and time.monotonic() < deadline:
        time.sleep(0.05)
    return traffic.ring().entries()[0]


def both(url: str, **request) -> tuple:
    """(the blocking answer with its headers, the streamed answer with its final chunk) for one request."""
    raw = client(url).chat.completions.with_raw_response.create(**request)
    chunks = list(client(url).chat.completions.create(stream=True, **request))
    return raw.parse(), raw.headers, streamed(iter(chunks)), chunks[-1]


def test_tool_choice_none_and_a_request_without_tools_never_answer_with_calls(app):
    url, fake, _ = app
    fake.opts["pieces"] = WEATHER_THEN_TIME
    text = "".join(WEATHER_THEN_TIME)
    answer, headers, got, last = both(url, model="hermes-2-pro", messages=ASK, tools=[WEATHER, GET_TIME], tool_choice="none")
    assert "get_time" in fake.posts("/v1/completions")[-1]["prompt"], "the tools are rendered, as OpenAI's model sees them"
    message = answer.choices[0].message
    assert (message.tool_calls, message.content, answer.choices[0].finish_reason) == (None, text, "stop")
    assert "tool_choice is none: returned as text" in headers["x-pfp-notes"]
    assert (got["calls"], got["content"], got["finish"]) == ([], text, "stop")
    assert "tool_choice is none" in last.model_extra["notes"][0]
    answer, headers, got, _ = both(url, model="qwen2.5", messages=ASK)
    assert answer.choices[0].message.tool_calls is None and answer.choices[0].message.content == text
    assert "the request offers no tools" in headers["x-pfp-notes"]
    assert got["calls"] == [] and got["content"] == text
    assert "returned as text" in newest_finished()["notes"][-1]


def test_a_named_tool_choice_without_a_grammar_drops_calls_to_other_functions(app):
    url, fake, _ = app
    fake.opts["pieces"] = WEATHER_THEN_TIME
    named = {"type": "function", "function": {"name": "get_time"}}
    answer, headers, got, last = both(url, model="hermes-2-pro", messages=ASK, tools=[WEATHER, GET_TIME], tool_choice=named)
    assert [c.function.name for c in answer.choices[0].message.tool_calls] == ["get_time"]
    assert "no grammar sent" in headers["x-pfp-notes"]
    assert "dropped 1 call(s) to other functions (get_weather): tool_choice names get_time" in headers["x-pfp-notes"]
    assert [(c["name"], c["arguments"]) for c in got["calls"]] == [("get_time", '{"zone": "CET"}')]
    assert "dropped 1 call(s)" in last.model_extra["notes"][0]


def test_parallel_tool_calls_false_keeps_the_first_call_and_says_so(app):
    url, fake, _ = app
    fake.opts["pieces"] = WEATHER_THEN_TIME
    answer, headers, got, last = both(url, model="hermes-2-pro", messages=ASK, tools=[WEATHER, GET_TIME],
                                      parallel_tool_calls=False)
    assert [c.function.name for c in answer.choices[0].message.tool_calls] == ["get_weather"]
    assert "kept the first 1 of 2 calls (get_weather, get_time): parallel_tool_calls is false" in headers["x-pfp-notes"]
    assert [c["name"] for c in got["calls"]] == ["get_weather"]
    assert "parallel_tool_calls is false" in last.model_extra["notes"][0]


def test_legacy_function_call_none_and_named(app):
    url, fake, _ = app
    fake.opts["pieces"] = MEMGPT_CALL
    messages = [{"role": "system", "content": "You are Sam."}, {"role": "user", "content": "hi"}]
    answer = client(url).chat.completions.with_raw_response.create(model="chatml", messages=messages, functions=[SEND_MESSAGE],
                                                                    function_call="none")
    message = answer.parse().choices[0].message
    assert message.function_call is None and message.content.startswith('"send_message"')
    assert "function_call is none: returned as text" in answer.headers["x-pfp-notes"]
    answer = client(url).chat.completions.create(model="chatml", messages=messages, functions=[SEND_MESSAGE],
                                                 function_call={"name": "send_message"})
    assert answer.choices[0].message.function_call.name == "send_message"
    with pytest.raises(openai.BadRequestError) as e:
        client(url).chat.completions.create(model="chatml", messages=messages, functions=[SEND_MESSAGE],
                                            function_call={"name": "nope"})
    assert "function_call names 'nope'" in e.value.body["message"]


def test_a_blocking_client_that_goes_away_aborts_the_backend_request(app):
    url, fake, _ = app
    with client_leaves_an_endless_backend(fake, "request went on"), pytest.raises(httpx.ReadTimeout):
        httpx.post(url + "/v1/chat/completions", json={"model": "qwen2.5", "messages": ASK}, timeout=1.0)


def test_a_request_is_in_the_traffic_while_it_runs(app):
    url, fake, _ = app
    fake.opts["pieces"], fake.opts["delay"] = ["It", " is", " sunny", " now."], 0.3
    try:
        with httpx.stream("POST", url + "/v1/chat/completions", json={"model": "qwen2.5", "messages": ASK, "stream": True,
                                                                       "temperature": 0.2, "max_tokens": 9}) as r:
            lines = r.iter_lines()
            next(lines)
            entry = traffic.ring().entries()[0]
            assert (entry["status"], entry["wrapper"], entry["latency_ms"] if "latency_ms" in entry else None) == (
                traffic.IN_PROGRESS, "qwen2.5", None)
            assert traffic.rows([entry])[0][4] == traffic.IN_PROGRESS
            version = traffic.ring().version
            list(lines)
    finally:
        fake.opts.pop("delay")
    assert traffic.ring().version > version and entry["status"] == 200 and entry["latency_ms"] > 0
    assert (entry["params"]["temperature"], entry["params"]["max_new_tokens"]) == (0.2, 9)


def test_a_time_out_is_told_by_the_error_before_its_wording():
    from backends import BackendError
    from endpoint.translate import from_user_error

    class Flagged(BackendError):
        timed_out = True

    assert from_user_error(Flagged("the server stopped sending")).status == 504
    try:
        try:
            raise httpx.ReadTimeout("read")
        except httpx.ReadTimeout:
            raise BackendError("no tokens from the server for 30 s") from None
    except BackendError as chained:
        assert from_user_error(chained).status == 504, "told by the httpx time-out it was raised from"
    assert from_user_error(BackendError("the first token did not come within the time limit (60 s)")).status == 504
    assert from_user_error(BackendError("the server answered HTTP 500: out of memory")).status == 502


def test_the_start_up_backends_own_key_reaches_it_and_nowhere_else(app):
    url, fake, config = app
    fake.opts["pieces"] = ["ok"]
    config.backend_api_key = "backend-s3cret"
    try:
        client(url).chat.completions.create(model="qwen2.5", messages=ASK)
        sent = fake.requests[-1]
    finally:
        config.backend_api_key = ""
    assert sent["path"] == "/v1/completions" and sent["headers"]["Authorization"] == "Bearer backend-s3cret"
    assert "backend-s3cret" not in json.dumps(traffic.ring().entries(), default=str)


def test_the_start_up_backend_flags_become_the_config():
    import cli

    args = cli._parser(StartupConfig()).parse_args(["--backend-type", "webui-legacy", "--backend-url", "http://h:5000",
                                                    "--backend-api-key", "k", "--backend-timeout", "30",
                                                    "--legacy-stream-port", "5015"])
    settings = cli.startup_config(args).backend_settings()
    assert (settings.url, settings.api_key, settings.timeout, settings.legacy_stream_port) == ("http://h:5000", "k", 30.0, 5015)
