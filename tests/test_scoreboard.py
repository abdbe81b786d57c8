"""The scoreboard: suites, verdicts, grammars (checked by llama.cpp itself and the real model), the
runner against the embedded model and a real llama_cpp.server, stopping, the CLI."""

from __future__ import annotations

import argparse
import json
import threading

import pytest

import wrappers
from backends import Settings
from parsers import ParseError, ParseResult, ToolCall
from parsers.validate import validate_calls
from core.conversation import Conversation
from scoreboard import grammar, load_suite, run_scoreboard, suite_names
from cli.score import add_score_command, run_score
from scoreboard.runner import ScoreRequest, conversation_for, judge
from scoreboard.suites import SuiteError, from_data

MEMGPT_WRAPPERS = ["chatml", "airoboros-l2-70b-2.1", "llama3", "llama3-fixed", "chatml-noforce", "dolphin-2.1-mistral-7b",
                   "zephyr-7B", "airoboros-l2-70b-2.1-grammar", "experimental-wrapper-neural-chat-grammar-noforce"]
MODERN_WRAPPERS = ["hermes-2-pro", "qwen2.5", "qwen3", "llama3.1", "xlam", "mistral-nemo", "phi-3.5"]
FAST = {"max_new_tokens": 40}


# ------------------------------------------------------------------------------------------------
# suites


def test_shipped_suites_have_the_cases_the_issue_asks_for():
    assert {"memgpt", "tools"} <= set(suite_names())
    memgpt, tools = load_suite("memgpt"), load_suite("tools")
    assert len(memgpt.cases) >= 12 and len(tools.cases) >= 12
    expected = {c.id: c.expect for c in memgpt.cases}
    names = [call.function for e in expected.values() for call in e.calls]
    assert {"send_message", "core_memory_replace", "archival_memory_search", "conversation_search"} <= set(names)
    brad = memgpt.case("name_correction")
    assert "Brad, not Chad" in brad.conversation.messages[-1]["content"]
    assert brad.expect.calls[0].function == "core_memory_replace"
    assert memgpt.case("first_message").conversation.template_variables["first_message"] is True
    assert any(m["role"] == "function" for c in memgpt.cases for m in c.conversation.messages)  # result follow-ups
    assert any(len(c.expect.calls) > 1 for c in tools.cases)  # parallel calls
    assert sum(c.expect.no_call for c in tools.cases) >= 3
    assert any(m["role"] == "tool" for c in tools.cases for m in c.conversation.messages)
    for c in tools.cases:  # modern shape: plain messages, JSON-schema functions
        assert all(isinstance(m["content"], str) for m in c.conversation.messages)
        assert all(f["parameters"]["type"] == "object" for f in c.conversation.functions)


@pytest.mark.parametrize("suite", ["memgpt", "tools"])
@pytest.mark.parametrize("wrapper", ["chatml", "airoboros-l2-70b-2.1", "llama3", "qwen2.5", "hermes-2-pro", "llama3.1"])
def test_every_case_renders_with_the_main_wrappers(suite, wrapper):
    for case in load_suite(suite).cases:
        assert wrappers.get(wrapper).render(conversation_for(wrapper, case.conversation))


def test_suite_errors_are_sentences(tmp_path):
    with pytest.raises(SuiteError, match="unknown suite 'nope'"):
        load_suite("nope")
    fns = [{"name": "f", "description": "d", "parameters": {"type": "object", "properties": {}}}]
    with pytest.raises(SuiteError, match="not among the case's functions"):
        from_data({"functions": fns, "cases": [{"id": "a", "messages": [], "expect": {"function": "g"}}]})
    with pytest.raises(SuiteError, match="used twice"):
        from_data({"functions": fns, "cases": [{"id": "a", "expect": {"no_call": True}}] * 2})
    bad = tmp_path / "bad.yaml"
    bad.write_text("cases: [\n", encoding="utf-8")
    with pytest.raises(SuiteError, match="not valid YAML"):
        load_suite(str(bad))


# ------------------------------------------------------------------------------------------------
# verdicts


def test_verdicts():
    tools = load_suite("tools")
    paris = tools.case("weather_paris")
    ok = ParseResult(tool_calls=[ToolCall("get_weather", {"city": "paris, France"})])
    assert judge(ok, paris)[0].to_dict() == {"parsed": True, "valid": True, "expected": True}
    wrong_type = ParseResult(tool_calls=[ToolCall("get_weather", {"city": 7})])
    verdict, problems = judge(wrong_type, paris)
    assert verdict.to_dict() == {"parsed": True, "valid": False, "expected": False} and problems
    other = ParseResult(tool_calls=[ToolCall("calculate", {"expression": "1+1"})])
    assert judge(other, paris)[0].to_dict() == {"parsed": True, "valid": True, "expected": False}
    failed = ParseResult(error=ParseError("bad", 3))
    assert judge(failed, paris)[0].to_dict() == {"parsed": False, "valid": False, "expected": False}
    # parallel calls match in any order, one to one
    both = tools.case("parallel_weather")
    calls = [ToolCall("get_weather", {"city": "Oslo"}), ToolCall("get_weather", {"city": "Tokyo"})]
    assert judge(ParseResult(tool_calls=calls), both)[0].expected
    assert not judge(ParseResult(tool_calls=calls[:1]), both)[0].expected
    assert not judge(ParseResult(tool_calls=[calls[0], calls[0]]), both)[0].expected
    # no call expected: a plain answer is parsed, valid and expected; a call is not expected
    greet = tools.case("no_call_greeting")
    assert judge(ParseResult(content="Hello!"), greet)[0].to_dict() == {"parsed": True, "valid": True, "expected": True}
    assert not judge(ok, greet)[0].expected
    # required values compare case-insensitively; a schema pattern checks free text
    fahrenheit = tools.case("weather_fahrenheit")
    assert judge(ParseResult(tool_calls=[ToolCall("get_weather", {"city": "Phoenix", "unit": "Fahrenheit"})]), fahrenheit)[0].expected
    assert not judge(ParseResult(tool_calls=[ToolCall("get_weather", {"city": "Phoenix", "unit": "celsius"})]), fahrenheit)[0].expected
    brad = load_suite("memgpt").case("name_correction")
    fix = ToolCall("core_memory_replace", {"name": "human", "old_content": "First name: Chad",
                                          "new_content": "First name: Brad", "request_heartbeat": True})
    assert judge(ParseResult(tool_calls=[fix]), brad)[0].to_dict() == {"parsed": True, "valid": True, "expected": True}
    backwards = ToolCall("core_memory_replace", {**fix.arguments, "old_content": "Brad", "new_content": "Chad"})
    assert not judge(ParseResult(tool_calls=[backwards]), brad)[0].expected


# ------------------------------------------------------------------------------------------------
# grammars


def _conversations():
    memgpt, tools = load_suite("memgpt"), load_suite("tools")
    return {"memgpt": memgpt.case("name_correction").conversation, "first": memgpt.case("first_message").conversation,
            "tools": tools.case("weather_paris").conversation}


@pytest.mark.parametrize("wrapper", MEMGPT_WRAPPERS + MODERN_WRAPPERS)
def test_grammars_parse_in_llama_cpp_and_their_sample_round_trips(wrapper):
    from llama_cpp import LlamaGrammar

    for name, conversation in _conversations().items():
        c = grammar.derive(wrapper, conversation_for(wrapper, conversation))
        LlamaGrammar.from_string(c.gbnf, verbose=False)  # llama.cpp's own GBNF parser accepts it
        parsed = wrappers.get(wrapper).parse(c.sample, conversation)
        assert parsed.error is None and parsed.tool_calls, (name, c.sample)
        assert c.gbnf.startswith("root ::= ")


def test_memgpt_grammar_continues_after_the_forced_prefix():
    convs = _conversations()
    c = grammar.derive("chatml", convs["memgpt"])
    assert c.format == "memgpt" and c.sample.startswith(' "')  # after '\n{\n  "function":' comes the name
    first = grammar.derive("chatml", convs["first"])
    assert first.sample.lstrip().startswith('"params"')  # the first-message prefix already names send_message
    assert '"send_message"' not in first.gbnf.split("\n")[0]
    assert grammar.derive("chatml-noforce", convs["memgpt"]).sample.startswith(' "')  # the monologue string
    assert grammar.derive("hermes-2-pro", convs["tools"]).format == "hermes"
    assert grammar.derive("llama3.1", convs["tools"]).json_schema is not None
    with pytest.raises(grammar.GrammarUnsupported, match="no grammar format fits"):
        grammar.derive("functionary-v3.1", convs["tools"])


@pytest.mark.parametrize("wrapper,case", [
    ("chatml", "name_correction"), ("chatml", "first_message"), ("chatml-noforce", "small_talk_reply"),
    ("hermes-2-pro", "weather_paris"), ("llama3.1", "parallel_mixed"),
])
def test_constrained_completion_with_the_real_model_parses(model_path, wrapper, case):
    """The grammar, given to llama.cpp with SmolLM2, yields output the wrapper's parser reads as a valid call."""
    from llama_cpp import LlamaGrammar

    from backends import embedded

    suite = load_suite("memgpt" if wrapper.startswith(("chatml", "airoboros")) else "tools")
    conversation = conversation_for(wrapper, suite.case(case).conversation)
    w = wrappers.get(wrapper)
    c = grammar.derive(w, conversation, max_string=24, max_calls=2)
    llm = embedded.load(model_path)
    with embedded._run_lock:  # the embedded backend's own turn-taking: one generation at a time
        out = llm.create_completion(w.render(conversation), max_tokens=160, temperature=0.0, top_k=1, seed=0,
                                    grammar=LlamaGrammar.from_string(c.gbnf, verbose=False))
    raw = out["choices"][0]["text"]
    assert out["choices"][0]["finish_reason"] == "stop", raw
    parsed = w.parse(raw, conversation)
    assert parsed.error is None, raw
    assert parsed.tool_calls or wrapper == "chatml-noforce", raw  # noforce: a monologue alone is a valid answer
    assert all(not p for p in validate_calls(parsed.tool_calls, conversation.functions)), raw


# ------------------------------------------------------------------------------------------------
# the runner


def _result_from(d: dict) -> ParseResult:
    return ParseResult(content=d["content"], inner_thoughts=d["inner_thoughts"],
                       tool_calls=[ToolCall(c["name"], c["arguments"]) for c in d["tool_calls"]],
                       repairs=d["repairs"], error=ParseError(**d["error"]) if d["error"] else None)


def assert_consistent(data: dict, suite) -> None:
    """Every cell's counts follow from its stored runs, and every stored verdict from its stored parse."""
    assert set(data) >= {"suite", "backend", "cases", "repeat", "cells", "runs"}
    assert data["cases"] == len(suite.cases)
    assert sum(c["runs"] for c in data["cells"]) == len(data["runs"])
    for cell in data["cells"]:
        assert set(cell) >= {"wrapper", "preset", "grammar", "runs", "parsed", "valid", "expected",
                             "mean_latency_s", "mean_completion_tokens"}
        runs = [r for r in data["runs"] if (r["wrapper"], r["preset"], r["grammar"]) == (cell["wrapper"], cell["preset"], cell["grammar"])]
        assert cell["runs"] == len(runs)
        for key in ("parsed", "valid", "expected"):
            assert cell[key] == sum(r["verdict"][key] for r in runs)
        assert cell["valid"] <= cell["parsed"] and cell["expected"] <= cell["parsed"]
        lat = [r["latency_s"] for r in runs if r["latency_s"] is not None]
        assert cell["mean_latency_s"] == (round(sum(lat) / len(lat), 3) if lat else None)
        tok = [r["completion_tokens"] for r in runs if r["completion_tokens"] is not None]
        assert cell["mean_completion_tokens"] == (round(sum(tok) / len(tok), 2) if tok else None)
    for r in data["runs"]:
        assert set(r) >= {"wrapper", "preset", "grammar", "case", "repeat_index", "prompt", "raw", "parsed", "verdict"}
        if r["error"] is None:
            verdict, _ = judge(_result_from(r["parsed"]), suite.case(r["case"]))
            assert verdict.to_dict() == r["verdict"], r
            assert r["prompt"] and r["latency_s"] is not None


def test_runner_on_the_embedded_model_counts_add_up():
    suite = load_suite("memgpt").subset(["name_correction", "small_talk_reply"])
    seen = []
    board = run_scoreboard(ScoreRequest("embedded", suite, ["chatml", "qwen2.5"], ["deterministic"], grammar=[False, True],
                                        params=FAST, concurrency=2, max_string=24, max_calls=1),
                           progress=lambda done, total: seen.append((done, total)))
    data = json.loads(board.to_json())
    assert len(data["runs"]) == data["planned"] == 8 and not data["stopped"]
    assert seen[0] == (0, 8) and seen[-1] == (8, 8)
    assert_consistent(data, suite)
    assert [(c["wrapper"], c["grammar"]) for c in data["cells"]] == [("chatml", False), ("chatml", True), ("qwen2.5", False), ("qwen2.5", True)]
    constrained = [r for r in data["runs"] if r["grammar"]]
    assert all(r["grammar_sent"] and r["request"]["json"]["grammar"] for r in constrained)
    assert all(r["verdict"]["parsed"] for r in constrained), [r["raw"] for r in constrained]  # the grammar path parses
    assert not any(r["grammar_sent"] for r in data["runs"] if not r["grammar"])
    csv_lines = board.to_csv().splitlines()
    assert len(csv_lines) == 1 + 4 and csv_lines[0].startswith("suite,wrapper,preset,grammar,runs,parsed,valid,expected")
    assert "chatml" in board.table() and "8 of 8 runs" in board.table()


def test_runner_against_a_real_llama_cpp_server(llama_cpp_server):
    suite = load_suite("tools").subset(["weather_paris", "no_call_greeting"])
    board = run_scoreboard(ScoreRequest("openai", suite, ["hermes-2-pro", "llama3.1"], ["deterministic"],
                                        settings=Settings(url=llama_cpp_server, timeout=120), grammar=[False, True],
                                        params={"max_new_tokens": 80}, concurrency=1, max_string=24, max_calls=1))
    # concurrency 1: llama_cpp.server interrupts a streaming completion when the next request arrives
    # (its interrupt_requests setting), so parallel requests to it abort each other
    data = board.to_dict()
    assert len(data["runs"]) == 8 and data["backend"]["type"] == "openai"
    assert not [r["error"] for r in data["runs"] if r["error"]]
    assert_consistent(json.loads(board.to_json()), suite)
    constrained = [r for r in data["runs"] if r["grammar"]]
    # the server accepted the grammar (sent as a request field) and its output parses as a call
    assert all(r["request"]["json"].get("grammar") for r in constrained)
    assert all(r["verdict"]["parsed"] and r["verdict"]["valid"] for r in constrained), [r["raw"] for r in constrained]
    assert all(r["parsed"]["tool_calls"] for r in constrained)


def test_stop_keeps_the_finished_runs():
    suite = load_suite("tools").subset(["weather_paris", "no_call_greeting", "calculate_product"])
    stop = threading.Event()

    def progress(done, total):
        if done >= 2:
            stop.set()

    board = run_scoreboard(ScoreRequest("embedded", suite, ["qwen2.5", "hermes-2-pro"], ["deterministic"],
                                        params={"max_new_tokens": 16}, concurrency=2),
                           progress=progress, stop=stop)
    data = board.to_dict()
    assert data["stopped"] and data["planned"] == 6
    assert 2 <= len(data["runs"]) < 6  # a run in flight when Stop came is aborted and dropped
    assert_consistent(data, suite)


def test_stop_before_start_runs_nothing():
    suite = load_suite("tools").subset(["weather_paris"])
    stop = threading.Event()
    stop.set()
    board = run_scoreboard(ScoreRequest("embedded", suite, ["qwen2.5"], ["deterministic"]), stop=stop)
    assert board.runs == [] and board.stopped and board.cells()[0]["runs"] == 0


def test_unsupported_grammar_cells_are_skipped_with_a_note():
    suite = load_suite("tools").subset(["weather_paris"])
    board = run_scoreboard(ScoreRequest("embedded", suite, ["functionary-v3.1"], ["deterministic"], grammar=[True],
                                        params={"max_new_tokens": 4}))
    cell = board.cells()[0]
    assert cell["runs"] == 0 and "no grammar" in cell["note"] and board.runs == []


# ------------------------------------------------------------------------------------------------
# the CLI


def _parse(argv):
    parser = argparse.ArgumentParser(prog="app.py")
    sub = parser.add_subparsers(dest="command")
    add_score_command(sub)
    return parser.parse_args(argv)


def test_cli_prints_the_matrix_and_writes_json_and_csv(tmp_path, capsys):
    out, csv_path = tmp_path / "results.json", tmp_path / "results.csv"
    code = run_score(_parse(["score", "--backend-type", "embedded", "--suite", "tools", "--cases", "weather_paris",
                             "--wrappers", "qwen2.5", "--presets", "deterministic", "--grammar", "--repeat", "1",
                             "--concurrency", "1", "--param", "max_new_tokens=40", "--out", str(out), "--csv", str(csv_path),
                             "--quiet"]))
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "qwen2.5" in printed and "parsed/valid/expected" in printed
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["suite"] == "tools" and data["cases"] == 1 and data["repeat"] == 1
    assert [c["grammar"] for c in data["cells"]] == [False, True]
    assert_consistent(data, load_suite("tools").subset(["weather_paris"]))
    assert len(csv_path.read_text(encoding="utf-8").splitlines()) == 3


@pytest.mark.parametrize("argv,message", [
    (["--suite", "nope", "--wrappers", "chatml"], "unknown suite 'nope'"),
    (["--suite", "tools", "--wrappers", "nope"], "unknown wrapper 'nope'"),
    (["--suite", "tools", "--wrappers", "chatml", "--presets", "nope"], "unknown preset 'nope'"),
    (["--suite", "tools", "--wrappers", "chatml", "--backend-type", "nope"], "unknown backend type 'nope'"),
    (["--suite", "tools", "--wrappers", "chatml", "--repeat", "0"], "--repeat must be at least 1"),
    (["--suite", "tools", "--wrappers", "chatml", "--cases", "zz"], "has no case 'zz'"),
    (["--suite", "tools", "--wrappers", "chatml", "--backend-type", "openai", "--backend-url", "http://127.0.0.1:9",
      "--cases", "weather_paris", "--quiet"], "every run failed; the first: cannot connect"),
])
def test_cli_errors_are_one_sentence_and_exit_2(argv, message, capsys):
    assert run_score(_parse(["score", *argv])) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and message in err


def test_conversation_for_adapts_past_call_arguments():
    tools = load_suite("tools").case("followup_weather_result").conversation
    memgpt_view = conversation_for("chatml", tools)
    assert memgpt_view.messages[2]["tool_calls"][0]["function"]["arguments"] == '{"city": "Rome"}'
    assert tools.messages[2]["tool_calls"][0]["function"]["arguments"] == {"city": "Rome"}  # the case is untouched
    m = load_suite("memgpt").case("after_replace_followup").conversation
    assert isinstance(conversation_for("qwen2.5", m).messages[2]["function_call"]["arguments"], dict)
    assert isinstance(conversation_for("chatml", m).messages[2]["function_call"]["arguments"], str)
    assert isinstance(conversation_for("qwen2.5", Conversation(messages=[])), Conversation)
