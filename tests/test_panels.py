"""The page's logic, called directly (the Gradio layer only wires these)."""

import json

import backends
import cli
import presets
import wrappers
from app import build_app
from workbench import panels, turns
from workbench.sessions import Sessions
from core.conversation import EXAMPLE_PATH

EXAMPLE = EXAMPLE_PATH.read_text()


def test_preview_renders_the_edited_template_not_the_saved_one():
    template, _ = panels.wrapper_view("chatml")
    prompt, status = panels.preview("chatml", template, EXAMPLE)
    assert prompt.startswith("<|im_start|>system\n") and "Brad, not Chad" in prompt
    assert status.startswith("✅")
    edited, _ = panels.preview("chatml", "EDITED {{ messages | length }}", EXAMPLE)
    assert edited == "EDITED 2"


def test_template_error_shows_message_and_line_in_place_of_the_prompt():
    prompt, status = panels.preview("chatml", "ok\n{% for m in messages %}\nno end", EXAMPLE)
    assert prompt.startswith("Template error at line") and "syntax" in prompt
    assert status.startswith("❌")


def test_bad_conversation_json_is_reported():
    prompt, status = panels.preview("chatml", "x", '{"messages": [')
    assert "not valid JSON" in prompt and "line 1" in prompt


def test_template_variables_and_date_reach_the_template():
    prompt, _ = panels.preview("chatml", "{{ first_message }} {{ strftime_now('%Y') }}", EXAMPLE, '{"first_message": true}', "2024-07-26")
    assert prompt == "True 2024"


def test_mark_whitespace_makes_every_space_and_line_end_visible():
    assert panels.mark_whitespace("a b\n\tc \n") == "a·b↵\n→c·↵\n"


def test_save_as_stores_under_the_user_folder_and_lists_it(user_home):
    names, selected, status = panels.save_wrapper("chatml", "my-chatml", "MINE {{ messages | length }}")
    assert selected == "my-chatml" and "my-chatml" in names and status.startswith("✅")
    assert (user_home / "wrappers" / "my-chatml.yaml").is_file()
    saved = wrappers.get("my-chatml")
    assert saved.parser == wrappers.get("chatml").parser and saved.stop == wrappers.get("chatml").stop
    prompt, _ = panels.preview("my-chatml", saved.template, EXAMPLE)
    assert prompt == "MINE 2"


def test_save_as_never_overwrites_a_builtin_or_escapes_the_folder(user_home):
    for name in ("chatml", "../../evil", "", "con"):
        names, selected, status = panels.save_wrapper("chatml", name, "x")
        assert status.startswith("❌") and selected == "chatml"
    assert not (user_home / "evil.yaml").exists()
    assert wrappers.get("chatml").builtin


def test_preset_values_fill_every_preset_control_by_name():
    values = panels.preset_values("deterministic")
    assert list(values) == panels.PRESET_CONTROLS
    assert values["top_k"] == 1 and values["temperature"] == 0.0
    assert values["stop_json"] == ""  # no stop list: the wrapper's own is used
    assert json.loads(panels.preset_values("memgpt-default")["stop_json"])[0] == "\nUSER:"


def test_controls_become_explicit_params_and_empty_stop_means_the_wrappers():
    sliders = panels.neutral_values()
    params = panels.params_from_controls(sliders, "", ["<|im_end|>"])
    assert params["stop"] == ["<|im_end|>"]
    assert panels.params_from_controls(sliders, '["\\nUSER:"]', ["x"])["stop"] == ["\nUSER:"]


def test_check_backend_says_plainly_when_nothing_is_there():
    status, models = panels.check_backend("openai", "http://127.0.0.1:9", "", "", 2)
    assert status.startswith("❌ cannot connect to http://127.0.0.1:9") and models == []


def test_backend_defaults_say_which_parameters_are_ignored():
    url, ignored = panels.backend_defaults("openai")
    assert url.startswith("http://") and "top_k" in ignored and "temperature" not in ignored


def _config(**controls) -> panels.PanelConfig:
    """Panel 1 on the embedded model with the chatml wrapper, neutral samplers, and `controls` by name."""
    return panels.PanelConfig.from_values({"timeout": 60, "wrapper": "chatml", "template": panels.wrapper_view("chatml")[0],
                                           "preset": "deterministic", **panels.neutral_values(), **controls})


def test_generation_streams_then_finishes_with_a_parse_and_the_request():
    config = _config(top_k=1, temperature=0.0, max_new_tokens=12, seed=3)
    updates = list(panels.run_generation(config, EXAMPLE))
    raw, parsed, request, status, record = updates[-1]
    assert status.startswith("Done"), status
    assert request["json"]["max_tokens"] == 12 and request["json"]["prompt"].endswith('{\n  "function":')
    assert set(parsed) >= {"content", "inner_thoughts", "tool_calls", "function_call", "repairs", "error"}
    assert record["raw"] == raw and record["wrapper"] == "chatml"
    assert any(u[3].startswith("⏳ Generating…") and u[4] is None for u in updates[:-1])


def test_streamed_updates_are_coalesced_but_the_first_chunk_and_the_end_go_out_at_once():
    config = _config(top_k=1, temperature=0.0, max_new_tokens=16, seed=3, stop_json="[]")
    every = list(panels.run_generation(config, EXAMPLE))
    coalesced = list(panels.run_generation(config, EXAMPLE, update_every=3600))
    streaming = [u for u in every[1:-1] if u[0]]
    assert len(streaming) >= 8  # one update per token when not coalesced
    assert [u[3] for u in coalesced[:1]] == [every[0][3]]  # "Generating…" first
    assert len(coalesced) == 3 and coalesced[1][0] == streaming[0][0]  # then the first chunk, then the end
    assert coalesced[-1][0] == every[-1][0] and coalesced[-1][3].startswith("Done")


def test_generation_errors_end_with_a_sentence_and_keep_the_page_usable():
    config = _config(backend_type="openai", url="http://127.0.0.1:9", timeout=2, template="x")
    *_, (raw, parsed, request, status, record) = panels.run_generation(config, EXAMPLE)
    assert status.startswith("❌ cannot connect") and parsed is None and record is None


def test_json_schema_from_the_page_constrains_a_real_generation():
    schema = '{"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}'
    config = _config(template="<|im_start|>user\nHow many legs has a cat?<|im_end|>\n<|im_start|>assistant\n",
                     top_k=1, temperature=0.0, max_new_tokens=24, seed=1, stop_json="[]", json_schema=schema)
    *_, (raw, parsed, request, status, record) = panels.run_generation(config, EXAMPLE)
    assert request["json"]["json_schema"]["required"] == ["answer"]  # recorded as sent
    assert isinstance(json.loads(raw)["answer"], int), raw


def test_a_bad_json_schema_is_a_sentence():
    config = _config(template="x", json_schema="{nope")
    *_, last = panels.run_generation(config, EXAMPLE)
    assert last[3].startswith("❌ the JSON schema is not valid JSON")


def test_every_sampling_control_is_sent_or_named_as_ignored_for_every_backend_type():
    assert set(panels.SAMPLING_CONTROLS.values()) == set(presets.KEYS)  # the page has a control for every parameter
    for kind, cls in backends.TYPES.items():
        _, status = panels.backend_defaults(kind)
        ignored = status.split("Ignores: ", 1)[1].rstrip(".").split(", ") if "Ignores: " in status else []
        for control, key in panels.SAMPLING_CONTROLS.items():
            assert (key in cls.params) != (key in ignored), f"{kind}: the {control} control is neither sent nor named"


def test_a_closed_session_leaves_nothing_behind():
    sessions = Sessions()
    sessions.add_run("a", {"raw": "x"})
    flag = sessions.stop_flag("a", "panel 0")
    other = sessions.stop_flag("b", "panel 0")
    sessions.stop("a", "panel 1")
    assert not flag.is_set()
    sessions.forget("a")
    assert flag.is_set() and not other.is_set()  # what the closed page still ran is stopped
    assert sessions.runs("a") == [] and sessions.active() == {"b"}
    sessions.forget("b")
    assert sessions.active() == set()


LONE = '{"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "bad \\ud800 here"}], "functions": []}'


def test_lone_surrogates_reach_the_page_as_u_fffd_with_a_note():
    prompt, status = panels.preview("chatml", panels.wrapper_view("chatml")[0], LONE)
    assert "bad \ufffd here" in prompt and status.startswith("✅") and "U+FFFD" in status
    assert "bad \ufffd here" in json.dumps(turns.chat_view(LONE, "chatml"), ensure_ascii=False)
    conversation = turns.add_user_message(LONE, "more", "chatml")
    assert "\ufffd" in conversation and '"more"' in json.loads(conversation)["messages"][-1]["content"]
    *_, (raw, parsed, request, status, record) = panels.run_generation(_config(max_new_tokens=2, top_k=1), LONE)
    assert status.startswith("Done") and "U+FFFD" in status, status
    assert "bad \ufffd here" in request["json"]["prompt"] and "bad \ufffd here" in record["prompt"]
    json.dumps([raw, parsed, request, record], ensure_ascii=False).encode("utf-8")  # all of it can be sent


def test_a_model_naming_a_wrapper_is_said_at_start_and_in_the_page_title(capsys):
    started = []
    assert cli.main(["--model", "airoboros-l2-70b-2.1"], serve=lambda config: started.append(config) or 0) == 0
    assert capsys.readouterr().err.startswith("note: --model airoboros-l2-70b-2.1 names a wrapper")
    demo = build_app(started[0])
    title = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "title")
    assert "--model airoboros-l2-70b-2.1 names a wrapper" in title.value
    wrapper_1 = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "wrapper-1")
    assert wrapper_1.value == "airoboros-l2-70b-2.1"
