"""A busy app: another user's answer time while many generations hang on a backend that never answers.

A loopback server accepts every connection and never replies; N `/generate` calls go to it (from
N/4 gradio_client sessions, 4 each), then another user's `/render` and a plain `GET /config` are
timed, and the timings are repeated a few times while the generations still hang. Target: `/render`
answers within 1 s (issue 14). The hanging calls end when the silent server closes their connections.

    python bench/busy_app.py [--hanging 40] [--samples 5] [--baseline COMMIT_OR_DIR]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import threading
import time

from _common import checkouts, free_port, header, start_app, stop, wait_for

from gradio_client import Client  # noqa: E402

import httpx  # noqa: E402

from core.conversation import EXAMPLE_PATH  # noqa: E402

ANSWER_TIMEOUT = 60  # seconds an answer may take before it counts as none


class SilentServer:
    """Accepts connections on loopback and never answers them."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.socket.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.done.is_set():
            try:
                self.held.append(self.socket.accept()[0])
            except TimeoutError:
                continue

    def close(self) -> None:
        self.done.set()
        self.thread.join(timeout=5)
        for connection in self.held:
            connection.close()
        self.socket.close()


def timed(call) -> float:
    """Seconds `call` took, or inf when it failed or took longer than ANSWER_TIMEOUT."""
    start = time.perf_counter()
    try:
        call()
    except Exception:  # noqa: BLE001  (a timeout or an error: no answer)
        return float("inf")
    return time.perf_counter() - start


def measure(url: str, hanging: int, samples: int) -> tuple[list[float], list[float], int]:
    """(seconds per /render, seconds per GET /config, generations still hanging when measured)."""
    silent = SilentServer()
    example = EXAMPLE_PATH.read_text()
    clients = [Client(url, verbose=False) for _ in range(max(1, hanging // 4))]
    other = Client(url, verbose=False)  # the other user, connected before the app gets busy
    try:
        jobs = [clients[i % len(clients)].submit("openai", "chatml", example, silent.url, "deterministic",
                                                 '{"max_new_tokens": 4}', "", api_name="/generate")
                for i in range(hanging)]
        time.sleep(3)  # every call has reached the app: running, or waiting in its queue
        render_s, config_s = [], []
        for _ in range(samples):
            render_s.append(timed(lambda: other.submit("chatml", example, None, api_name="/render").result(ANSWER_TIMEOUT)))
            config_s.append(timed(lambda: httpx.get(url + "/config", timeout=ANSWER_TIMEOUT).raise_for_status()))
        return render_s, config_s, sum(not j.done() for j in jobs)
    finally:
        silent.close()
        for c in [*clients, other]:
            c.close()


def show(values: list[float]) -> str:
    if any(v == float("inf") for v in values):
        return f"{sum(v == float('inf') for v in values)}/{len(values)} got NO answer within {ANSWER_TIMEOUT} s"
    return f"median {statistics.median(values) * 1000:7.1f} ms (max {max(values) * 1000:.1f} ms)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hanging", type=int, default=40, help="generations hanging on the silent server (default: %(default)s)")
    ap.add_argument("--samples", type=int, default=5, help="/render and /config calls timed (default: %(default)s)")
    ap.add_argument("--baseline", default="", help="a commit or another checkout, measured in the same run")
    args = ap.parse_args()
    header(f"busy app: another user's answers while {args.hanging} generations hang")
    for label, root in checkouts(args.baseline).items():
        port = free_port()
        app = start_app(port, root=root, log_path=f"/tmp/bench-busy-{label}.log")
        try:
            wait_for(f"http://127.0.0.1:{port}/config", 180, app, interval=0.3)
            render_s, config_s, still = measure(f"http://127.0.0.1:{port}", args.hanging, args.samples)
        finally:
            stop(app)
        print(f"{label:9} /render     {show(render_s)}  (target <= 1000 ms)")
        print(f"{label:9} GET /config {show(config_s)}  ({still} of {args.hanging} generations still hanging)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
