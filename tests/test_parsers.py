"""Corpus test for the tool-call parsers: each line's raw output must give the expected calls
(names and arguments) and the expected visible content; plus every catalogue format id must have
a registered parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import parsers
from parsers import ParseContext

CORPUS = Path(__file__).parent / "fixtures" / "parsers" / "dev_corpus.jsonl"

# the format ids of fc_formats.md §1 (first column), in catalogue order
CATALOGUE_IDS = [
    "hermes", "qwen3_coder_xml", "seed_oss", "glm45", "minimax_m1", "minimax_m2", "kimi_k2",
    "deepseek_v3", "deepseek_v31", "deepseek_v32_dsml", "mistral_v3", "mistral_v11", "mistral_v13",
    "llama3_json", "llama3_builtin", "pythonic", "llama4_pythonic", "olmo3", "lfm2",
    "gpt_oss_harmony", "granite3", "granite_20b_fc", "internlm2", "jamba", "xlam", "functools",
    "phi4_mini_tags", "functionary_v2", "functionary_v3_1", "functionary_v3_2", "command_r_plus",
    "command_r7b", "hunyuan_a13b", "longcat", "step3", "gigachat3", "apertus", "nemotron_v2",
    "apriel", "gemma4", "functiongemma", "gorilla_openfunctions_v2", "nexusraven_v2",
    "memgpt_inner_monologue", "llamacpp_generic",
]


# what the wrapper's prompt ends with for formats whose output continues a prefilled prompt
PREFIXES = {"memgpt_inner_monologue": '\n{\n  "function":'}


def load_corpus() -> list[dict]:
    with CORPUS.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object", list: "array"}


def functions_for(expected: list[dict]) -> list[dict]:
    """JSON-schema functions matching the expected calls (what the source tests declared)."""
    functions: dict[str, dict] = {}
    for call in expected:
        f = functions.setdefault(call["name"], {"name": call["name"], "description": "",
                                                "parameters": {"type": "object", "properties": {}}})
        for key, value in call["arguments"].items():
            t = _TYPES.get(type(value))
            f["parameters"]["properties"][key] = {"type": t} if t else {}
    return list(functions.values())


CASES = load_corpus()


def test_every_catalogue_format_has_a_parser():
    missing = [fid for fid in CATALOGUE_IDS if fid not in parsers.names()]
    assert not missing, f"no parser registered for {missing}"


def test_corpus_covers_only_catalogue_formats():
    assert {case["format"] for case in CASES} <= set(CATALOGUE_IDS)


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{i + 1}-{c['format']}" for i, c in enumerate(CASES)]
)
def test_corpus_line(case):
    context = ParseContext(prefix=PREFIXES.get(case["format"], ""), functions=functions_for(case["expected"]))
    result = parsers.parse(case["format"], case["raw"], context)
    got = [{"name": c.name, "arguments": c.arguments} for c in result.tool_calls]
    assert got == case["expected"], f"{case['note']}\nerror: {result.error}"
    assert result.content == case["content"]
    if not case["expected"] and result.error is not None:
        assert result.error.position is None or 0 <= result.error.position <= len(case["raw"])


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{i + 1}-{c['format']}-untyped" for i, c in enumerate(CASES)]
)
def test_corpus_line_without_schemas_does_not_crash(case):
    result = parsers.parse(case["format"], case["raw"], ParseContext())
    assert not (result.error and "parser failed" in result.error.message), result.error
