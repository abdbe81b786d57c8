"""Start-up time and memory.

- `python app.py` to a served page: seconds from starting the process to the first 200 on `/`
  (polled every 50 ms), beside `python -c "import gradio"` timed in the same run, interleaved.
  Target: at most 0.5 s more than importing Gradio.
- Memory: RSS of the app process with the embedded model loaded, after one generation through the
  `/generate` API. Target: <= 700 MB.

    python bench/startup.py [--runs 3] [--baseline DIR]   # DIR: another checkout, measured in the same run
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

from _common import checkouts, cpu_seconds, free_port, header, rss_mb, start_app, stop, wait_for

from gradio_client import Client  # noqa: E402

from core.conversation import EXAMPLE_PATH  # noqa: E402


def import_gradio_seconds() -> tuple[float, float]:
    """(wall seconds, CPU seconds) of `python -c "import gradio"`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import gradio"], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - start, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def cold_start(root) -> tuple[float, float, float]:
    """(seconds to the served page, CPU seconds until then, idle RSS MB) for one `python app.py`."""
    port = free_port()
    start = time.perf_counter()
    app = start_app(port, root=root)
    try:
        served = wait_for(f"http://127.0.0.1:{port}/", 120, app)
        cpu = cpu_seconds(app.pid)
        time.sleep(1.0)
        return served - start, cpu, rss_mb(app.pid)
    finally:
        stop(app)


def loaded_rss(root) -> tuple[float, float, int | None]:
    """(RSS MB after one embedded generation, seconds of that generation incl. the model load, tokens)."""
    port = free_port()
    app = start_app(port, root=root)
    try:
        wait_for(f"http://127.0.0.1:{port}/", 120, app)
        client = Client(f"http://127.0.0.1:{port}", verbose=False)
        t = time.perf_counter()
        run = client.predict("embedded", "chatml", EXAMPLE_PATH.read_text(), "", "deterministic",
                             json.dumps({"max_new_tokens": 32}), "", api_name="/generate")
        seconds = time.perf_counter() - t
        client.close()
        return rss_mb(app.pid), seconds, (run.get("usage") or {}).get("completion_tokens")
    finally:
        stop(app)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="cold starts to time per checkout (default: %(default)s)")
    ap.add_argument("--baseline", default="", help="another checkout of the app to measure beside this one")
    ap.add_argument("--no-model", action="store_true", help="skip the RSS with the embedded model loaded")
    args = ap.parse_args()
    header("start-up and memory")
    roots = checkouts(args.baseline)
    gradio_s, gradio_cpu = [], []
    results = {label: {"served": [], "cpu": [], "idle": []} for label in roots}
    for i in range(args.runs):  # interleaved, so a busier moment of the machine hits every figure alike
        wall, cpu = import_gradio_seconds()
        gradio_s.append(wall)
        gradio_cpu.append(cpu)
        for label, root in roots.items():
            served, cpu, idle = cold_start(root)
            for key, v in (("served", served), ("cpu", cpu), ("idle", idle)):
                results[label][key].append(v)
            print(f"run {i + 1} {label}: served after {served:.2f} s ({cpu:.2f} CPU s), RSS idle {idle:.0f} MB; "
                  f"import gradio {gradio_s[-1]:.2f} s ({gradio_cpu[-1]:.2f} CPU s)", flush=True)

    base, base_cpu = statistics.median(gradio_s), statistics.median(gradio_cpu)
    print(f"\n## python app.py -> served page, {args.runs} cold starts each; python -c 'import gradio' median {base:.2f} s "
          f"({base_cpu:.2f} CPU s)")
    for label, r in results.items():
        served, cpu = statistics.median(r["served"]), statistics.median(r["cpu"])
        print(f"{label:9} median {served:.2f} s (min {min(r['served']):.2f}, max {max(r['served']):.2f}): "
              f"{served - base:+.2f} s over importing Gradio (target <= +0.50 s); CPU {cpu:.2f} s, {cpu - base_cpu:+.2f} CPU s "
              f"over importing Gradio (less sensitive to a busy machine); RSS idle {statistics.median(r['idle']):.0f} MB")
    if not args.no_model:
        print("\n## memory with the embedded model loaded, after 1 generation (target <= 700 MB)")
        for label, root in roots.items():
            rss, seconds, tokens = loaded_rss(root)
            print(f"{label:9} {rss:6.0f} MB  (first generation incl. model load: {seconds:.2f} s, {tokens} tokens)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
