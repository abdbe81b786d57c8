"""The MemGPT wrappers and parser against goldens recorded by running MemGPT itself (f0bc6487).

What the goldens hold is described in tests/fixtures/memgpt/README.md. Prompts must match byte for
byte; parses must give the same call and monologue, or fail where MemGPT raised.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import wrappers
from parsers.memgpt import CleanJSONError, clean_json
from core.conversation import Conversation
from wrappers.render import TemplateError

FIXTURES = Path(__file__).parent / "fixtures" / "memgpt"


def _json(name: str):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def _jsonl(name: str) -> list[dict]:
    lines = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


CONVERSATIONS = _json("conversations.json")
REGISTRY = _json("wrappers.json")["wrapper_names"]
RENDER = _jsonl("render_golden.jsonl")
PARSE = _jsonl("parse_golden.jsonl")
CLEAN = _jsonl("clean_json_golden.jsonl")
SUMMARY = _jsonl("simple_summary_golden.jsonl")
FIXED = ["llama3-fixed", "zephyr-7B-fixed", "dolphin-2.1-mistral-7b-fixed"]
OURS = [*REGISTRY, "simple-summary", *FIXED]

# MemGPT's default stop strings (memgpt/local_llm/settings/simple.py)
MEMGPT_STOP = ["\nUSER:", "\nASSISTANT:", "\nFUNCTION RETURN:", "\nUSER", "\nASSISTANT", "\nFUNCTION RETURN",
               "\nFUNCTION", "\nFUNC", "<|im_start|>", "<|im_end|>", "<|im_sep|>", "\n### ", "\n#", "  }\n}\n"]


def _conversation(conversation_id: str, first_message: bool = False, **overrides) -> Conversation:
    data = CONVERSATIONS[conversation_id] | overrides | {"template_variables": {"first_message": first_message}}
    return Conversation.from_data(data)


def _id(record: dict) -> str:
    case = record.get("conversation_id") or record.get("raw_id")
    return f"{record.get('wrapper', record.get('kind'))}-{case}-{'first' if record.get('first_message') else 'later'}"


@pytest.mark.parametrize("name", OURS)
def test_every_wrapper_is_a_builtin(name):
    wrapper = wrappers.get(name)
    assert wrapper.builtin and wrapper.description
    assert not wrapper.template[0].isspace()


@pytest.mark.parametrize("name", [*REGISTRY, "simple-summary"])
def test_stop_strings_are_memgpts(name):
    assert wrappers.get(name).stop == MEMGPT_STOP


@pytest.mark.parametrize("record", RENDER, ids=_id)
def test_render_matches_memgpt(record):
    wrapper = wrappers.get(record["wrapper"])
    conversation = _conversation(record["conversation_id"], record["first_message"])
    if "error" in record:
        with pytest.raises(TemplateError):
            wrapper.render(conversation)
    else:
        assert wrapper.render(conversation) == record["prompt"]


def test_missing_description_is_explained():
    with pytest.raises(TemplateError, match="parameter 'nickname' of function 'update_user_profile' has no description"):
        wrappers.get("chatml").render(_conversation("c08_optional_params_without_description"))


@pytest.mark.parametrize("record", PARSE, ids=_id)
def test_parse_matches_memgpt(record):
    conversation = Conversation(messages=[], template_variables={"first_message": record["first_message"]})
    result = wrappers.get(record["wrapper"]).parse(record["raw"], conversation)
    if "error" in record:
        assert result.error is not None and not result.tool_calls
        return
    golden = record["result"]
    assert result.error is None
    assert result.content == (golden["content"] if isinstance(golden["content"], str) else None)
    assert result.inner_thoughts == golden["content"]
    call = golden.get("function_call")
    if call is None:
        assert result.tool_calls == []
    else:
        assert [(c.name, c.arguments) for c in result.tool_calls] == [(call["name"], json.loads(call["arguments"]))]


@pytest.mark.parametrize("record", CLEAN, ids=_id)
def test_clean_json_cascade(record):
    if "error" in record:
        with pytest.raises(CleanJSONError):
            clean_json(record["raw"])
    else:
        value, _ = clean_json(record["raw"])
        assert value == record["result"]


@pytest.mark.parametrize("record", [r for r in SUMMARY if r["kind"] == "render"], ids=_id)
def test_summary_render(record):
    # MemGPT asserts that the summary call has no functions ("functions": "none" means None)
    functions = CONVERSATIONS[record["conversation_id"]]["functions"] if record["functions"] == "as_given" else []
    conversation = _conversation(record["conversation_id"], functions=functions)
    wrapper = wrappers.get("simple-summary")
    if "error" in record:
        with pytest.raises(TemplateError):
            wrapper.render(conversation)
    else:
        assert wrapper.render(conversation) == record["prompt"]


@pytest.mark.parametrize("record", [r for r in SUMMARY if r["kind"] == "parse"], ids=_id)
def test_summary_parse(record):
    result = wrappers.get("simple-summary").parse(record["raw"])
    assert result.error is None and not result.tool_calls
    # MemGPT keeps an empty answer as ""; the plain parser reports it as no content
    assert result.content == (record["result"]["content"] or None)


@pytest.mark.parametrize("name", OURS)
def test_template_survives_editor_strip(name):
    """The page's editor strips the template; that must not change a single byte of the prompt."""
    wrapper = wrappers.get(name)
    rendered = 0
    for conversation_id, data in CONVERSATIONS.items():
        for first_message in (False, True):
            functions = [] if name == "simple-summary" else data["functions"]
            conversation = _conversation(conversation_id, first_message, functions=functions)
            try:
                prompt = wrapper.render(conversation)
            except TemplateError:
                continue
            assert wrapper.render(conversation, wrapper.template.strip()) == prompt
            rendered += 1
    assert rendered


def test_fixed_llama3_closes_every_header():
    prompt = wrappers.get("llama3-fixed").render(_conversation("c04_memory_edit_heartbeat_chain"))
    assert prompt.count("<|start_header_id|>") == prompt.count("<|end_header_id|>\n\n") == 11
    assert "<|eot_id|>\n" not in prompt
    assert prompt.endswith('<|start_header_id|>assistant<|end_header_id|>\n\n{\n  "function":')


def test_fixed_zephyr_has_system_turn_and_closed_turns():
    prompt = wrappers.get("zephyr-7B-fixed").render(_conversation("c03_boot_sequence_login"))
    assert prompt.startswith("<|system|>\n")
    assert "<|user|>\n<|user|>" not in prompt
    # system, assistant call, function result and user login: every turn closed
    assert prompt.count("</s>") == 4
    assert prompt.endswith("<|assistant|>\n{")


def test_fixed_dolphin_closes_function_results_and_shows_user_text():
    prompt = wrappers.get("dolphin-2.1-mistral-7b-fixed").render(_conversation("c11_tool_calls_and_tool_role"))
    assert prompt.count("<|im_start|>") == prompt.count("<|im_end|>") + 1  # all but the open final turn
    assert "<|im_start|>user\nRemember that my favourite colour is teal" in prompt
    assert '"function": "archival_memory_search"' in prompt


def test_parse_reports_repairs_and_positions():
    chatml = wrappers.get("chatml")
    truncated = chatml.parse(' "send_message",\n  "params": {\n    "inner_thoughts": "Hi.",\n    "message": "Hello"\n  }\n')
    assert truncated.error is None and truncated.repairs == ["appended '}' to close a truncated object"]
    assert truncated.inner_thoughts == "Hi." and truncated.tool_calls[0].arguments == {"message": "Hello"}

    prose = chatml.parse("Sure!")
    assert prose.error is not None and prose.error.position == 0

    missing = wrappers.get("chatml-noforce").parse(' "x", "function": "send_message", "params": {}')
    assert missing.error is None and missing.tool_calls[0].name == "send_message"
    assert 'missing the "params" field' in wrappers.get("chatml").parse('\n{\n  "function": "send_message"}').error.message


def test_llama3_strips_leaked_eot():
    result = wrappers.get("llama3").parse(' "send_message", "params": {"inner_thoughts": "t", "message": "m"}}<|eot_id|>\n')
    assert result.error is None and "removed a trailing <|eot_id|> stop token" in result.repairs
