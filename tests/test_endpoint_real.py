"""The endpoint with real parts: the real `openai` SDK against the launched app, whose start-up backend is llama.cpp's
own `llama-server` with the SmolLM2-135M GGUF (greedy sampling, so a request sent twice gets the same output)."""

from __future__ import annotations

import json

import openai
import pytest

import flow
from core.conversation import Conversation
from flow import streaming, traffic
from flow.startup import StartupConfig
from tests.conftest import free_port

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "The weather now in a city.", "parameters": {
    "type": "object", "properties": {"city": {"type": "string", "description": "The city."}}, "required": ["city"]}}}
SEND_MESSAGE = {"name": "send_message", "description": "Sends a message to the human user.", "parameters": {
    "type": "object", "properties": {"message": {"type": "string", "description": "Message contents."}}, "required": ["message"]}}
ASK = [{"role": "system", "content": "You answer about the weather."}, {"role": "user", "content": "What is the weather in Paris?"}]
GREEDY = {"temperature": 0, "seed": 7}


@pytest.fixture(scope="module")
def sdk(llama_server):
    from app import build_app, build_endpoint, launch

    config = StartupConfig(backend_type="llamacpp", backend_url=llama_server)
    demo = build_app(config)
    _, url, _ = launch(demo, "127.0.0.1", free_port(), routes=build_endpoint(config), prevent_thread_lock=True)
    yield openai.OpenAI(base_url=url.rstrip("/") + "/v1", api_key="unused", max_retries=0, timeout=600)
    demo.close()


def assembled(stream) -> tuple[dict, int]:
    """(the message a client builds from the chunks, how many argument fragments came before the final chunk)."""
    content, calls, function_call, fragments, finish = None, {}, None, 0, None
    for chunk in stream:
        for choice in chunk.choices:
            d = choice.delta
            content = (content or "") + d.content if d.content else content
            for t in d.tool_calls or []:
                calls.setdefault(t.index, {"name": t.function.name, "arguments": ""})
                calls[t.index]["arguments"] += t.function.arguments or ""
                fragments += bool(t.function.arguments)
            if d.function_call:
                function_call = function_call or {"name": d.function_call.name, "arguments": ""}
                function_call["arguments"] += d.function_call.arguments or ""
                fragments += bool(d.function_call.arguments)
            finish = choice.finish_reason or finish
    return {"content": content, "calls": [calls[i] for i in sorted(calls)], "function_call": function_call,
            "finish": finish}, fragments


def test_required_tool_choice_gives_a_valid_call_from_the_small_model_streamed_as_blocking(sdk):
    request = dict(model="hermes-2-pro", messages=ASK, tools=[WEATHER], tool_choice="required", max_tokens=64, **GREEDY)
    raw = sdk.chat.completions.with_raw_response.create(**request)
    assert "grammar sent: hermes format" in raw.headers["x-pfp-notes"]
    answer = raw.parse().choices[0]
    assert answer.finish_reason == "tool_calls"
    (call,) = answer.message.tool_calls
    arguments = json.loads(call.function.arguments)
    assert call.type == "function" and call.id.startswith("call_") and call.function.name == "get_weather"
    assert list(arguments) == ["city"] and isinstance(arguments["city"], str)

    got, fragments = assembled(sdk.chat.completions.create(stream=True, **request))
    assert got["calls"] == [{"name": "get_weather", "arguments": call.function.arguments}]
    assert (got["content"], got["finish"]) == (answer.message.content, "tool_calls")
    assert fragments >= 3, "the arguments arrive in fragments while the model writes them"
    entry = traffic.ring().entries()[0]
    assert entry["status"] == 200 and entry["backend_request"]["json"]["grammar"]


def test_a_tool_result_turn_renders_as_the_app_renders_it_and_the_answer_is_the_parse_of_the_output(sdk):
    messages = ASK + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 24 degrees."}]
    answer = sdk.chat.completions.create(model="qwen2.5", messages=messages, tools=[WEATHER], max_tokens=12, **GREEDY)
    entry = traffic.ring().entries()[0]
    sent = entry["backend_request"]["json"]["prompt"]
    assert sent == flow.render("qwen2.5", Conversation.from_data({"messages": messages, "tools": [WEATHER]}))
    assert "Sunny, 24 degrees." in sent
    expected = streaming.answer(flow.parse(entry["raw"], "qwen2.5"), entry["raw"])
    message = answer.choices[0].message
    assert message.content == expected.content
    assert [(c.function.name, c.function.arguments) for c in message.tool_calls or []] == [
        (c.name, c.arguments) for c in expected.calls]
    assert answer.usage.completion_tokens <= 12 and answer.usage.prompt_tokens > 20


def test_legacy_functions_memgpt_style_with_a_named_function_call(sdk):
    messages = [{"role": "system", "content": "You are Sam, a friendly companion."}, {"role": "user", "content": "hi, I am Chad"}]
    request = dict(model="chatml", messages=messages, functions=[SEND_MESSAGE], function_call={"name": "send_message"},
                   max_tokens=96, **GREEDY)
    raw = sdk.chat.completions.with_raw_response.create(**request)
    assert "grammar sent: memgpt format" in raw.headers["x-pfp-notes"]
    answer = raw.parse().choices[0]
    assert answer.finish_reason == "function_call" and answer.message.tool_calls is None
    assert answer.message.function_call.name == "send_message"
    assert isinstance(json.loads(answer.message.function_call.arguments)["message"], str)
    assert answer.message.content, "MemGPT's inner thoughts are the assistant's text"

    got, fragments = assembled(sdk.chat.completions.create(stream=True, **request))
    assert got["function_call"] == {"name": "send_message", "arguments": answer.message.function_call.arguments}
    assert (got["content"], got["finish"]) == (answer.message.content, "function_call")
    assert fragments >= 2
