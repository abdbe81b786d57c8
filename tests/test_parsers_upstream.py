"""The held-out corpus (outputs taken from other projects' parser tests, never used to write the
parsers) scored as a whole, and one regression test per class of miss it showed: Qwen3-Coder value
layout, DeepSeek's alternative section openers, calls mentioned in reasoning, calls without an
arguments object, Llama 4's JSON calls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import parsers
from parsers import ParseContext
from parsers.deepseek import DS_BEGINS
from tests.test_parsers import CATALOGUE_IDS, PREFIXES, functions_for

FIXTURES = Path(__file__).parent / "fixtures" / "parsers"
GOAL = 0.98


def load(name: str) -> list[dict]:
    with (FIXTURES / name).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


UPSTREAM = load("upstream_corpus.jsonl")
ALL_CASES = load("dev_corpus.jsonl") + UPSTREAM


def miss(case: dict) -> str | None:
    """None when the case parses to its expected calls and content (as test_corpus_line scores),
    else what came back instead."""
    context = ParseContext(prefix=PREFIXES.get(case["format"], ""), functions=functions_for(case["expected"]))
    result = parsers.parse(case["format"], case["raw"], context)
    got = [{"name": c.name, "arguments": c.arguments} for c in result.tool_calls]
    if got == case["expected"] and result.content == case["content"]:
        return None
    return f"calls {got!r}, content {result.content!r}, error {result.error}"


def test_upstream_corpus_pass_rate():
    misses = [(i + 1, case, why) for i, case in enumerate(UPSTREAM) if (why := miss(case)) is not None]
    rate = 1 - len(misses) / len(UPSTREAM)
    print(f"\nupstream corpus: {len(UPSTREAM) - len(misses)}/{len(UPSTREAM)} = {rate:.1%}")
    for n, case, why in misses:
        print(f"  miss {n} {case['format']}: {case['note']}\n    got {why}")
    assert rate >= GOAL, f"{rate:.1%} of the upstream corpus parses as expected (goal {GOAL:.0%})"


def test_upstream_corpus_covers_only_catalogue_formats():
    assert {case["format"] for case in UPSTREAM} <= set(CATALOGUE_IDS)


# --- Qwen3-Coder values: the format's layout around a value is not part of it -------------------

STRING_FN = [{"name": "f", "parameters": {"type": "object", "properties": {"v": {"type": "string"}}}}]


def qwen3_value(body: str, format_id: str = "qwen3_coder_xml") -> object:
    open_, close = ("<seed:tool_call>", "</seed:tool_call>") if format_id == "seed_oss" else ("<tool_call>", "</tool_call>")
    raw = f"{open_}\n<function=f>\n<parameter=v>{body}</parameter>\n</function>\n{close}"
    result = parsers.parse(format_id, raw, ParseContext(functions=STRING_FN))
    assert len(result.tool_calls) == 1, result
    return result.tool_calls[0].arguments["v"]


@pytest.mark.parametrize("format_id", ["qwen3_coder_xml", "seed_oss"])
@pytest.mark.parametrize("body, value", [
    ("\nParis\n", "Paris"),  # the template's own layout: one newline each side
    ("\n  two leading spaces\n", "  two leading spaces"),  # ...inside which the value's whitespace is its own
    ("\nline\n\n", "line\n"),
    ("\n\n", ""),
    ("\n      Paris\n    ", "Paris"),  # pretty-printed: the call's indentation goes
    ("\n      She said \"Hi\" and 'bye'.\n    ", "She said \"Hi\" and 'bye'."),  # quotes are the value's
    ("\ndef f():\n    return 1\n    ", "def f():\n    return 1"),  # inner indentation stays
    ("\n        a\n          b\n    ", "a\n  b"),
    ("\n      \n    ", ""),  # only layout whitespace: empty
    ("\n    ", ""),
    ("glued", "glued"),
    ("glued\n", "glued"),
])
def test_qwen3_coder_value_layout(format_id, body, value):
    assert qwen3_value(body, format_id) == value


# --- DeepSeek: the call section opened by another spelling of its first marker -------------------

@pytest.mark.parametrize("format_id, call", [
    ("deepseek_v3", "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜>"),
    ("deepseek_v31", "<｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \"Paris\"}<｜tool▁call▁end｜>"),
])
@pytest.mark.parametrize("opener", DS_BEGINS)
def test_deepseek_section_openers_are_not_content(format_id, call, opener):
    result = parsers.parse(format_id, f"Checking.\n{opener}{call}<｜tool▁calls▁end｜>")
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert result.content == "Checking."


# --- a call mentioned in reasoning is not a call ---------------------------------------------------

# formats whose reasoning block is not <think>…</think>
REASONING_TAGS = {
    "seed_oss": ("<seed:think>", "</seed:think>"),
    "mistral_v3": ("[THINK]", "[/THINK]"), "mistral_v11": ("[THINK]", "[/THINK]"), "mistral_v13": ("[THINK]", "[/THINK]"),
    "command_r7b": ("<|START_THINKING|>", "<|END_THINKING|>"),
    "apertus": ("<|inner_prefix|>", "<|inner_suffix|>"),
    "gemma4": ("<|channel>", "<channel|>"),
}
# formats whose output cannot hold a reasoning block before its calls
NO_REASONING = {
    "plain": "no calls at all",
    "memgpt_inner_monologue": "the output continues a JSON object the prompt opened; its reasoning is inner_thoughts",
    "gpt_oss_harmony": "reasoning is the analysis channel (tested in test_parsers_unit)",
    "functionary_v2": "the output continues the recipient header the prompt opened",
    "functionary_v3_1": "the output continues the recipient header the prompt opened",
    "functionary_v3_2": "the output continues the recipient header the prompt opened",
    "functiongemma": "FunctionGemma is not a reasoning model; text before a call is content",
    "nexusraven_v2": "its reasoning is the Thought: after the call",
}


GET_TIME = [{"name": "get_time", "arguments": {}}]
# the formats the corpora hold no lone call for
EXTRA_SAMPLES = [
    {"format": "minimax_m1", "raw": '<tool_calls>\n{"name": "get_time", "arguments": {}}\n</tool_calls>', "expected": GET_TIME},
    {"format": "mistral_v13", "raw": "[TOOL_CALLS]get_time[CALL_ID]a1b2c3d4e[ARGS]{}", "expected": GET_TIME},
]


def one_call_samples() -> dict[str, dict]:
    """Per format, a corpus output that is exactly one call and nothing else."""
    samples: dict[str, dict] = {case["format"]: case for case in EXTRA_SAMPLES}
    for case in ALL_CASES:
        if len(case["expected"]) == 1 and case["content"] is None and "think" not in case["raw"].lower():
            samples.setdefault(case["format"], case)
    return samples


SAMPLES = one_call_samples()
REASONING_FORMATS = sorted(set(SAMPLES) - set(NO_REASONING))


def test_every_format_with_calls_is_checked_for_reasoning():
    unchecked = set(parsers.names()) - set(REASONING_FORMATS) - set(NO_REASONING)
    assert not unchecked, f"no one-call sample for {sorted(unchecked)}"


@pytest.mark.parametrize("format_id", REASONING_FORMATS)
@pytest.mark.parametrize("opened", [True, False], ids=["opened-in-output", "opened-by-prompt"])
def test_call_mentioned_in_reasoning_is_not_a_call(format_id, opened):
    """The same call text inside the reasoning and after it: one call. A closing tag without an
    opening one means the prompt opened the block, so everything before it is reasoning."""
    case = SAMPLES[format_id]
    open_tag, close_tag = REASONING_TAGS.get(format_id, ("<think>", "</think>"))
    raw = (open_tag if opened else "") + case["raw"] + close_tag + case["raw"]
    context = ParseContext(prefix=PREFIXES.get(format_id, ""), functions=functions_for(case["expected"]))
    result = parsers.parse(format_id, raw, context)
    assert [{"name": c.name, "arguments": c.arguments} for c in result.tool_calls] == case["expected"]
    assert result.content is None
    assert result.inner_thoughts


# --- calls without an arguments object ------------------------------------------------------------

@pytest.mark.parametrize("raw, calls", [
    ('Action: ```json\n[{"tool_name": "directly_answer"}]\n```', []),
    ('Action: ```json\n[{"tool_name": "get_time"}]\n```', [("get_time", {})]),
    ('Action: ```json\n[{"tool_name": "get_time"}, {"tool_name": "directly_answer"}]\n```', [("get_time", {})]),
])
def test_command_r_plus_call_without_parameters(raw, calls):
    result = parsers.parse("command_r_plus", raw)
    assert [(c.name, c.arguments) for c in result.tool_calls] == calls
    assert result.content is None and result.error is None


# --- Llama 4: its own template asks for (and writes history as) Llama-3 JSON ----------------------

@pytest.mark.parametrize("raw, content", [
    ('<|python_start|><|python_end|>{"name": "get_weather", "parameters": {"city": "Paris"}}', None),
    ('{"name": "get_weather", "parameters": {"city": "Paris"}}', None),
    ('<|python_start|>{"name": "get_weather", "parameters": {"city": "Paris"}}<|python_end|>', None),
    ('<|python_start|>Let me look.<|python_end|>{"name": "get_weather", "parameters": {"city": "Paris"}}', "Let me look."),
    ("<|python_start|>[get_weather(city='Paris')]<|python_end|>", None),
])
def test_llama4_reads_pythonic_and_json_calls(raw, content):
    result = parsers.parse("llama4_pythonic", raw)
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert result.content == content
