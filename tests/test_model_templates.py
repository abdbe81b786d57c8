"""Built-in model wrappers render byte for byte what the models' own chat templates render.

Goldens: tests/fixtures/templates/render_golden.jsonl (copied from the shared fixtures), one record
per (model, conversation) with the exact `prompt`, or the `error` the model's template raised.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import wrappers
from core.conversation import Conversation

GOLDEN = Path(__file__).parent / "fixtures" / "templates" / "render_golden.jsonl"
RECORDS = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines() if line.strip()]
MODEL_WRAPPERS = sorted({r["wrapper"] for r in RECORDS})
PROMPTING_WRAPPERS = ["gorilla_openfunctions_v2", "xlam", "pythonic"]


def _id(record: dict) -> str:
    return f"{record['wrapper']}-{record['conversation_id']}"


@pytest.mark.parametrize("record", RECORDS, ids=_id)
def test_golden_render(record):
    wrapper = wrappers.get(record["wrapper"])
    conversation = Conversation.from_data(record["input"])
    if "error" in record:
        with pytest.raises(wrappers.TemplateError) as excinfo:
            wrapper.render(conversation)
        assert str(excinfo.value).strip(), "a refusal must say why"
    else:
        assert wrapper.render(conversation) == record["prompt"]


@pytest.mark.parametrize("record", [r for r in RECORDS if "prompt" in r], ids=_id)
def test_render_survives_stripped_template(record):
    """The page's editor strips the template; the prompt must not change."""
    wrapper = wrappers.get(record["wrapper"])
    template = wrapper.template
    assert template == template.lstrip(), "a template must not begin with whitespace"
    conversation = Conversation.from_data(record["input"])
    prompt = wrapper.render(conversation)
    assert wrapper.render(conversation, template.strip()) == prompt
    assert prompt.endswith(wrapper.assistant_prefix), "the prompt ends with the prefix the parser puts back"


@pytest.mark.parametrize("name", MODEL_WRAPPERS + PROMPTING_WRAPPERS)
def test_builtin_wrapper_metadata(name):
    wrapper = wrappers.get(name)
    assert wrapper.builtin and wrapper.name == name
    assert wrapper.description and wrapper.models
    assert wrapper.parser and wrapper.parser != "plain"
    assert wrapper.stop, "each model wrapper names its end-of-turn stop strings"
    assert wrapper.template == wrapper.template.lstrip()


def test_every_model_of_the_goldens_has_a_wrapper():
    assert len(MODEL_WRAPPERS) == 20
    for name in MODEL_WRAPPERS:
        wrappers.get(name)


# The refusals say why, in words a user can act on.
@pytest.mark.parametrize("name, messages, tools, fragment", [
    ("gemma2", [{"role": "system", "content": "Be nice."}, {"role": "user", "content": "Hi"}], None, "System role not supported"),
    ("hermes-2-pro", [{"role": "user", "content": "Hi"}], None, "needs tools"),
    ("mistral-nemo", [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], None, "alternate"),
    ("llama3.1", [{"role": "user", "content": "Paris and Rome?"},
                  {"role": "assistant", "content": None, "tool_calls": [
                      {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": {}}},
                      {"id": "call_2", "type": "function", "function": {"name": "f", "arguments": {}}}]}],
     None, "single tool-calls"),
    ("functionary-v3.2", [{"role": "user", "content": "Hi"},
                          {"role": "assistant", "content": None, "tool_calls": [
                              {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]}],
     None, "JSON string"),
])
def test_refusals_explain_themselves(name, messages, tools, fragment):
    data = {"messages": messages}
    if tools:
        data["tools"] = tools
    with pytest.raises(wrappers.TemplateError) as excinfo:
        wrappers.get(name).render(Conversation.from_data(data))
    assert fragment in str(excinfo.value)


PROMPTING_CONVERSATION = {
    "messages": [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"days\": [1, true, null]}"}}]},
        {"role": "tool", "tool_call_id": "c1", "name": "get_weather", "content": "{\"temp\": 21}"},
        {"role": "user", "content": "And Zürich?"},
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Get the weather",
                                                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
}


@pytest.mark.parametrize("name, expected", [
    ("gorilla_openfunctions_v2", [
        "You are helpful.\n### Instruction: <<question>>Weather in Paris?\n",
        '### Response: get_weather(city="Paris", days=[1, True, None])\n<<function_result>>{"temp": 21}\n',
        '### Instruction: <<function>>[{"name": "get_weather", "description": "Get the weather", "parameters": '
        '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]\n<<question>>And Zürich?\n### Response: ',
    ]),
    ("xlam", [
        "make calls in a single JSON array",
        '<|im_start|>assistant\n[{"name": "get_weather", "arguments": {"city": "Paris", "days": [1, true, null]}}]<|im_end|>\n',
        '<|im_start|>tool\n{"temp": 21}<|im_end|>\n',
    ]),
    ("pythonic", [
        "please respond with a python list of the calls",
        '<|im_start|>assistant\n[get_weather(city="Paris", days=[1, True, None])]<|im_end|>\n',
        "<|im_start|>user\n<tool_response>\n{\"temp\": 21}\n</tool_response><|im_end|>\n",
    ]),
])
def test_prompting_wrappers(name, expected):
    wrapper = wrappers.get(name)
    conversation = Conversation.from_data(PROMPTING_CONVERSATION)
    prompt = wrapper.render(conversation)
    for fragment in expected:
        assert fragment in prompt
    assert wrapper.render(conversation, wrapper.template.strip()) == prompt
    assert prompt.endswith("### Response: " if name == "gorilla_openfunctions_v2" else "<|im_start|>assistant\n")


def test_gorilla_single_turn_matches_the_reference_prompt():
    """gorilla's inference code: f"{system}\\n### Instruction: <<function>>{json.dumps(functions)}\\n<<question>>{query}\\n### Response: " """
    functions = PROMPTING_CONVERSATION["tools"][0]["function"]
    conversation = Conversation.from_data({"messages": [{"role": "user", "content": "Weather in Zürich?"}], "functions": [functions]})
    wrapper = wrappers.get("gorilla_openfunctions_v2")
    system = wrapper.variables["system_message"]
    assert wrapper.render(conversation) == (
        f"{system}\n### Instruction: <<function>>{json.dumps([functions])}\n<<question>>Weather in Zürich?\n### Response: ")
    plain = Conversation.from_data({"messages": [{"role": "user", "content": "Hi"}]})
    assert wrapper.render(plain) == f"{system}\n### Instruction: <<question>> Hi\n### Response: "
