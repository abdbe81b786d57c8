"""The app's overhead over the model server it drives.

1. A generation through the app's `/generate` API (gradio_client) vs the same HTTP request sent
   straight to the same server: a real `python -m llama_cpp.server` with SmolLM2, 64 tokens, same
   seed, alternating pairs. Target: median ratio app/direct <= 1.05.
2. Time to first streamed chunk: in the page (Chromium, measured in the page from the click on
   Generate to the first characters in the raw-output box) vs the server's own time to first token
   (the first SSE chunk of the same request sent straight). Target: <= 50 ms apart (medians).

    python bench/overhead.py [--pairs 10] [--tokens 64] [--no-browser] [--baseline COMMIT_OR_DIR]

Loopback only: the server and the app listen on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

from _common import checkouts, free_port, header, start_app, start_llama_server, stop, wait_for

from gradio_client import Client  # noqa: E402

import httpx  # noqa: E402

from core.conversation import EXAMPLE_PATH  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def direct(url: str, body: dict) -> tuple[float, float, str]:
    """(total seconds, seconds to the first text chunk, text) for one streamed request straight to the server."""
    text, first = [], None
    start = time.perf_counter()
    with httpx.Client(timeout=120) as client, client.stream("POST", url + "/v1/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            event = json.loads(data)
            for choice in event.get("choices") or []:
                if choice.get("text"):
                    if first is None:
                        first = time.perf_counter() - start
                    text.append(choice["text"])
    return time.perf_counter() - start, first or float("nan"), "".join(text)


def page_first_chunk(app_url: str, runs: int, server: str, body: dict) -> tuple[list[float], list[float]]:
    """Alternating: ms from the click on Generate to the first raw characters in the page, and the
    server's own ms to the first token for the same request."""
    from playwright.sync_api import sync_playwright  # only when a browser is measured

    page_ms, server_ms = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        tab = browser.new_page(viewport={"width": 1366, "height": 768})
        tab.goto(app_url)
        tab.wait_for_function("() => document.querySelector('#prompt-1 textarea')?.value.length > 0", timeout=60000)
        for i in range(runs + 1):
            ms = tab.evaluate("""() => new Promise((resolve) => {
                const box = document.querySelector('#raw-1 textarea');
                box.value = '';  // the previous run's text; the app's first update sets it again
                const t0 = performance.now();
                document.querySelector('#generate-1').click();
                (function poll() {
                    if (box.value.length > 0) return resolve(performance.now() - t0);
                    if (performance.now() - t0 > 120000) return resolve(NaN);
                    setTimeout(poll, 1);
                })();
            })""")
            tab.wait_for_function("() => /Done|❌/.test(document.querySelector('#run-status-1')?.innerText || '')",
                                  timeout=180000)
            _, first, _ = direct(server, body)
            if i:  # the first run warms the page and the server's prompt cache
                page_ms.append(ms)
                server_ms.append(first * 1000)
        browser.close()
    return page_ms, server_ms


def generate_vs_direct(app_url: str, server_url: str, args) -> dict:
    """The /generate API vs the same request straight to the server, alternating pairs; the request's body."""
    client = Client(app_url, verbose=False)
    conversation = EXAMPLE_PATH.read_text()
    params = json.dumps({"max_new_tokens": args.tokens, "seed": args.seed, "temperature": 0.0, "stop": []})
    call = ("openai", "chatml", conversation, server_url, "deterministic", params, "")
    run = client.predict(*call, api_name="/generate")  # warm-up; gives the exact request the app sends
    body = run["request"]["json"]
    direct(server_url, body)  # warm the direct path too
    ratios, app_s, direct_s, same = [], [], [], 0
    for i in range(args.pairs):
        order = ("app", "direct") if i % 2 == 0 else ("direct", "app")  # alternate who goes first
        got = {}
        for who in order:
            start = time.perf_counter()
            if who == "app":
                result = client.predict(*call, api_name="/generate")
                got["app"] = (time.perf_counter() - start, result["raw"], result.get("usage", {}))
            else:
                total, _, text = direct(server_url, body)
                got["direct"] = (total, text, None)
        ratios.append(got["app"][0] / got["direct"][0])
        app_s.append(got["app"][0])
        direct_s.append(got["direct"][0])
        same += got["app"][1] == got["direct"][1]
    client.close()
    return {"body": body, "url": run["request"]["url"], "ratios": ratios, "app": app_s, "direct": direct_s,
            "same": same, "tokens": (got["app"][2] or {}).get("completion_tokens") or f"max {args.tokens}",
            "chars": len(got["app"][1])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--first-chunk-runs", type=int, default=5, help="page runs for time to first chunk (default: %(default)s)")
    ap.add_argument("--no-browser", action="store_true", help="skip the time-to-first-chunk measurement in Chromium")
    ap.add_argument("--baseline", default="", help="a commit or another checkout, measured in the same run")
    args = ap.parse_args()
    header("overhead: the app vs the same request straight to llama_cpp.server")
    browser = not args.no_browser and os.path.exists(CHROMIUM)
    server_port = free_port()
    server = start_llama_server(server_port)
    server_url = f"http://127.0.0.1:{server_port}"
    try:
        wait_for(server_url + "/v1/models", 180, server, interval=0.3)
        for label, root in checkouts(args.baseline).items():
            app_port = free_port()
            app = start_app(app_port, "--backend-type", "openai", "--backend-url", server_url, root=root,
                            log_path=f"/tmp/bench-app-{label}.log")
            app_url = f"http://127.0.0.1:{app_port}"
            try:
                wait_for(app_url + "/config", 180, app, interval=0.3)
                pairs = generate_vs_direct(app_url, server_url, args)
                body = pairs["body"]
                print(f"\n## {label}: /generate vs direct, {args.pairs} pairs, {pairs['tokens']} tokens, "
                      f"{pairs['chars']} characters each (POST {pairs['url']}, prompt {len(body['prompt']):,} chars)")
                print(f"app     median {statistics.median(pairs['app']) * 1000:8.1f} ms")
                print(f"direct  median {statistics.median(pairs['direct']) * 1000:8.1f} ms")
                print(f"ratio   median {statistics.median(pairs['ratios']):.3f}   (min {min(pairs['ratios']):.3f}, "
                      f"max {max(pairs['ratios']):.3f}; target <= 1.05)")
                print(f"identical output in {pairs['same']}/{args.pairs} pairs (same seed)")
                if not browser:
                    print("time to first chunk: skipped (--no-browser or no Chromium at /usr/bin/chromium)")
                    continue
                page_ms, server_ms = page_first_chunk(app_url, args.first_chunk_runs, server_url, body)
                diff = [p - s for p, s in zip(page_ms, server_ms, strict=True)]
                print(f"## {label}: time to first streamed chunk, {len(page_ms)} runs")
                print(f"page (click -> first raw characters, in Chromium)  median {statistics.median(page_ms):7.1f} ms")
                print(f"server's own (first SSE text chunk, direct)        median {statistics.median(server_ms):7.1f} ms")
                print(f"difference                                         median {statistics.median(diff):7.1f} ms  "
                      "(target <= 50 ms)", flush=True)
            finally:
                stop(app)
    finally:
        stop(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
