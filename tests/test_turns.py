"""Multi-turn, chat view, stability, sessions and export, called directly."""

import json

import pytest

import presets
from workbench import panels, turns
from core.conversation import EXAMPLE_PATH, Conversation, ConversationError
from tests.conftest import FIXTURES

EXAMPLE = EXAMPLE_PATH.read_text()
REPLACE = {"content": None, "inner_thoughts": "He says his name is Brad. Fix it.",
           "tool_calls": [{"name": "core_memory_replace", "arguments": {"name": "human", "old_content": "First name: Chad",
                                                                         "new_content": "First name: Brad", "request_heartbeat": True}}],
           "function_call": None, "repairs": [], "error": None}


def test_accept_in_memgpt_shape_then_result_then_user_turn_renders_with_the_wrapper():
    conv = turns.accept_call(EXAMPLE, REPLACE, "chatml")
    turn = json.loads(conv)["messages"][-1]
    assert turn["role"] == "assistant" and turn["content"] == "He says his name is Brad. Fix it."
    assert turn["function_call"]["name"] == "core_memory_replace"
    assert json.loads(turn["function_call"]["arguments"])["new_content"] == "First name: Brad"
    assert turns.pending_calls(conv) == ["core_memory_replace"]
    canned = turns.canned_result("core_memory_replace")
    assert json.loads(canned)["status"] == "OK"
    conv = turns.add_function_result(conv, canned, "chatml")
    assert json.loads(conv)["messages"][-1] == {"role": "function", "name": "core_memory_replace", "content": canned}
    assert turns.pending_calls(conv) == []
    conv = turns.add_user_message(conv, "Thanks!", "chatml")
    assert json.loads(json.loads(conv)["messages"][-1]["content"])["type"] == "user_message"
    prompt, status = panels.preview("chatml", panels.wrapper_view("chatml")[0], conv)
    assert status.startswith("✅")
    assert '"new_content": "First name: Brad"' in prompt and "FUNCTION RETURN:" in prompt and '"message": "Thanks!"' in prompt


def test_accept_in_openai_tool_calls_shape_for_native_wrappers():
    parallel = {**REPLACE, "content": "Fixing.", "tool_calls": REPLACE["tool_calls"] * 2}
    conv = turns.accept_call(EXAMPLE, parallel, "hermes-2-pro")
    turn = json.loads(conv)["messages"][-1]
    assert turn["content"] == "Fixing." and len(turn["tool_calls"]) == 2
    assert isinstance(turn["tool_calls"][0]["function"]["arguments"], str)
    conv = turns.add_function_result(conv, '{"ok": true}', "hermes-2-pro")
    last = json.loads(conv)["messages"][-1]
    assert last["role"] == "tool" and last["tool_call_id"] == turn["tool_calls"][0]["id"]
    assert len(turns.pending_calls(conv)) == 1
    prompt, status = panels.preview("hermes-2-pro", panels.wrapper_view("hermes-2-pro")[0], conv)
    assert status.startswith("✅") and "<tool_call>" in prompt and "<tool_response>" in prompt


def test_nothing_to_accept_or_answer_is_a_sentence():
    with pytest.raises(ConversationError, match="generate one first"):
        turns.accept_call(EXAMPLE, None, "chatml")
    unparsed = {"content": None, "inner_thoughts": None, "tool_calls": [], "error": {"message": "x", "position": 0}}
    conv = turns.accept_call(EXAMPLE, unparsed, "hermes-2-pro", raw="  I could not decide.  ")
    assert json.loads(conv)["messages"][-1] == {"role": "assistant", "content": "I could not decide."}
    with pytest.raises(ConversationError, match="no call is waiting"):
        turns.add_function_result(EXAMPLE, "x", "chatml")


def test_chat_view_reads_like_memgpts_console():
    conv = turns.accept_call(EXAMPLE, REPLACE, "chatml")
    conv = turns.accept_call(conv, {**REPLACE, "inner_thoughts": "Now apologise.",
                                        "tool_calls": [{"name": "send_message", "arguments": {"message": "Sorry, Brad!"}}]}, "chatml")
    view = turns.chat_view(conv, "chatml")
    texts = [m["content"] for m in view]
    assert "💭 He says his name is Brad. Fix it." in texts
    change = next(m for m in view if m.get("metadata", {}).get("title") == "⚡🧠 core_memory_replace")
    assert change["content"].startswith("human: First name: Chad → First name: Brad")
    assert "🤖 Sorry, Brad!" in texts
    assert view[1] == {"role": "user", "content": "My name is Brad, not Chad. You keep getting that wrong!"}


def test_session_round_trip_keeps_everything_but_api_keys():
    per_panel = []
    for n in range(2):
        values = panels.neutral_values()
        per_panel.append({"backend_type": "openai", "url": f"http://127.0.0.1:80{n}", "model": "m", "api_key": "sk-secret",
                          "timeout": 30, "extra_json": "{}", "wrapper": "chatml", "template": f"T{n}", "preset": "creative",
                          **values, "stop_json": '["x"]', "grammar": "", "probabilities": 0, "json_schema": ""})
    state = panels.session_state(EXAMPLE, '{"first_message": true}', "2024-07-26", 2, per_panel)
    text = turns.session_file(state)
    assert "sk-secret" not in text
    loaded = turns.load_session(text)
    back = panels.restore_panels(loaded)
    assert [loaded["conversation"], loaded["template_variables"], loaded["now"]] == [EXAMPLE, '{"first_message": true}', "2024-07-26"]
    assert back[0]["template"] == "T0" and back[1]["template"] == "T1" and back[0]["api_key"] == ""  # the key is gone
    with pytest.raises(ConversationError, match="not a Prompt Format Playground session"):
        turns.load_session('{"a": 1}')


def test_a_session_saved_by_the_positional_page_still_loads():
    # written by the page as of commit 15d6a4d, when a panel's controls travelled as a list in a fixed order
    state = turns.load_session((FIXTURES / "session-15d6a4d.json").read_text(encoding="utf-8"))
    first, second = panels.restore_panels(state)
    assert first["url"] == "http://127.0.0.1:8080" and second["url"] == "http://127.0.0.1:8081"
    assert first["template"] == "OLD TEMPLATE 0 {{ messages[0].content }}" and first["preset"] == "creative"
    assert first["probabilities"] == 3 and first["json_schema"] == '{"type": "object"}' and first["stop_json"] == '["\\nUSER:"]'
    assert first["temperature"] == panels.preset_values("creative")["temperature"]
    config = panels.PanelConfig.from_values(first)
    assert config.request(state["conversation"]).params["stop"] == ["\nUSER:"]
    older = {**state, "panel_settings": [{k: v for k, v in first.items() if k not in ("probabilities", "json_schema")}]}
    (restored,) = panels.restore_panels(older)  # saved before those controls existed: their defaults
    assert restored["probabilities"] == 0 and restored["json_schema"] == "" and restored["template"] == first["template"]


def test_prompt_diff_points_at_the_first_difference_and_shows_whitespace():
    segments, summary = panels.prompt_diff("<|im_start|>user\nhi<|im_end|>", "<|im_start|>user\n hi<|im_end|>\n")
    assert summary.startswith("first difference at line 2, column 1")
    added = "".join(text for text, kind in segments if kind == "+")
    assert "·" in added and "↵" in added
    assert "identical" in panels.prompt_diff("same", "same")[1]


def test_stability_counts_parsed_and_expected_over_n_runs():
    config = panels.PanelConfig.from_values({"timeout": 60, "wrapper": "chatml", "template": panels.wrapper_view("chatml")[0],
                                             **panels.neutral_values(), "max_new_tokens": 6, "top_k": 1, "temperature": 0.0,
                                             "seed": 1})
    tallies = list(turns.stability(config.request(EXAMPLE), 2, "send_message"))
    assert [t["runs"] for t in tallies] == [1, 2]
    assert tallies[-1]["distinct_outputs"] == 1  # greedy with a fixed seed repeats
    assert tallies[-1]["parsed"] <= 2 and tallies[-1]["expected"] <= tallies[-1]["parsed"]


def test_user_preset_save_load_delete(user_home):
    values = {**panels.neutral_values(), "temperature": 0.33, "stop_json": "", "grammar": ""}
    names, selected, status = panels.save_preset("mine", values)
    assert selected == "mine" and "mine" in names and status.startswith("✅")
    assert presets.load("mine") == {"temperature": 0.33, "grammar": ""} or presets.load("mine") == {"temperature": 0.33}
    assert panels.preset_values("mine")["temperature"] == 0.33
    assert panels.save_preset("deterministic", values)[2].startswith("❌")
    names, selected, status = panels.delete_preset("mine")
    assert "mine" not in names and status.startswith("✅")
    assert panels.delete_preset("creative")[2].startswith("❌")


def test_conversation_checks_still_apply():
    Conversation.from_json(EXAMPLE)
    assert turns.chat_view("{not json", "chatml") == []


def test_model_template_from_the_gguf_becomes_a_wrapper(user_home, model_path):
    template, parser, notes, status = panels.load_model_template(model_path, "", "smollm2-own")
    assert status.startswith("✅") and "smollm2-own" in status
    assert "<|im_start|>" in template and parser.startswith("`")
    prompt, prompt_status = panels.preview("smollm2-own", template, EXAMPLE)
    assert prompt_status.startswith("✅") and prompt.startswith("<|im_start|>system\n")


def test_model_template_needs_a_file_or_text(user_home):
    assert panels.load_model_template(None, "  ", "x")[3].startswith("❌")
    _, parser, _, status = panels.load_model_template(None, "{% for m in messages %}<tool_call>{{ m.content }}{% endfor %}", "pasted")
    assert status.startswith("✅") and "hermes" in parser


def _embedded(probabilities=0, **values):
    return panels.PanelConfig.from_values({"timeout": 60, "wrapper": "chatml", "template": panels.wrapper_view("chatml")[0],
                                           **panels.neutral_values(), "max_new_tokens": 5, "top_k": 1, "temperature": 0.0,
                                           **values, "probabilities": probabilities})


def test_token_view_heatmap_and_alternatives_from_a_real_generation():
    *_, (raw, parsed, request, status, record) = panels.run_generation(_embedded(probabilities=3), EXAMPLE)
    tokens = record["tokens"]
    assert len(tokens) >= 1 and "".join(t["token"] for t in tokens) == raw
    spans = panels.token_heatmap(tokens)
    assert [text for text, _ in spans] == [t["token"] for t in tokens] and all(0 <= score <= 1 for _, score in spans)
    rows, caption = panels.token_alternatives(tokens, 0)
    assert 1 <= len(rows) <= 3 and rows[0][3] == "✓"  # greedy: the chosen token is the likeliest
    assert caption.startswith("Token 1:")
    assert panels.token_alternatives(tokens, 999)[0] == []


def test_prompt_tokens_and_the_models_own_template_from_the_embedded_backend():
    rows, summary = panels.prompt_tokens(_embedded(), EXAMPLE)
    assert rows[0][2] == repr("<|im_start|>") and "tokens, as embedded tokenizes them" in summary
    template, status = panels.server_template(_embedded())
    assert status.startswith("✅") and "<|im_start|>" in template


def test_detect_reports_nothing_listening():
    kind, status = panels.detect_backend("http://127.0.0.1:9")
    assert kind is None and status.startswith("❌")
