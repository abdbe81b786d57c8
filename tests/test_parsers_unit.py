"""Focused tests of the shared parsing steps: reasoning, JSON repair naming, truncation, schema
typing, ast safety, validation, and speed on huge / adversarial outputs."""

from __future__ import annotations

import time

import pytest

import parsers
from parsers import ParseContext, ToolCall
from parsers.toolkit.json_text import load_json, scan_json
from parsers.toolkit.python_calls import PyCallError, python_calls
from parsers.toolkit.schema import cast_value
from parsers.validate import validate_calls

WEATHER = [{
    "name": "get_weather",
    "description": "",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string"}, "days": {"type": "integer"}, "ratio": {"type": "number"},
            "metric": {"type": "boolean"}, "tags": {"type": "array"}, "where": {"type": "object"},
            "code": {"type": "string"},
        },
        "required": ["city"],
    },
}]


def parse(fid, raw, functions=None, prefix=""):
    return parsers.parse(fid, raw, ParseContext(prefix=prefix, functions=functions or []))


def calls(result):
    return [(c.name, c.arguments) for c in result.tool_calls]


# ---------------------------------------------------------------- reasoning


def test_fake_call_inside_think_is_ignored():
    r = parse("hermes", '<think>maybe <tool_call>{"name": "fake", "arguments": {}}</tool_call></think>'
                        'Sure.<tool_call>{"name": "real", "arguments": {"a": 1}}</tool_call>')
    assert calls(r) == [("real", {"a": 1})]
    assert r.inner_thoughts.startswith("maybe")
    assert r.content == "Sure."


def test_think_opened_in_the_prompt():
    r = parse("qwen3_coder_xml", "plan it</think>\n\n<tool_call>\n<function=f>\n<parameter=x>\n1\n</parameter>\n</function>\n</tool_call>")
    assert r.inner_thoughts == "plan it"
    assert calls(r) == [("f", {"x": 1})]


def test_unclosed_think_calls_are_real_for_kimi():
    r = parse("kimi_k2", '<think>need it<|tool_call_begin|>functions.f:0<|tool_call_argument_begin|>{"a": 1}')
    assert calls(r) == [("f", {"a": 1})]
    assert r.inner_thoughts == "need it"


@pytest.mark.parametrize("fid,raw", [
    ("mistral_v11", '[THINK]x [TOOL_CALLS]fake[ARGS]{}[/THINK][TOOL_CALLS]real[ARGS]{"a": 1}'),
    ("seed_oss", "<seed:think><seed:tool_call><function=fake></function></seed:tool_call></seed:think>"
                 "<seed:tool_call><function=real><parameter=a>1</parameter></function></seed:tool_call>"),
    ("command_r7b", '<|START_THINKING|><|START_ACTION|>[{"tool_name": "fake", "parameters": {}}]<|END_ACTION|>'
                    '<|END_THINKING|><|START_ACTION|>[{"tool_name": "real", "parameters": {"a": 1}}]<|END_ACTION|>'),
    ("gpt_oss_harmony", '<|channel|>analysis<|message|>call fake<|end|><|start|>assistant<|channel|>commentary '
                        'to=functions.real <|constrain|>json<|message|>{"a": 1}<|call|>'),
    ("gemma4", '<|channel>thought\n<|tool_call>call:fake{}<tool_call|><channel|><|tool_call>call:real{a:1}<tool_call|>'),
    ("apertus", '<|inner_prefix|><|tools_prefix|>[{"fake": {}}]<|tools_suffix|><|inner_suffix|>'
                '<|tools_prefix|>[{"real": {"a": 1}}]<|tools_suffix|>'),
])
def test_reasoning_markers_of_each_family(fid, raw):
    r = parse(fid, raw)
    assert calls(r) == [("real", {"a": 1})]
    assert r.inner_thoughts


# ---------------------------------------------------------------- content


def test_prose_before_between_and_after_calls():
    r = parse("glm45", "A <tool_call>f\n<arg_key>x</arg_key>\n<arg_value>1</arg_value>\n</tool_call> B "
                       "<tool_call>g</tool_call> C")
    assert calls(r) == [("f", {"x": 1}), ("g", {})]
    assert r.content == "A\nB\nC"


def test_end_of_turn_tokens_are_not_content():
    r = parse("llama3_json", '{"name": "f", "parameters": {}}<|eom_id|>')
    assert calls(r) == [("f", {})] and r.content is None


def test_prefix_is_prepended_and_positions_stay_raw():
    r = parse("functionary_v2", 'get_weather\n<|content|>{"city": "Pa', prefix="<|recipient|>")
    assert r.tool_calls == [] and r.error is not None
    assert 0 <= r.error.position <= len('get_weather\n<|content|>{"city": "Pa')


# ---------------------------------------------------------------- JSON repair and truncation


def test_valid_json_has_no_repair_entry():
    r = parse("hermes", '<tool_call>{"name": "f", "arguments": {"a": 1}}</tool_call>')
    assert r.repairs == [] and r.error is None


def test_repairs_are_named():
    r = parse("hermes", '<tool_call>{"name": "f", "arguments": {"a": 1,},}</tool_call>')
    assert calls(r) == [("f", {"a": 1})]
    assert len(r.repairs) == 1 and "json-repair" in r.repairs[0] and "call 1" in r.repairs[0]
    assert "trailing comma" in r.repairs[0]


def test_missing_closing_brackets_are_repaired_and_named():
    r = parse("mistral_v3", '[TOOL_CALLS][{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {"y": 2}]')
    assert calls(r) == [("a", {"x": 1}), ("b", {"y": 2})]
    assert "missing closing bracket" in r.repairs[0]


def test_python_literals_in_json_are_repaired():
    r = parse("hermes", "<tool_call>{'name': 'f', 'arguments': {'on': True, 'v': None}}</tool_call>")
    assert calls(r) == [("f", {"on": True, "v": None})]
    assert r.repairs


def test_double_encoded_arguments_are_decoded():
    r = parse("hermes", '<tool_call>{"name": "f", "arguments": "{\\"a\\": 1}"}</tool_call>')
    assert calls(r) == [("f", {"a": 1})]


@pytest.mark.parametrize("fid,raw,position", [
    ("hermes", 'Hi <tool_call>{"name": "f", "arguments": {"city": "Par', 3),
    ("mistral_v11", 'x[TOOL_CALLS]f[ARGS]{"a": "b', 1),
    ("kimi_k2", '<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0<|tool_call_argument_begin|>{"a"',
     len("<|tool_calls_section_begin|>")),
    ("qwen3_coder_xml", "ok <tool_call>\n<function=f>\n<parameter=a>\n1", 3),
    ("glm45", "<tool_call>f\n<arg_key>a</arg_key>\n<arg_value>1</arg_value>", 0),
    ("pythonic", "[f(a='x", 0),
    ("gemma4", "<|tool_call>call:f{a:<|\"|>x", 0),
    ("deepseek_v3", '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{"a": "b',
     len("<｜tool▁calls▁begin｜>")),
])
def test_truncated_call_is_an_error_with_its_position(fid, raw, position):
    r = parse(fid, raw)
    assert r.tool_calls == []
    assert r.error is not None and "truncated" in r.error.message
    assert r.error.position == position


def test_truncated_array_keeps_complete_calls():
    raw = '<|tool_call|>[{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"x": "cut'
    r = parse("granite3", raw)
    assert calls(r) == [("a", {})]
    assert r.error.position == raw.index('{"name": "b"')


def test_cut_after_a_complete_value_is_repaired_not_truncated():
    r = parse("llamacpp_generic", '{"tool_call": {"name": "f", "arguments": {"a": "x",')
    assert calls(r) == [("f", {"a": "x"})] and r.repairs


def test_scan_json_states():
    assert scan_json('{"a": "b').truncated
    assert scan_json('{"a"').truncated
    assert scan_json('{"a":').truncated
    assert not scan_json('{"a": 1,').truncated
    assert scan_json('{"a": 1, }').trailing_commas == 1


def test_invalid_json_stays_text():
    raw = '{"name": "invalidTool", "parameters": {invalid json}'
    r = parse("llama3_json", raw)
    assert r.tool_calls == [] and r.content == raw


def test_load_json_refuses_huge_invalid_input_quickly():
    t = time.time()
    loaded = load_json("{" * 2_000_000)
    assert not loaded.ok and time.time() - t < 2


# ---------------------------------------------------------------- schema typing


@pytest.mark.parametrize("param,text,value", [
    ("city", '"foo"', '"foo"'),
    ("city", "5123123", "5123123"),
    ("days", "3", 3),
    ("ratio", "2.5", 2.5),
    ("metric", "True", True),
    ("tags", '["a", "b"]', ["a", "b"]),
    ("where", '{"lat": 1}', {"lat": 1}),
    ("days", "three", "three"),
])
def test_cast_value_by_schema(param, text, value):
    assert cast_value(WEATHER, "get_weather", param, text) == value


def test_cast_value_unknown_function_best_effort():
    assert cast_value([], "nope", "x", "12") == 12
    assert cast_value([], "nope", "x", "Paris") == "Paris"
    assert cast_value([], "nope", "x", '{"a": 1}') == {"a": 1}


def test_xml_values_keep_inner_newlines_and_strip_one():
    raw = "<tool_call>\n<function=get_weather>\n<parameter=code>\n\n  x = 1\n\n</parameter>\n<parameter=days>\n4\n</parameter>\n</function>\n</tool_call>"
    r = parse("qwen3_coder_xml", raw, WEATHER)
    assert calls(r) == [("get_weather", {"code": "\n  x = 1\n", "days": 4})]


def test_dsml_string_attribute():
    raw = ('<｜DSML｜function_calls>\n<｜DSML｜invoke name="get_weather">\n'
           '<｜DSML｜parameter name="city" string="true">42</｜DSML｜parameter>\n'
           '<｜DSML｜parameter name="days" string="false">3</｜DSML｜parameter>\n'
           '</｜DSML｜invoke>\n</｜DSML｜function_calls>')
    assert calls(parse("deepseek_v32_dsml", raw)) == [("get_weather", {"city": "42", "days": 3})]


# ---------------------------------------------------------------- Python calls via ast


def test_ast_never_executes(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    payload = f"[__import__('os').system('touch {marker}')]"
    for fid in ("pythonic", "llama4_pythonic", "gorilla_openfunctions_v2", "nexusraven_v2", "lfm2", "olmo3"):
        raw = {"nexusraven_v2": "Call: " + payload[1:-1], "olmo3": f"<function_calls>{payload[1:-1]}</function_calls>",
               "lfm2": f"<|tool_call_start|>{payload}<|tool_call_end|>"}.get(fid, payload)
        r = parse(fid, raw)
        assert all(c.name != "__import__" for c in r.tool_calls)
    assert not marker.exists()
    with pytest.raises(PyCallError):
        python_calls("[f(x=open('/etc/passwd').read())]")


def test_python_literals_and_json_literals():
    got, _ = python_calls("[f(a=None, b=True, c=null, d=false, e=-2, f=[1, (2, 3)], g={'k': 'v'})]")
    assert got == [("f", {"a": None, "b": True, "c": None, "d": False, "e": -2, "f": [1, [2, 3]], "g": {"k": "v"}})]


def test_positional_arguments_are_mapped_with_the_schema():
    r = parse("pythonic", "[get_weather('Paris', 3)]", WEATHER)
    assert calls(r) == [("get_weather", {"city": "Paris", "days": 3})]
    assert any("positional" in x for x in r.repairs)


def test_nested_call_is_kept_as_text():
    r = parse("nexusraven_v2", "Call: outer(x=inner(y=1))<bot_end>\nThought: because")
    assert calls(r) == [("outer", {"x": "inner(y=1)"})]
    assert r.inner_thoughts == "because"


# ---------------------------------------------------------------- validation


def test_validate_calls_messages():
    problems = validate_calls(
        [ToolCall("nope", {}), ToolCall("get_weather", {"days": "3"}), ToolCall("get_weather", {"city": "P"})],
        WEATHER,
    )
    assert problems[0] == ["unknown function 'nope'"]
    assert "missing required argument 'city'" in problems[1]
    assert "argument 'days' should be integer, got string" in problems[1]
    assert problems[2] == []


# ---------------------------------------------------------------- robustness


ADVERSARIAL = {
    "braces": "{" * 2_000_000,
    "quotes": '"' * 2_000_000,
    "name-objects": '{"name": ' * 200_000,
    "openers": "<tool_call>" * 200_000,
    "python": "[f(" * 500_000,
    "calls": '<tool_call>{"name": "a", "arguments": {"x": 1}}</tool_call>' * 30_000,
}


@pytest.mark.parametrize("fid", sorted(set(parsers.names()) - {"memgpt_inner_monologue", "plain"}))
def test_parsers_never_raise_and_stay_fast(fid):
    for label, raw in ADVERSARIAL.items():
        t = time.time()
        r = parse(fid, raw)
        assert not (r.error and "parser failed" in r.error.message), (label, r.error)
        assert time.time() - t < 5, (fid, label)
    for raw in ("", " ", "\x00", "<", "{", "[", "```", "<tool_call>", "[TOOL_CALLS]", "<|python_tag|>"):
        r = parse(fid, raw)
        assert not (r.error and "parser failed" in r.error.message), (raw, r.error)


def test_runaway_generation_after_end_of_turn_is_ignored():
    r = parse("hermes", '<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call><|im_end|>\n'
                        "<|im_start|>user\n<tool_response>\n{}\n</tool_response>")
    assert calls(r) == [("f", {})] and r.content is None
    assert any("<|im_end|>" in x for x in r.repairs)


def test_unclosed_garbage_is_text_not_a_truncated_call():
    raw = "hello world[A(A=\t)A(A=,\t)A(A=,\t"
    r = parse("pythonic", raw)
    assert r.tool_calls == [] and r.error is None and r.content == raw.strip()


# ---------------------------------------------------------------- size limits are said, not silent


@pytest.mark.parametrize("fid,raw,position", [
    ("pythonic", '[get_weather(city="' + "x" * 1_000_001 + '")]', 0),
    ("pythonic", 'get_weather(city="' + "x" * 1_000_001 + '")', 0),
    ("pythonic", 'Sure: [get_weather(city="' + "x" * 1_000_001 + '")]', 6),
    ("gorilla_openfunctions_v2", 'get_weather(city="' + "x" * 1_000_001 + '")', 0),
    ("olmo3", '<function_calls>get_weather(city="' + "x" * 1_000_001 + '")</function_calls>', 16),
])
def test_a_python_call_too_long_to_read_is_an_error_with_its_position(fid, raw, position):
    r = parse(fid, raw)
    assert r.tool_calls == []
    assert r.error is not None and "characters long" in r.error.message and "1,000,000" in r.error.message
    assert r.error.position == position
    if fid != "olmo3":
        assert len(r.content) == len(raw)  # the text is kept, not dropped


def test_bare_json_too_large_to_repair_says_so():
    raw = '{"name": "get_weather", "arguments": {"city": "' + "x" * 200_000 + '",}}'
    r = parse("hermes", raw)
    assert r.tool_calls == []
    assert r.error is not None and "too large to repair" in r.error.message
    assert r.content == raw


def test_prose_scan_that_gives_up_says_where():
    junk = '{"name": oops} ' * 80
    r = parse("llama3_json", junk + '{"name": "f", "parameters": {}}')
    assert r.error is not None and "stopped looking" in r.error.message
    assert r.error.position == junk.index('{"name"', 64 * len('{"name": oops} '))


# ---------------------------------------------------------------- call-start markers


def test_every_format_has_call_markers():
    for fid in parsers.names():
        markers = parsers.call_markers(fid)
        assert all(isinstance(m, str) and m.strip() for m in markers), fid
        assert bool(markers) == (fid != "plain"), fid


@pytest.mark.parametrize("fid,expected", [
    ("hermes", "<tool_call>"), ("mistral_v3", "[TOOL_CALLS]"), ("mistral_v11", "[TOOL_CALLS]"),
    ("llama3_json", "<|python_tag|>"), ("llama3_json", '{"name"'), ("llama3_builtin", "<|python_tag|>"),
    ("kimi_k2", "<|tool_calls_section_begin|>"), ("deepseek_v3", "<｜tool▁calls▁begin｜>"),
    ("gpt_oss_harmony", "to=functions."), ("functionary_v3_1", "<function="), ("pythonic", "["),
    ("llamacpp_generic", '{"tool_call"'), ("memgpt_inner_monologue", '"function":'),
])
def test_call_markers_of_known_formats(fid, expected):
    assert expected in parsers.call_markers(fid)


def test_call_markers_of_an_unknown_format_is_a_user_error():
    with pytest.raises(parsers.UnknownParser):
        parsers.call_markers("nope")
