"""The streamed answer equals the blocking one: recorded outputs replayed at chunk sizes 1, 2, 7 and whole through
the incremental parse and the chunk builder, read back as a client reads SSE; the traffic ring; the key rule."""

from __future__ import annotations

import json

import pytest

import flow
from endpoint.server import key_problem
from endpoint.translate import Chunks, message
from flow import streaming, traffic
from flow.startup import StartupConfig
from tests.conftest import FIXTURES

CORPUS = [json.loads(line) for line in (FIXTURES / "parsers" / "dev_corpus.jsonl").read_text(encoding="utf-8").splitlines()]
MEMGPT = json.loads((FIXTURES / "memgpt" / "raw_outputs.json").read_text(encoding="utf-8"))
CASES = ([pytest.param(row["format"], None, row["raw"], id=f"{row['format']}-{n}") for n, row in enumerate(CORPUS)]
         + [pytest.param(None, "chatml", raw, id=f"chatml-{name}") for name, raw in MEMGPT.items()])


def client_view(events: list[str]) -> dict:
    """The message a client assembles from `data:` events (content, tool_calls by index)."""
    content, calls = None, {}
    for event in events:
        assert event.startswith("data: ") and event.endswith("\n\n")
        delta = json.loads(event[6:])["choices"][0]["delta"]
        if delta.get("content"):
            content = (content or "") + delta["content"]
        for t in delta.get("tool_calls", []):
            if "id" in t:
                assert t["index"] not in calls and t["function"]["name"]
                calls[t["index"]] = {"name": t["function"]["name"], "arguments": t["function"]["arguments"]}
            else:
                calls[t["index"]]["arguments"] += t["function"]["arguments"]
    return {"content": content, "tool_calls": [calls[i] for i in sorted(calls)] or None}


def blocking_view(answer: streaming.Answer) -> dict:
    m = message(answer, "tools")
    calls = [{"name": c["function"]["name"], "arguments": c["function"]["arguments"]} for c in m.get("tool_calls", [])]
    return {"content": m["content"], "tool_calls": calls or None}


@pytest.mark.parametrize("format_id, wrapper, raw", CASES)
def test_replayed_streams_give_the_blocking_answer(format_id, wrapper, raw):
    def parse(text):
        return flow.parse(text, wrapper=wrapper, format_id=format_id)

    final = streaming.answer(parse(raw), raw)
    for size in (1, 2, 7, max(1, len(raw))):
        incremental, chunks = streaming.IncrementalParse(parse), Chunks("m", "tools")
        events = []
        for end in range(size, len(raw) + size, size):
            events += [chunks.delta(d) for d in incremental.feed(raw[:end])]
        events += [chunks.delta(d) for d in incremental.finish(final)]
        assert incremental.diverged is None, f"chunk size {size}"
        assert client_view(events) == blocking_view(final), f"chunk size {size}"


def test_content_and_earlier_calls_arrive_before_the_end():
    raw = ("Let me look both up for you now.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 1}}\n</tool_call>\n"
           "<tool_call>\n{\"name\": \"b\", \"arguments\": {}}\n</tool_call>")
    incremental = streaming.IncrementalParse(lambda text: flow.parse(text, format_id="hermes"))
    early = []
    for end in range(1, len(raw)):
        early += incremental.feed(raw[:end])
    assert "".join(d.text for d in early if d.kind == "content").startswith("Let me look both up")
    assert [d.text for d in early if d.kind == "call"] == ["a"], "the first call is complete once the second begins"
    rest = incremental.finish(streaming.answer(flow.parse(raw, format_id="hermes"), raw))
    assert [d.text for d in rest if d.kind == "call"] == ["b"]


def test_a_stream_that_the_final_parse_contradicts_is_named():
    two = '<tool_call>{"name": "a", "arguments": {}}</tool_call><tool_call>{"name": "b", "arguments": {}}</tool_call>'
    incremental = streaming.IncrementalParse(lambda text: flow.parse(two, format_id="hermes"))  # a parser that changes its mind
    assert [d.kind for d in incremental.feed("...")] == ["call", "arguments"]
    incremental.finish(streaming.Answer(content="nothing parsed"))
    assert "1 calls were streamed but the final parse has 0" in incremental.diverged


def test_the_ring_keeps_the_last_n_and_the_log_reads_back(tmp_path):
    log = tmp_path / "traffic.jsonl"
    ring = traffic.Traffic(size=3, log_path=str(log))
    for n in range(5):
        ring.add({"wrapper": f"w{n}", "status": 200})
    assert [e["wrapper"] for e in ring.entries()] == ["w4", "w3", "w2"]
    assert len(log.read_text(encoding="utf-8").splitlines()) == 5
    fresh = traffic.Traffic(size=2, log_path=str(log))
    assert fresh.load() == 2
    assert [e["wrapper"] for e in fresh.entries()] == ["w4", "w3"]
    assert fresh.add({"wrapper": "next"})["id"] == 6, "ids go on after the loaded ones"
    log.write_text('{"wrapper": "ok"}\nnot json\n', encoding="utf-8")
    with pytest.raises(traffic.TrafficError, match="line 2"):
        fresh.load()
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
