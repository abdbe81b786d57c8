"""MemGPT's first-message verification and heartbeat correction, marked in the parse result."""

from __future__ import annotations

import json

import pytest

import wrappers
from parsers import ParseError, ParseResult, ToolCall
from parsers.memgpt_checks import FIRST, HEARTBEAT, first_message_problems, heartbeat_checks, memgpt_checks
from core.conversation import Conversation, example

SYSTEM = {"role": "system", "content": "You are Sam."}


def user_event(kind: str = "user_message", message: str = "hi") -> dict:
    return {"role": "user", "content": json.dumps({"type": kind, "message": message, "time": "now"})}


def conv(*messages, first_message=None, functions=None) -> Conversation:
    variables = {} if first_message is None else {"first_message": first_message}
    return Conversation(messages=[SYSTEM, *messages], functions=functions or example().functions,
                        template_variables=variables)


def call(fn: str, thoughts: str = "Greeting the user.", **params) -> str:
    """Raw output after chatml's forced prefix `{\\n  "function":`."""
    body = {"inner_thoughts": thoughts, **params}
    return f' "{fn}",\n  "params": {json.dumps(body)}\n}}'


def sources(result) -> list[str]:
    return [c.source for c in result.checks]


# ------------------------------------------------------------------ first-message verification


def test_first_message_good_reply_passes():
    c = conv(user_event("login"), first_message=True)
    # on the first message the prompt ends inside '"function": "send_message",'
    r = wrappers.get("chatml").parse('\n  "params": {"inner_thoughts": "A new user. Be warm.", "message": "Hi!"}\n}', c)
    assert r.error is None and r.tool_calls[0].name == "send_message"
    assert FIRST not in sources(r)


def test_first_message_must_call_send_message():
    c = conv(user_event("login"), first_message=True)
    # noforce wrappers leave the function open even on the first message
    raw = ' "A new user.",\n  "function": "core_memory_append",\n  "params": {"name": "human", "content": "x"}\n}'
    r = wrappers.get("chatml-noforce").parse(raw, c)
    assert r.error is None and r.tool_calls[0].name == "core_memory_append"
    firsts = [x.message for x in r.checks if x.source == FIRST]
    assert len(firsts) == 1 and "core_memory_append" in firsts[0] and "send_message" in firsts[0]


@pytest.mark.parametrize("thoughts, fragment", [
    ("I will call send_message now", "'send_message'"),
    ("Let me check my functions", "'functions'"),
    ("User said \"hi\" (nice)", '( ) "'),
    ("Plan: {greet}", "{ }"),
    ("List [a]", "[ ]"),
])
def test_first_message_monologue_rejections(thoughts, fragment):
    r = ParseResult(content=thoughts, inner_thoughts=thoughts, tool_calls=[ToolCall("send_message", {"message": "Hi"})])
    problems = first_message_problems(r)
    assert problems and any(fragment in p for p in problems), problems


def test_first_message_accepts_archival_memory_search_like_memgpt_final():
    r = ParseResult(content="Looking things up", inner_thoughts="Looking things up",
                    tool_calls=[ToolCall("archival_memory_search", {"query": "name"})])
    assert first_message_problems(r) == []


def test_first_message_without_a_call_and_with_a_parse_error():
    no_call = ParseResult(content="Just thinking", inner_thoughts="Just thinking")
    assert "calls no function" in first_message_problems(no_call)[0]
    assert first_message_problems(ParseResult(error=ParseError("bad json"))) == []  # MemGPT raised before verifying


def test_first_message_check_only_when_the_variable_is_true():
    raw = call("send_message", thoughts="calling send_message (now)", message="Hi")
    assert FIRST not in sources(wrappers.get("chatml").parse(raw, conv(user_event())))
    assert FIRST not in sources(wrappers.get("chatml").parse(raw, conv(user_event(), first_message=False)))


def test_first_message_flag_from_the_wrapper_prefix_path():
    # with first_message the forced prefix already names send_message; a monologue with quotes is still rejected
    c = conv(user_event("login"), first_message=True)
    r = wrappers.get("llama3").parse('\n  "params": {"inner_thoughts": "He said \\"hi\\"", "message": "Hi!"}\n}', c)
    assert r.error is None
    assert [x.source for x in r.checks] == [FIRST] and '"' in r.checks[0].message


# ------------------------------------------------------------------ heartbeat correction


def test_heartbeat_injected_after_a_user_message():
    c = conv(user_event(message="My name is Brad"))
    r = wrappers.get("chatml").parse(call("core_memory_append", name="human", content="Brad"), c)
    hb = [x for x in r.checks if x.source == HEARTBEAT]
    assert len(hb) == 1 and hb[0].change == {"request_heartbeat": True} and hb[0].call == 0
    assert "was missing" in hb[0].message
    # the schema check says the same argument is missing
    assert "missing required argument 'request_heartbeat'" in r.problems(0)
    assert r.to_dict()["checks"][-1]["change"] == {"request_heartbeat": True}


def test_heartbeat_false_is_overridden_and_true_is_left():
    c = conv(user_event())
    r = wrappers.get("chatml").parse(call("core_memory_append", name="human", content="x", request_heartbeat=False), c)
    hb = [x for x in r.checks if x.source == HEARTBEAT][0]
    assert hb.change == {"request_heartbeat": True} and "was false" in hb.message
    r = wrappers.get("chatml").parse(call("core_memory_append", name="human", content="x", request_heartbeat=True), c)
    hb = [x for x in r.checks if x.source == HEARTBEAT][0]
    assert hb.change is None and "already true" in hb.message


@pytest.mark.parametrize("name", ["send_message", "pause_heartbeats"])
def test_no_heartbeat_functions(name):
    r = wrappers.get("chatml").parse(call(name, message="hi", minutes=5), conv(user_event()))
    assert HEARTBEAT not in sources(r)


@pytest.mark.parametrize("last", [
    {"role": "function", "name": "core_memory_append", "content": '{"status": "OK"}'},
    user_event("heartbeat"),
    {"role": "user", "content": "plain text, not a MemGPT event"},
])
def test_heartbeat_only_after_a_user_message(last):
    r = wrappers.get("chatml").parse(call("core_memory_append", name="human", content="x"), conv(last))
    assert HEARTBEAT not in sources(r)


def test_heartbeat_where_memgpt_itself_would_fail():
    r = ParseResult(tool_calls=[ToolCall("core_memory_append", {"name": "human"})])
    checks = heartbeat_checks(r, [{"role": "user", "content": '{"message": "no type"}'}])
    assert len(checks) == 1 and "KeyError" in checks[0].message and checks[0].change is None


def test_memgpt_checks_only_for_memgpt_wrappers():
    c = conv(user_event(), first_message=True)
    r = wrappers.get("qwen2.5").parse('<tool_call>{"name": "core_memory_append", "arguments": {}}</tool_call>', c)
    assert set(sources(r)) == {"schema"}


def test_memgpt_checks_function_combines_both():
    r = ParseResult(content="Using functions", inner_thoughts="Using functions",
                    tool_calls=[ToolCall("core_memory_append", {"name": "human", "content": "x"})])
    checks = memgpt_checks(r, [user_event()], first_message=True)
    assert [c.source for c in checks] == [FIRST, FIRST, HEARTBEAT]
