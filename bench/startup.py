"""Start-up time and memory.

- `python app.py` to a served page: seconds from starting the process to the first 200 on `/`
  (polled every 50 ms). Target: <= 6 s on the 2-core machine.
- Memory: RSS of the app process with the embedded model loaded, after one generation through the
  `/generate` API. Target: <= 700 MB.

    python bench/startup.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from _common import cpu_seconds, free_port, header, rss_mb, start_app, stop, wait_for

from core.conversation import EXAMPLE_PATH  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="cold starts to time (default: %(default)s)")
    args = ap.parse_args()
    header("start-up and memory")

    seconds, cpu, rss_idle, rss_loaded = [], [], [], []
    for i in range(args.runs):
        port = free_port()
        start = time.perf_counter()
        app = start_app(port)
        try:
            served = wait_for(f"http://127.0.0.1:{port}/", 120, app)
            seconds.append(served - start)
            cpu.append(cpu_seconds(app.pid))
            time.sleep(1.0)
            rss_idle.append(rss_mb(app.pid))
            if i == 0:
                from gradio_client import Client

                client = Client(f"http://127.0.0.1:{port}", verbose=False)
                t = time.perf_counter()
                run = client.predict("embedded", "chatml", EXAMPLE_PATH.read_text(), "", "deterministic",
                                     json.dumps({"max_new_tokens": 32}), "", api_name="/generate")
                first_gen = time.perf_counter() - t
                client.close()
                rss_loaded.append(rss_mb(app.pid))
                tokens = (run.get("usage") or {}).get("completion_tokens")
        finally:
            stop(app)
        print(f"run {i + 1}: served after {seconds[-1]:.2f} s ({cpu[-1]:.2f} CPU s), RSS idle {rss_idle[-1]:.0f} MB", flush=True)

    print(f"\n## python app.py -> served page, {args.runs} cold starts")
    print(f"median {statistics.median(seconds):.2f} s  (min {min(seconds):.2f}, max {max(seconds):.2f}; target <= 6 s)")
    print(f"CPU time used until served: median {statistics.median(cpu):.2f} s (the wall time on an idle machine is close to it)")
    print("\n## memory (RSS)")
    print(f"idle, page served                          {statistics.median(rss_idle):6.0f} MB")
    print(f"embedded model loaded, after 1 generation  {rss_loaded[0]:6.0f} MB  (target <= 700 MB)")
    print(f"(first generation incl. model load: {first_gen:.2f} s, {tokens} tokens)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
