"""Property-based fuzzing of every registered parser: whatever a server sends (arbitrary text, tool-call
markers in any order, deep nesting, invalid UTF-8, 10 MB), a parser returns a ParseResult that the API
can serialise, within a time bound, and never raises."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import parsers
from parsers import ParseContext, ParseResult

CORPUS = [json.loads(line) for line in (Path(__file__).parent / "fixtures/parsers/dev_corpus.jsonl").read_text().splitlines()
          if line.strip()]
FUNCTIONS = [{"name": "get_weather", "description": "weather",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                                                              "hourly": {"type": "boolean"}}, "required": ["city"]}},
             {"name": "send_message", "parameters": {"type": "object", "properties": {"message": {"type": "string"}}}}]
SMALL_BOUND = 2.0  # seconds for an input of a few KB
BIG_BOUND = 15.0  # seconds for 10 MB on a slow, shared 2-core machine
FUZZ = settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

# pieces the parsers look for: tool-call markers of every family, JSON and Python punctuation, keys
MARKERS = [
    "<tool_call>", "</tool_call>", "[TOOL_CALLS]", "[ARGS]", "<|python_tag|>", "<|tool▁calls▁begin|>",
    "<|tool▁call▁begin|>", "<|tool▁sep|>", "<|tool▁call▁end|>", "<|tool▁calls▁end|>", "<function=", "</function>",
    "<parameter=", "</parameter>", "<|tool_calls_section_begin|>", "<|tool_call_begin|>", "<|tool_call_argument_begin|>",
    "<|tool_call_end|>", "<think>", "</think>", "<|im_end|>", "<|eot_id|>", "<|channel|>", "<|message|>", "<|call|>",
    "commentary to=functions.", "functools", "<|START_ACTION|>", "<|END_ACTION|>", "<tool_call|>", "<arg_key>",
    "</arg_key>", "<arg_value>", "</arg_value>", "```json", "```", "Action:", "FUNCTION", "<|recipient|>", ">>>",
    "{", "}", "[", "]", "(", ")", '"', "'", ":", ",", "=", "\\", "\\u", "\n", " ", "\t", "\x00", "\ufffd",
    '"name"', '"arguments"', '"function"', '"params"', '"parameters"', '"inner_thoughts"', "get_weather", "send_message",
    "true", "None", "NaN", "1e999", "-", "0x", "\ud7ff", "\U0001f600",
]
pieces = st.one_of(st.sampled_from(MARKERS), st.text(max_size=8), st.sampled_from([r["raw"] for r in CORPUS]))
marker_soup = st.lists(pieces, max_size=40).map("".join)
invalid_utf8 = st.binary(max_size=400).map(lambda b: b.decode("utf-8", errors="replace"))


DEPTHS = st.integers(1, 3000)


def nested(depth_strategy=DEPTHS):
    openers = st.sampled_from(['{"a": ', "[", '{"name": "get_weather", "arguments": ', "f(x=", "<tool_call>", "(", '"'])
    return st.tuples(openers, depth_strategy, st.booleans()).map(
        lambda t: t[0] * t[1] + ("".join({"{": "}", "[": "]", "(": ")"}.get(c, "") for c in reversed(t[0])) * t[1] if t[2] else ""))


def check(format_id: str, raw: str, bound: float = SMALL_BOUND, prefix: str = "") -> ParseResult:
    start = time.monotonic()
    result = parsers.parse(format_id, raw, ParseContext(prefix=prefix, functions=FUNCTIONS))
    elapsed = time.monotonic() - start
    assert isinstance(result, ParseResult)
    json.dumps(result.to_dict(), ensure_ascii=False)  # what the API and the page send back
    assert elapsed < bound, f"{format_id} took {elapsed:.2f} s on {len(raw):,} characters"
    for call in result.tool_calls:
        assert isinstance(call.name, str)
    return result


FORMATS = parsers.names()


@pytest.mark.parametrize("format_id", FORMATS)
@FUZZ
@given(raw=st.text(max_size=2000))
def test_arbitrary_text_never_raises(format_id, raw):
    check(format_id, raw)


@pytest.mark.parametrize("format_id", FORMATS)
@FUZZ
@given(raw=marker_soup, prefix=st.sampled_from(["", '\n{\n  "function":', "<tool_call>", "[TOOL_CALLS]"]))
def test_tool_call_markers_in_any_order_never_raise(format_id, raw, prefix):
    check(format_id, raw, prefix=prefix)


@pytest.mark.parametrize("format_id", FORMATS)
@FUZZ
@given(raw=st.one_of(invalid_utf8, nested()))
def test_invalid_utf8_and_deep_nesting_never_raise(format_id, raw):
    check(format_id, raw)


@pytest.mark.parametrize("format_id", FORMATS)
def test_pathological_nesting_never_raises(format_id):
    for raw in ("[" * 200_000, '{"a": ' * 100_000, "(" * 100_000, '<tool_call>{"name": "f", "arguments": ' + "[" * 100_000,
                "\\" * 100_000 + '"', '"' + "\\u" * 50_000):
        check(format_id, raw, bound=BIG_BOUND)


TEN_MB = 10_000_000


def _ten_megabytes(i: int) -> str:
    """10 MB that mixes prose, markers, an enormous argument and unclosed nesting."""
    call = '<tool_call>{"name": "get_weather", "arguments": {"city": "' + "x" * 1000 + '"}}</tool_call>\n'
    blocks = [("lorem ipsum " * 100) + "\n", call, "{" * 500 + "[" * 500, MARKERS[i % len(MARKERS)] * 50]
    text = "".join(blocks[(i + k) % len(blocks)] for k in range(4))
    return (text * (TEN_MB // len(text) + 1))[:TEN_MB]


@pytest.mark.parametrize("format_id", FORMATS)
def test_ten_megabytes_return_within_the_bound(format_id):
    check(format_id, _ten_megabytes(FORMATS.index(format_id)), bound=BIG_BOUND)


def test_every_registered_parser_is_fuzzed():
    assert len(FORMATS) >= 10 and "memgpt_inner_monologue" in FORMATS
