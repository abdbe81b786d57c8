"""The page's cross-check functions on real runs of the embedded model."""

import json

from workbench import cross_checks, panels
from workbench.panels import PanelConfig

CONVERSATION = json.dumps({
    "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
    "functions": [{"name": "get_weather", "description": "Weather of a city",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}}, "required": ["city"]}}]})


def config(wrapper="hermes-2-pro", **values):
    return PanelConfig.from_values({"wrapper": wrapper, "template": panels.wrapper_view(wrapper)[0],
                                    "max_new_tokens": 16, **values})


def finished(cfg, conversation=CONVERSATION):
    *_, (raw, parsed, request, status, record) = panels.run_generation(cfg, conversation)
    assert record, status
    return record


def test_server_render_view_on_the_embedded_model():
    prompt, pairs, status = cross_checks.server_render_view(config("qwen2.5"), CONVERSATION)
    assert prompt.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert status.startswith("⚠ The server renders it differently: first difference at line 2")
    assert any(kind for _, kind in pairs)
    prompt, pairs, status = cross_checks.server_render_view(PanelConfig.from_values({"backend_type": "webui",
                                                                                     "url": "http://127.0.0.1:9"}), CONVERSATION)
    assert prompt == "" and pairs == [] and "no endpoint that renders" in status


def test_call_start_view_explains_a_real_run_with_probabilities():
    record = finished(config(probabilities=5))
    sentence, rows = cross_checks.call_start_view(record)
    assert sentence.startswith(("The model chose text", "The model called", "The output holds"))
    assert all(len(row) == 6 for row in rows)
    assert cross_checks.call_start_view(None) == ("Run this panel first.", [])


def test_call_start_view_of_a_memgpt_run_says_the_prompt_forced_the_call():
    memgpt = json.dumps({**json.loads(CONVERSATION), "messages": [{"role": "system", "content": "You are MemGPT."},
                                                                 {"role": "user", "content": "Hi"}]})
    sentence, _ = cross_checks.call_start_view(finished(config("chatml"), memgpt))
    assert sentence.startswith("The prompt ends inside the call")


def test_failing_case_view_exports_json_and_markdown():
    cfg = config()
    record = finished(cfg)
    case_json, report, status = cross_checks.failing_case_view(record, cfg.wrapper, cfg.template, CONVERSATION,
                                                               expected_json='[{"name": "get_weather", "arguments": {"city": "Paris"}}]')
    case = json.loads(case_json)
    assert status.startswith("✅") and case["raw"] == record["raw"] and case["prompt"] == record["prompt"]
    assert case["expected"] == [{"name": "get_weather", "arguments": {"city": "Paris"}}] and record["raw"] in report
    assert cross_checks.failing_case_view(record, cfg.wrapper, cfg.template, CONVERSATION, expected_json="{")[2].startswith("❌")
    assert "must be a JSON list" in cross_checks.failing_case_view(record, cfg.wrapper, cfg.template, CONVERSATION,
                                                                   expected_json='{"name": "f"}')[2]
