"""Many users: concurrent gradio_client sessions doing render / parse / generate against one app.

The llama_cpp.server runs with `--interrupt_requests False`: by default it aborts the stream in
progress whenever a new request arrives, which the app reports as a stream that stopped mid-way.

Each session renders its own edited template and conversation, parses its own output and generates
with its own conversation (on a real llama_cpp.server, short completions), and checks that every
answer holds its own marker and no other session's: no state leaks between sessions. The app's
RSS is sampled over the run. Targets: no errors, no leaks, RSS flat after warm-up (within 5 % over the
second half of the run).

    python bench/many_users.py [--sessions 16] [--minutes 10] [--tokens 8] [--baseline DIR]
    (--baseline: another checkout, run at the same time on its own server, so both see the same machine)
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import threading
import time

from _common import checkouts, free_port, header, rss_mb, start_app, start_llama_server, stop, wait_for

from gradio_client import Client  # noqa: E402

MARK = re.compile(r"SESSION-(\d+)-")


def session(i: int, app_url: str, server_url: str, until: float, tokens: int, stats: dict, lock: threading.Lock) -> None:
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


def new_stats() -> dict:
    return {"calls": {"render": 0, "parse": 0, "generate": 0}, "latency": {"render": [], "parse": [], "generate": []},
            "leaks": [], "errors": [], "rss": []}


def report(label: str, stats: dict, seconds: float) -> bool:
    """Print one app's figures; True when it met the targets."""
    total = sum(stats["calls"].values())
    print(f"\n## {label}: calls")
    for op, n in stats["calls"].items():
        lat = stats["latency"][op]
        med = f"median {statistics.median(lat) * 1000:7.1f} ms" if lat else ""
        print(f"{op:9} {n:6d}  {med}")
    print(f"total {total} calls in {seconds:g} s ({total / seconds:.1f}/s)")
    print(f"errors: {len(stats['errors'])}")
    for e in stats["errors"][:10]:
        print("  ", e)
    print(f"cross-session leaks: {len(stats['leaks'])}")
    for e in stats["leaks"][:10]:
        print("  ", e)
    rss = stats["rss"]
    print("app RSS over time (s: MB): " + "  ".join(f"{t:.0f}: {m:.0f}" for t, m in rss))
    second_half = [m for t, m in rss if t >= seconds / 2]
    flat = True
    if len(second_half) >= 2:
        growth = (max(second_half) - second_half[0]) / second_half[0] * 100
        flat = growth <= 5
        print(f"RSS over the second half: {second_half[0]:.0f} -> max {max(second_half):.0f} MB ({growth:+.1f} %, "
              f"target <= +5 %): {'flat' if flat else 'GROWING'}")
    return flat and not stats["errors"] and not stats["leaks"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=16)
    ap.add_argument("--minutes", type=float, default=2.0, help="how long (default: %(default)s)")
    ap.add_argument("--tokens", type=int, default=8, help="max new tokens per generation (default: %(default)s)")
    ap.add_argument("--baseline", default="", help="another checkout of the app to run beside this one")
    args = ap.parse_args()
    duration = args.minutes * 60
    header(f"many users: {args.sessions} concurrent sessions for {args.minutes:g} minutes")

    server_port = free_port()
    server = start_llama_server(server_port, queue=True)  # concurrent generations wait their turn
    server_url = f"http://127.0.0.1:{server_port}"
    apps = {}
    try:
        wait_for(server_url + "/v1/models", 180, server, interval=0.3)
        for label, root in checkouts(args.baseline).items():
            port = free_port()
            apps[label] = (start_app(port, root=root, log_path=f"/tmp/bench-app-{label}.log"), f"http://127.0.0.1:{port}")
        for process, url in apps.values():
            wait_for(url + "/config", 180, process, interval=0.3)
        stats = {label: new_stats() for label in apps}
        lock = threading.Lock()
        start = time.monotonic()
        until = start + duration
        threads = [threading.Thread(target=session, args=(i, url, server_url, until, args.tokens, stats[label], lock),
                                    daemon=True) for label, (_, url) in apps.items() for i in range(args.sessions)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            for label, (process, _) in apps.items():
                stats[label]["rss"].append((time.monotonic() - start, rss_mb(process.pid)))
            time.sleep(min(max(duration / 20, 1.0), max(until - time.monotonic(), 0.5)))
        for label, (process, _) in apps.items():
            stats[label]["rss"].append((time.monotonic() - start, rss_mb(process.pid)))
    finally:
        for process, _ in apps.values():
            stop(process)
        stop(server)
    met = [report(label, stats[label], duration) for label in stats]
    return 0 if all(met) else 1


if __name__ == "__main__":
    sys.exit(main())
