"""Every parse is validated against the functions' JSON schemas; the result lists what it found."""

from __future__ import annotations

import json

import parsers
import wrappers
from parsers import Check, ParseContext, ParseResult, ToolCall
import flow
from core.conversation import Conversation

WEATHER = [{
    "name": "get_weather", "description": "Weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                                                    "unit": {"type": "string", "enum": ["c", "f"]}},
                   "required": ["city"]},
}]
KEYS = ["content", "inner_thoughts", "tool_calls", "function_call", "repairs", "error", "checks"]


def messages(result: ParseResult) -> list[str]:
    return [c.message for c in result.checks]


def test_valid_call_has_no_checks_and_dict_keeps_its_keys():
    r = parsers.parse("hermes", '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
                      ParseContext(functions=WEATHER))
    assert r.error is None and r.checks == []
    d = r.to_dict()
    assert list(d) == KEYS
    assert d["tool_calls"] == [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    assert d["function_call"] == {"name": "get_weather", "arguments": {"city": "Paris"}}
    json.dumps(d)  # serialisable for the CLI and the API


def test_unknown_name_missing_argument_and_type_mismatch_per_call():
    raw = ('<tool_call>\n{"name": "get_wether", "arguments": {"city": "Paris"}}\n</tool_call>\n'
           '<tool_call>\n{"name": "get_weather", "arguments": {"days": "3", "unit": "k"}}\n</tool_call>')
    r = parsers.parse("hermes", raw, ParseContext(functions=WEATHER))
    assert len(r.tool_calls) == 2
    assert r.problems(0) == ["unknown function 'get_wether'"]
    second = r.problems(1)
    assert "missing required argument 'city'" in second
    assert "argument 'days' should be integer, got string" in second
    assert any("unit" in m and "one of" in m for m in second)
    assert all(c.source == "schema" for c in r.checks)
    assert [c["call"] for c in r.to_dict()["checks"]] == [0, 1, 1, 1]


def test_no_functions_no_checks():
    r = parsers.parse("hermes", '<tool_call>{"name": "anything", "arguments": {}}</tool_call>', ParseContext())
    assert r.tool_calls and r.checks == []


def test_every_format_is_validated_through_parse():
    samples = {
        "hermes": '<tool_call>{"name": "get_weather", "arguments": {"days": 2}}</tool_call>',
        "mistral_v3": '[TOOL_CALLS] [{"name": "get_weather", "arguments": {"days": 2}}]',
        "pythonic": "[get_weather(days=2)]",
        "llama3_json": '{"name": "get_weather", "parameters": {"days": 2}}',
        "qwen3_coder_xml": "<tool_call>\n<function=get_weather>\n<parameter=days>\n2\n</parameter>\n</function>\n</tool_call>",
        "functools": 'functools[{"name": "get_weather", "arguments": {"days": 2}}]',
    }
    for fmt, raw in samples.items():
        r = parsers.parse(fmt, raw, ParseContext(functions=WEATHER))
        assert r.tool_calls, fmt
        assert "missing required argument 'city'" in messages(r), (fmt, r.to_dict())


def test_wrapper_parse_and_bare_format_both_validate():
    conv = Conversation(messages=[{"role": "user", "content": "hi"}], functions=WEATHER)
    r = flow.parse('<tool_call>{"name": "nope", "arguments": {}}</tool_call>', format_id="hermes", conversation=conv)
    assert messages(r) == ["unknown function 'nope'"]
    r = wrappers.get("qwen2.5").parse('<tool_call>{"name": "get_weather", "arguments": {"city": 7}}</tool_call>', conv)
    assert messages(r) == ["argument 'city' should be string, got integer"]


def test_memgpt_string_arguments_and_null_name_are_reported():
    # MemGPT passes these through; the check says what is wrong instead of failing
    conv = Conversation(messages=[{"role": "user", "content": "hi"}], functions=WEATHER)
    checks = parsers.schema_checks([ToolCall(None, {}), ToolCall("get_weather", "city=Paris")], conv.functions)
    assert [c.call for c in checks] == [0, 1]
    assert "no function name" in checks[0].message
    assert "should be an object, got string" in checks[1].message


def test_invalid_schema_is_a_check_not_a_crash():
    bad = [{"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "no-such-type"}}}}]
    r = parsers.parse("hermes", '<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>', ParseContext(functions=bad))
    assert r.tool_calls and r.error is None
    assert len(r.checks) == 1 and "invalid" in r.checks[0].message


def test_tools_shape_functions_are_understood():
    tools = [{"type": "function", "function": WEATHER[0]}]
    r = parsers.parse("hermes", '<tool_call>{"name": "get_weather", "arguments": {"city": "P"}}</tool_call>',
                      ParseContext(functions=tools))
    assert r.checks == []


def test_check_dataclass_round_trip():
    c = Check("memgpt_heartbeat", "m", call=0, change={"request_heartbeat": True})
    r = ParseResult(tool_calls=[ToolCall("f", {})], checks=[c])
    assert r.to_dict()["checks"] == [{"source": "memgpt_heartbeat", "message": "m", "call": 0,
                                      "change": {"request_heartbeat": True}}]
