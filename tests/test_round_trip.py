"""Round trip: every built-in wrapper's parser reads back the calls its own template writes for a
past assistant turn (one call; two in parallel; nested and non-ASCII arguments; empty arguments),
or its description says why it cannot; the harness catches a template/parser pair that disagrees;
the lint reports it, remembered per template."""

from __future__ import annotations

import re

import pytest

import wrappers
from core.conversation import Conversation, example
from wrappers import round_trip
from wrappers.lint import lint_findings

SENTENCE = re.compile(r"Round trip: [^.]+(?:\.[^ .][^.]*)*\.")


def results_table() -> dict[str, dict[str, round_trip.RoundTrip]]:
    return {name: round_trip.check_all(wrappers.get(name)) for name in wrappers.names()
            if wrappers.get(name).builtin}


TABLE = results_table()


def test_print_the_table():
    print()
    for name, results in TABLE.items():
        cells = ["ok" if r.ok else r.reason for r in results.values()]
        print(f"{name:50s} " + " | ".join(f"{c:8s}" for c in cells))


@pytest.mark.parametrize("name", sorted(TABLE))
def test_every_builtin_wrapper_round_trips_or_says_why(name):
    description = wrappers.get(name).description
    failing = {scenario: r for scenario, r in TABLE[name].items() if not r.ok}
    sentence = SENTENCE.search(description)
    if not failing:
        assert sentence is None, f"{name} round-trips every scenario; drop {sentence.group()!r} from its description"
        return
    reasons = "; ".join(f"{s}: {r.message}" for s, r in failing.items())
    assert sentence, f"{name} cannot round-trip ({reasons}) and its description does not say why (a 'Round trip: ...' sentence)"
    if set(failing) == {"two parallel calls"}:
        assert "one call per turn" in sentence.group(), sentence.group()
    else:
        assert "one call per turn" not in sentence.group(), (sentence.group(), reasons)


MODERN = ["command-r7b", "deepseek-r1", "firefunction-v2", "functionary-v3.1", "functionary-v3.2", "glm-4.6",
          "gorilla_openfunctions_v2", "hermes-2-pro", "kimi-k2-thinking", "llama4", "mistral-nemo", "pythonic",
          "qwen2.5", "qwen3", "qwen3-coder", "xlam"]


@pytest.mark.parametrize("name", MODERN)
def test_tool_calling_formats_round_trip_every_scenario(name):
    for scenario, result in TABLE[name].items():
        assert result.ok, (scenario, result.message, result.turn)
        assert [n for n, _ in result.got] == [n for n, _ in round_trip.SCENARIOS[scenario]]


def test_llama4_reads_back_the_json_its_template_writes():
    result = TABLE["llama4"]["two parallel calls"]
    assert result.ok and '"parameters"' in result.turn and "get_weather(" not in result.turn


# ------------------------------------------------------------------ the harness itself


def edited(name: str, **changes) -> wrappers.Wrapper:
    base = wrappers.get(name)
    return wrappers.Wrapper(**{**{k: getattr(base, k) for k in wrappers.Wrapper.__dataclass_fields__}, **changes})


def test_a_parser_that_does_not_match_the_template_is_caught():
    result = round_trip.check(edited("qwen2.5", parser="olmo3"), "one call")
    assert not result.ok and result.reason == "mismatch" and not result.first_calls_only
    assert "0 of the 1 calls" in result.message and "<tool_call>" in result.turn


def test_an_argument_the_parser_reads_wrong_is_named():
    result = TABLE["experimental-wrapper-neural-chat-grammar-noforce"]["one call"]
    assert result.reason == "mismatch" and not result.first_calls_only
    assert 'call 1 comes back as get_weather({"city": "Paris", "inner_thoughts": ""})' in result.message


def test_a_template_that_refuses_or_drops_the_turn():
    refused = round_trip.check(wrappers.get("llama3.1"), "two parallel calls")
    assert refused.reason == "refused" and "single tool-calls" in refused.message
    dropped = round_trip.check(wrappers.get("phi-3.5"), "one call")
    assert dropped.reason == "dropped" and "writes no call" in dropped.message


def test_the_forced_prefix_and_the_stop_string_are_handled():
    one = round_trip.check(wrappers.get("chatml"), "one call")
    assert one.ok and one.turn.startswith(' "get_weather"')  # the model's part: after '{\n  "function":'
    two = round_trip.check(wrappers.get("chatml"), "two parallel calls")
    assert two.first_calls_only and "'  }\\n}\\n' ends the turn" in two.message


def test_a_header_written_otherwise_than_the_generation_prompt_is_skipped():
    # MemGPT's airoboros prompt ends '### RESPONSE\nASSISTANT:\n{\n  "function":', past turns 'ASSISTANT:\n{...'
    result = round_trip.check(wrappers.get("airoboros-l2-70b-2.1"), "one call")
    assert result.ok and result.shape.startswith("function_call")


def test_input_shaping_is_reported():
    assert TABLE["deepseek-r1"]["one call"].shape == 'tool_calls with arguments as JSON strings, content null'
    assert TABLE["kimi-k2-thinking"]["one call"].shape.endswith("ids functions.NAME:INDEX")
    assert TABLE["mistral-nemo"]["one call"].shape == 'tool_calls with arguments as objects, content ""'


# ------------------------------------------------------------------ the lint line


def round_trip_findings(wrapper, template=None):
    return [f for f in lint_findings(wrapper, example(), template) if f.code == "round_trip"]


def test_lint_says_how_many_calls_come_back():
    [finding] = round_trip_findings(wrappers.get("qwen2.5"))
    assert finding.level == "note" and finding.message == "round trip (two parallel calls): the parser reads back 2 of 2 calls"


def test_lint_warns_when_an_edited_template_breaks_the_round_trip():
    w = wrappers.get("qwen2.5")
    broken = w.template.replace("<tool_call>\\n", "<tool_call>\\n<function>")
    assert broken != w.template
    [finding] = round_trip_findings(w, broken)
    assert finding.level == "warning" and "first difference" in finding.message


def test_lint_notes_declared_limits_and_skips_plain_and_python_wrappers():
    [refused] = round_trip_findings(wrappers.get("llama3.1"))
    assert refused.level == "note" and "refuses" in refused.message
    assert round_trip_findings(wrappers.get("simple-summary")) == []  # parser "plain": no calls to read back


def test_the_lint_remembers_the_result_per_template(monkeypatch):
    w = wrappers.get("hermes-2-pro")
    round_trip._CACHE.clear()
    computed = []
    real_check = round_trip.check
    monkeypatch.setattr(round_trip, "check", lambda *a, **kw: computed.append(1) or real_check(*a, **kw))
    first = round_trip.check_cached(w)
    assert round_trip.check_cached(w) is first  # a keystroke that leaves the template alone: no work
    other = round_trip.check_cached(w, w.template + "{# edited #}")
    assert other is not first and other.ok
    assert len(computed) == 2


def test_the_round_trip_ignores_the_conversation_on_the_page():
    w = wrappers.get("qwen3")
    a = round_trip_findings(w)
    b = [f for f in lint_findings(w, Conversation(messages=[{"role": "user", "content": "hi"}])) if f.code == "round_trip"]
    assert a == b
