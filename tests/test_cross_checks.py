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


def test_replay_view_streams_a_run_again_at_every_chunk_size():
    raw = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    text = cross_checks.replay_view({"raw": raw, "wrapper": "hermes-2-pro"}, CONVERSATION)
    assert text.startswith("✅ The same answer (get_weather) at every chunk size.")
    assert "| 1 | get_weather |" in text and "| whole | get_weather |" in text
    cut = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Par'  # stopped inside the call
    text = cross_checks.replay_view({"raw": cut, "wrapper": "hermes-2-pro"}, CONVERSATION)
    assert text.startswith("⚠ Streamed, the output does not always give the whole output's answer")
    assert cross_checks.replay_view(None, CONVERSATION) == "Run this panel first."


def test_the_parsed_call_builds_while_the_output_streams():
    """A scripted llama.cpp server streams a call token by token: the parsed view grows before the end."""
    from tests.fakes import fake_server

    pieces = ['<tool_call>', '\n{"name": "get_weather", ', '"arguments": {"city": "', 'Par', 'is"}}', '\n</tool_call>']
    with fake_server("llamacpp", pieces=pieces, delay=0.05) as fake:
        cfg = config(backend_type="llamacpp", url=fake.url)
        updates = list(panels.run_generation(cfg, CONVERSATION))
    partial = [parsed for _, parsed, _, _, record in updates if parsed and record is None]
    assert partial and all(p["streaming"] for p in partial)
    assert any(p["tool_calls"] and p["tool_calls"][0]["name"] == "get_weather" for p in partial)
    final = updates[-1][1]
    assert final["tool_calls"] == [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    arguments = [p["tool_calls"][0]["arguments"] for p in partial if p["tool_calls"]]
    assert all('{"city": "Paris"}'.startswith(a) for a in arguments)  # fragments only ever grow


def test_tokenizing_a_prompt_with_another_models_special_tokens_says_so():
    rows, summary = panels.prompt_tokens(config("llama3.1"), CONVERSATION)
    assert "'<|start_header_id|>'" in summary and "reads it as plain text" in summary
    rows, summary = panels.prompt_tokens(config("qwen2.5"), CONVERSATION)  # ChatML: SmolLM2's own tokens
    assert "⚠" not in summary


def test_the_time_limits_and_the_streaming_port_reach_the_backend_settings():
    settings = config(timeout=30, first_token_timeout=5, token_timeout=2, legacy_stream_port=5015).settings()
    assert (settings.timeout, settings.first_token_timeout, settings.token_timeout, settings.legacy_stream_port) == (
        30.0, 5.0, 2.0, 5015)
    saved = panels.session_state("{}", "", "", 1, [{"first_token_timeout": 5, "legacy_stream_port": 5015}])
    assert panels.restore_panels(saved)[0]["first_token_timeout"] == 5
    assert panels.restore_panels({"panel_settings": [{}]})[0]["legacy_stream_port"] == 5005  # an older session
