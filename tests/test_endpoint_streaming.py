"""The streamed answer equals the blocking one: recorded outputs replayed at chunk sizes 1, 2, 7 and whole through
the incremental parse and the chunk builder, read back as a client reads SSE; calls and inner thoughts arrive
while the output streams; the request's call policy; the traffic ring; the key rule."""

from __future__ import annotations

import json

import pytest

from endpoint.server import key_problem
from endpoint.translate import Chunks, message
from flow import streaming, traffic
from flow.startup import StartupConfig
from tests.conftest import FIXTURES

CORPUS = [json.loads(line) for line in (FIXTURES / "parsers" / "dev_corpus.jsonl").read_text(encoding="utf-8").splitlines()]
MEMGPT = json.loads((FIXTURES / "memgpt" / "raw_outputs.json").read_text(encoding="utf-8"))
CASES = ([pytest.param(row["format"], None, row["raw"], id=f"{row['format']}-{n}") for n, row in enumerate(CORPUS)]
         + [pytest.param(None, "chatml", raw, id=f"chatml-{name}") for name, raw in MEMGPT.items()])
# Outputs where a stream must guess and the rest of the output proves the guess wrong. A server streams what it
# has; these are the ways that can go wrong, and the stream must say so (`diverged`) rather than hide it.
GUESSES = {
    "chatml-r17_missing_quote_and_braces": "the output stops inside a call",
    "chatml-r18_trailing_comma_truncated": "the output stops inside a call",
    "chatml-r23_escaped_underscores_truncated": "the output stops inside a call",
    "chatml-r25_double_json_newline_separated": "a second object after the first makes MemGPT's parse fail",
    "chatml-r09_full_nested_function_object": "the parser reads the finished nesting otherwise than the closed partial one",
    "llama3_json-10": "invalid JSON follows a valid start of the arguments",
    "qwen3_coder_xml-38": "the first call turns out to be inside reasoning when </think> arrives",
}
HERMES_CALL = ('Let me look that up.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n'
               '</tool_call>\n')


def client_view(events: list[str]) -> dict:
    """The message a client assembles from `data:` events (content, tool_calls by index), and the finish reason."""
    content, calls, finish = None, {}, None
    for event in events:
        assert event.startswith("data: ") and event.endswith("\n\n")
        choice = json.loads(event[6:])["choices"][0]
        delta, finish = choice["delta"], choice["finish_reason"] or finish
        if delta.get("content"):
            content = (content or "") + delta["content"]
        for t in delta.get("tool_calls", []):
            if "id" in t:
                assert t["index"] not in calls and t["function"]["name"]
                calls[t["index"]] = {"name": t["function"]["name"], "arguments": t["function"]["arguments"]}
            else:
                calls[t["index"]]["arguments"] += t["function"]["arguments"]
    return {"content": content, "tool_calls": [calls[i] for i in sorted(calls)] or None, "finish": finish}


def blocking_view(answer: streaming.Answer) -> dict:
    m = message(answer, "tools")
    calls = [{"name": c["function"]["name"], "arguments": c["function"]["arguments"]} for c in m.get("tool_calls", [])]
    return {"content": m["content"], "tool_calls": calls or None, "finish": "tool_calls" if calls else "stop"}


def fresh(format_id, wrapper):
    return streaming.IncrementalParse.for_format(format_id) if format_id else streaming.IncrementalParse.for_wrapper(wrapper)


@pytest.mark.parametrize("format_id, wrapper, raw", CASES)
def test_replayed_streams_give_the_blocking_answer(request, format_id, wrapper, raw):
    replay = streaming.replay(raw, wrapper=wrapper, format_id=format_id)
    assert [run.chunk_size for run in replay.runs] == [1, 2, 7, None]
    case = request.node.callspec.id
    if case in GUESSES:
        wrong = [run for run in replay.runs if run.difference]
        assert wrong, f"{case} streams right now: take it off GUESSES"
        assert all(run.diverged for run in wrong), "a stream that differs from the answer says so"
        return
    assert replay.ok, replay.summary()
    for size in (1, 2, 7, None):  # the same through the SSE chunks a client reads, final chunk included
        incremental, chunks = fresh(format_id, wrapper), Chunks("m", "tools")
        step = size or len(raw)
        events = [chunks.delta(d) for start in range(0, len(raw), step) for d in incremental.feed(raw[start:start + step])]
        events += [chunks.delta(d) for d in incremental.finish(replay.final)]
        events.append(chunks.last(replay.final, "stop", {}, None))
        assert incremental.diverged is None
        assert client_view(events) == blocking_view(replay.final), f"chunk size {size}"


def test_a_call_complete_mid_stream_is_out_before_the_end_and_its_arguments_only_grow():
    incremental = streaming.IncrementalParse.for_format("hermes")
    seen, timeline = [], []
    for i, ch in enumerate(HERMES_CALL):
        for d in incremental.feed(ch):
            seen.append(d)
            timeline.append((i, d))
    end_of_call = HERMES_CALL.index("</tool_call>") + len("</tool_call>")
    first_call = next(i for i, d in timeline if d.kind == "call")
    assert first_call < HERMES_CALL.index('"arguments"'), "index, id and name go out once the name is written"
    fragments = [(i, d.text) for i, d in timeline if d.kind == "arguments"]
    assert len(fragments) > 3, "the arguments go out in fragments while they are written"
    assert fragments[0][0] < HERMES_CALL.index("Paris") + 5
    before_end = "".join(text for i, text in fragments if i < end_of_call)
    assert before_end == '{"city": "Paris", "unit": "celsius"}', "the whole call is out once </tool_call> arrived"
    assert incremental.finish(streaming.answer(incremental.parse(HERMES_CALL), HERMES_CALL)) == []
    content = "".join(d.text for d in seen if d.kind == "content")
    assert content.startswith("Let me look that") and incremental.diverged is None


def test_earlier_calls_arrive_before_the_end_and_the_last_when_text_follows_it():
    raw = ('<tool_call>\n{"name": "a", "arguments": {"x": 1}}\n</tool_call>\n'
           '<tool_call>\n{"name": "b", "arguments": {}}\n</tool_call>')
    incremental = streaming.IncrementalParse.for_format("hermes")
    early = [d for k in range(0, len(raw), 2) for d in incremental.feed(raw[k:k + 2])]
    assert [d.text for d in early if d.kind == "call"] == ["a", "b"]
    assert streaming.reassemble(early).calls[0].arguments == '{"x": 1}'
    rest = incremental.finish(streaming.answer(incremental.parse(raw), raw))
    assert streaming.reassemble(early + rest).calls[1].arguments == "{}"


def test_memgpt_inner_thoughts_and_the_message_stream_while_the_output_is_written():
    raw = MEMGPT["r01_full_send_message_inner_in_params"]
    incremental = streaming.IncrementalParse.for_wrapper("chatml")
    timeline = [(i, d) for i in range(len(raw)) for d in incremental.feed(raw[i])]
    thoughts = [i for i, d in timeline if d.kind == "content"]
    assert len(thoughts) > 10 and thoughts[-1] < raw.index('"message"'), "the inner thoughts go out as they are written"
    assert "".join(d.text for _, d in timeline if d.kind == "content") == "User greeted me. Respond warmly."
    message_fragments = [d.text for i, d in timeline if d.kind == "arguments" and i > raw.index('"message"')]
    assert len(message_fragments) > 10
    assert [d.text for _, d in timeline if d.kind == "call"] == ["send_message"]


def test_the_cost_per_chunk_stays_bounded_on_a_long_output():
    words = " ".join(f"word{i}" for i in range(3000))
    raw = '<tool_call>\n{"name": "note", "arguments": {"text": "' + words + '"}}\n</tool_call>'
    incremental = streaming.IncrementalParse.for_format("hermes")
    fragments = 0
    for i in range(0, len(raw), 4):  # ~4 characters a token
        fragments += sum(d.kind == "arguments" for d in incremental.feed(raw[i:i + 4]))
    assert len(raw) > 20_000 and fragments > 1000, "the long string goes out as it grows"
    assert incremental.parses < 100, f"{incremental.parses} parses for {len(raw) // 4} chunks: the output is re-parsed too often"
    final = streaming.answer(incremental.parse(raw), raw)
    incremental.finish(final)
    assert "".join(incremental.arguments) == final.calls[0].arguments and incremental.diverged is None


def test_replay_names_the_first_difference():
    good = streaming.replay(HERMES_CALL, format_id="hermes")
    assert good.ok and good.summary() == "the same answer streamed at chunk sizes 1, 2, 7, whole"
    assert good.final.calls[0].name == "get_weather" and good.runs[0].early > 0
    bad = streaming.replay(MEMGPT["r25_double_json_newline_separated"], wrapper="chatml", chunk_sizes=(7,))
    assert not bad.ok and bad.summary() == "chunk size 7: 1 call(s) instead of 0"
    assert "streamed 1 call(s) but the final parse has 0" in bad.runs[0].diverged


def test_a_stream_that_the_final_parse_contradicts_is_named():
    two = '<tool_call>{"name": "a", "arguments": {}}</tool_call><tool_call>{"name": "b", "arguments": {}}</tool_call>'
    fixed = streaming.IncrementalParse.for_format("hermes").parse(two)
    incremental = streaming.IncrementalParse(lambda text: fixed)  # a parser that changes its mind at the end
    assert [d.kind for d in incremental.feed("...")] == ["call", "arguments"], "the first call is complete"
    incremental.finish(streaming.Answer(content="nothing parsed"))
    assert "streamed 1 call(s) but the final parse has 0" in incremental.diverged


TWO_CALLS = ('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
             '<tool_call>\n{"name": "get_time", "arguments": {"zone": "CET"}}\n</tool_call>')


def test_tool_choice_none_returns_the_calls_as_text_streamed_or_not():
    policy = streaming.Policy(no_calls_why="tool_choice is none")
    replay = streaming.replay("Sure. " + TWO_CALLS, format_id="hermes", policy=policy)
    assert replay.ok, replay.summary()
    assert replay.final.calls == [] and replay.final.content == "Sure. " + TWO_CALLS
    assert replay.final.notes == ["the output holds 2 call(s) (get_weather, get_time) but tool_choice is none: returned as text"]
    assert replay.runs[0].answer.content == replay.final.content
    plain = streaming.replay("Just text.", format_id="hermes", policy=policy)
    assert (plain.final.content, plain.final.notes) == ("Just text.", [])


def test_a_named_tool_choice_drops_calls_to_other_functions_and_parallel_false_keeps_the_first():
    named = streaming.Policy(only="get_time", only_why="tool_choice names get_time")
    replay = streaming.replay(TWO_CALLS, format_id="hermes", policy=named)
    assert replay.ok, replay.summary()
    assert [c.name for c in replay.final.calls] == ["get_time"]
    assert replay.final.notes == ["dropped 1 call(s) to other functions (get_weather): tool_choice names get_time"]
    first = streaming.Policy(max_calls=1, max_why="parallel_tool_calls is false")
    replay = streaming.replay(TWO_CALLS, format_id="hermes", policy=first)
    assert replay.ok, replay.summary()
    assert [c.name for c in replay.final.calls] == ["get_weather"]
    assert replay.final.notes == ["kept the first 1 of 2 calls (get_weather, get_time): parallel_tool_calls is false"]


def test_the_ring_keeps_the_last_n_and_the_log_reads_back(tmp_path):
    log = tmp_path / "traffic.jsonl"
    ring = traffic.Traffic(size=3, log_path=str(log))
    for n in range(5):
        ring.add({"wrapper": f"w{n}", "status": 200})
    assert [e["wrapper"] for e in ring.entries()] == ["w4", "w3", "w2"]
    assert len(log.read_text(encoding="utf-8").splitlines()) == 5
    fresh_ring = traffic.Traffic(size=2, log_path=str(log))
    assert fresh_ring.load() == 2
    assert [e["wrapper"] for e in fresh_ring.entries()] == ["w4", "w3"]
    assert fresh_ring.add({"wrapper": "next"})["id"] == 6, "ids go on after the loaded ones"
    running = fresh_ring.start({"wrapper": "slow", "status": traffic.IN_PROGRESS})
    assert fresh_ring.entries()[0] is running and "slow" not in log.read_text(encoding="utf-8"), "logged when it ends"
    version = fresh_ring.version
    fresh_ring.finish(running, status=200)
    assert fresh_ring.version > version and json.loads(log.read_text(encoding="utf-8").splitlines()[-1])["status"] == 200
    log.write_text('{"wrapper": "ok"}\nnot json\n', encoding="utf-8")
    with pytest.raises(traffic.TrafficError, match="line 2"):
        fresh_ring.load()
    with pytest.raises(traffic.TrafficError, match="--traffic-log"):
        traffic.Traffic().load()


def test_a_key_is_needed_wherever_others_can_reach_the_app():
    assert key_problem(StartupConfig(), "") is None
    assert "--api-key" in key_problem(StartupConfig(host="0.0.0.0", expose_without_auth=True), "Bearer x")
    assert "--api-key" in key_problem(StartupConfig(auth=("u", "p")), "")
    exposed = StartupConfig(host="0.0.0.0", auth=("u", "p"), api_key="k3y")
    assert key_problem(exposed, "Bearer k3y") is None
    assert "wrong API key" in key_problem(exposed, "Bearer k3")
    assert "wrong API key" in key_problem(exposed, "Basic k3y")
