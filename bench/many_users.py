"""Many users: concurrent gradio_client sessions doing render / parse / generate against one app.

The llama_cpp.server runs with `--interrupt_requests False`: by default it aborts the stream in
progress whenever a new request arrives, which the app reports as a stream that stopped mid-way.

Each session renders its own edited template and conversation, parses its own output and generates
with its own conversation (on a real llama_cpp.server, short completions), and checks that every
answer holds its own marker and no other session's: no state leaks between sessions. The app's
RSS is sampled over the run. Targets: no errors, no leaks, memory flat.

    python bench/many_users.py [--sessions 16] [--duration 120] [--tokens 8]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import threading
import time

from _common import free_port, header, rss_mb, start_app, start_llama_server, stop, wait_for

MARK = re.compile(r"SESSION-(\d+)-")


def session(i: int, app_url: str, server_url: str, until: float, tokens: int, stats: dict, lock: threading.Lock) -> None:
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    n = 0
    try:
        while time.monotonic() < until:
            n += 1
            mark = f"SESSION-{i}-{n}"
            conv = json.dumps({"messages": [{"role": "system", "content": f"You are {mark}."},
                                            {"role": "user", "content": f"Hello from {mark}, say hi."}],
                               "functions": []})
            op = ("render", "parse", "generate")[n % 3]
            start = time.perf_counter()
            try:
                if op == "render":
                    template = f"[{mark}]{{% for m in messages %}}<{{{{ m.role }}}}>{{{{ m.content }}}}{{% endfor %}}"
                    out = client.predict("chatml", conv, template, api_name="/render")
                    seen = out
                elif op == "parse":
                    raw = f' "send_message", "params": {{"inner_thoughts": "{mark}", "message": "hi {mark}"}}}}'
                    out = client.predict(raw, "chatml", None, None, api_name="/parse")
                    seen = json.dumps(out)
                else:
                    out = client.predict("openai", "chatml", conv, server_url, "deterministic",
                                         json.dumps({"max_new_tokens": tokens}), "", api_name="/generate")
                    seen = out["prompt"]
                ok = mark in seen and {int(m) for m in MARK.findall(seen)} == {i}
                with lock:
                    stats["calls"][op] += 1
                    stats["latency"][op].append(time.perf_counter() - start)
                    if not ok:
                        stats["leaks"].append((i, op, seen[:200]))
            except Exception as e:  # noqa: BLE001  (every failure is counted and shown)
                with lock:
                    stats["errors"].append((i, op, f"{type(e).__name__}: {str(e)[:200]}"))
    finally:
        client.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=16)
    ap.add_argument("--duration", type=float, default=120.0, help="seconds (default: %(default)s)")
    ap.add_argument("--tokens", type=int, default=8, help="max new tokens per generation (default: %(default)s)")
    args = ap.parse_args()
    header(f"many users: {args.sessions} concurrent sessions for {args.duration:g} s")

    server_port, app_port = free_port(), free_port()
    server = start_llama_server(server_port, queue=True)  # concurrent generations wait their turn
    server_url = f"http://127.0.0.1:{server_port}"
    app = None
    try:
        wait_for(server_url + "/v1/models", 180, server, interval=0.3)
        app = start_app(app_port)
        app_url = f"http://127.0.0.1:{app_port}"
        wait_for(app_url + "/config", 180, app, interval=0.3)
        stats = {"calls": {"render": 0, "parse": 0, "generate": 0}, "latency": {"render": [], "parse": [], "generate": []},
                 "leaks": [], "errors": []}
        lock = threading.Lock()
        rss = [(0.0, rss_mb(app.pid))]
        start = time.monotonic()
        until = start + args.duration
        threads = [threading.Thread(target=session, args=(i, app_url, server_url, until, args.tokens, stats, lock), daemon=True)
                   for i in range(args.sessions)]
        for t in threads:
            t.start()
        step = max(args.duration / 12, 1.0)
        while any(t.is_alive() for t in threads):
            time.sleep(min(step, max(until - time.monotonic(), 0.5)))
            rss.append((time.monotonic() - start, rss_mb(app.pid)))
        for t in threads:
            t.join()
        rss.append((time.monotonic() - start, rss_mb(app.pid)))
    finally:
        if app is not None:
            stop(app)
        stop(server)

    total = sum(stats["calls"].values())
    print("## calls")
    for op, n in stats["calls"].items():
        lat = stats["latency"][op]
        med = f"median {statistics.median(lat) * 1000:7.1f} ms" if lat else ""
        print(f"{op:9} {n:6d}  {med}")
    print(f"total {total} calls in {args.duration:g} s ({total / args.duration:.1f}/s)")
    print(f"errors: {len(stats['errors'])}")
    for e in stats["errors"][:10]:
        print("  ", e)
    print(f"cross-session leaks: {len(stats['leaks'])}")
    for e in stats["leaks"][:10]:
        print("  ", e)
    print("\n## app RSS over time (s: MB)")
    print("  ".join(f"{t:.0f}: {m:.0f}" for t, m in rss))
    after_warmup = [m for t, m in rss if t >= args.duration * 0.25]
    if len(after_warmup) >= 2:
        print(f"growth after the first quarter: {after_warmup[-1] - after_warmup[0]:+.0f} MB")
    return 1 if stats["errors"] or stats["leaks"] else 0


if __name__ == "__main__":
    sys.exit(main())
