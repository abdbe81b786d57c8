"""A failing run exported as a corpus line with its context, and as a Markdown report."""

import json

import parsers
import wrappers
from core.conversation import Conversation
from flow import failing_case
from parsers import ParseContext

CONVERSATION = Conversation(
    messages=[{"role": "user", "content": "Weather in Paris?"}],
    functions=[{"name": "get_weather", "description": "Weather of a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}],
    now="2024-07-26")
RAW = 'Checking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}\n</tool_call>'


def record(raw=RAW):
    wrapper = wrappers.get("hermes-2-pro")
    return {"prompt": wrapper.render(CONVERSATION), "raw": raw, "parsed": wrapper.parse(raw, CONVERSATION).to_dict(),
            "backend_type": "llamacpp", "finish_reason": "stop", "params": {"temperature": 0}}


def test_the_case_is_a_corpus_line_the_parser_test_can_read():
    expected = [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    case = json.loads(failing_case.to_json(failing_case.build(record(), "hermes-2-pro", None, CONVERSATION, expected)))
    assert {"format", "raw", "expected", "content", "source", "note"} <= set(case)
    result = parsers.parse(case["format"], case["raw"], ParseContext(functions=CONVERSATION.functions))
    assert [{"name": c.name, "arguments": c.arguments} for c in result.tool_calls] == case["expected"]


def test_the_case_renders_again_to_the_same_prompt():
    case = failing_case.build(record(), "hermes-2-pro", None, CONVERSATION)
    again = Conversation.from_data(case)  # the case is also a conversation file
    assert wrappers.get(case["wrapper"]).render(again, case["template"]) == case["prompt"]
    assert case["expected"] is None and "fill in" in case["note"]


def test_an_edited_template_is_kept_and_said():
    template = wrappers.get("hermes-2-pro").template + "{# edited #}"
    case = failing_case.build(record(), "hermes-2-pro", template, CONVERSATION)
    assert case["template"] == template and "(template edited)" in case["source"]


def test_the_report_quotes_output_and_prompt_byte_exact_even_with_backticks():
    raw = "```json\n{\"name\": \"get_weather\"}\n```` and more"
    case = failing_case.build(record(raw), "hermes-2-pro", None, CONVERSATION, [{"name": "get_weather", "arguments": {}}])
    report = failing_case.to_markdown(case)
    assert "`````text\n" + raw + "\n`````" in report  # a fence longer than the longest run of backticks inside
    assert case["prompt"] in report
    assert '**Expected calls:** `[{"name": "get_weather", "arguments": {}}]`' in report
    assert "python app.py parse --format hermes" in report
