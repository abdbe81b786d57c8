"""What a streamed /v1 answer costs the app per chunk, with no model in the way.

The scripted llama.cpp server of the tests (tests/fakes) streams N chunks at once; the same request
goes through the app's /v1 (the whole app as `python app.py` serves it, in this process) and
straight to the server, alternately. Also timed: the app's own work for the stream (the backend read,
the incremental parse, the chunks' JSON) stepped in one thread, without the server's event loop. The
rest of the difference is the crossings between the worker thread and the event loop and the
response writes, once a chunk.

    python bench/stream_cost.py [--chunks 32] [--runs 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from _common import free_port, header

import httpx  # noqa: E402

from endpoint import translate  # noqa: E402
from endpoint.server import _Stream  # noqa: E402
from flow.startup import StartupConfig  # noqa: E402
from tests.fakes import fake_server  # noqa: E402


def read_stream(client: httpx.Client, url: str, body: dict) -> tuple[float, int]:
    """(seconds to the end of the stream, data events) for one streamed request."""
    start, events = time.perf_counter(), 0
    with client.stream("POST", url, json=body) as response:
        for line in response.iter_lines():
            events += line.startswith("data:")
    return time.perf_counter() - start, events


def stepped(body: dict, config: StartupConfig) -> float:
    """Seconds of the app's own work for one stream, stepped in this thread."""
    prepared = translate.prepare(body, config)
    stream, chunks = _Stream(prepared), translate.Chunks(prepared.request.wrapper, prepared.mode)
    start = time.perf_counter()
    while True:
        run, deltas = stream.step()
        for delta in deltas:
            chunks.delta(delta)
        if run.done:
            return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chunks", type=int, default=32)
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    header(f"a streamed /v1 answer of {args.chunks} chunks, no model: the app vs the server's own stream")
    from app import build_app, build_endpoint, launch

    with fake_server("llamacpp", pieces=[f"word{i} " for i in range(args.chunks)]) as fake:
        config = StartupConfig(backend_type="llamacpp", backend_url=fake.url)
        demo = build_app(config)
        _, url, _ = launch(demo, "127.0.0.1", free_port(), routes=build_endpoint(config), prevent_thread_lock=True)
        body = {"model": "qwen2.5", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        via_app = (url + "v1/chat/completions", body)
        direct = (fake.url + "/completion", {"prompt": "hi", "stream": True})
        try:
            with httpx.Client(timeout=30) as client:
                for target in (via_app, direct):
                    read_stream(client, *target)  # warm-up
                app_s, direct_s = [], []
                for _ in range(args.runs):
                    app_s.append(read_stream(client, *via_app)[0])
                    direct_s.append(read_stream(client, *direct)[0])
                events = read_stream(client, *via_app)[1], read_stream(client, *direct)[1]
            own = statistics.median(stepped(body, config) for _ in range(args.runs))
        finally:
            demo.close()
    app_ms, direct_ms = statistics.median(app_s) * 1000, statistics.median(direct_s) * 1000
    added = statistics.median(a - d for a, d in zip(app_s, direct_s, strict=True)) * 1000
    print(f"through /v1   median {app_ms:7.1f} ms ({events[0]} events)")
    print(f"straight      median {direct_ms:7.1f} ms ({events[1]} events)")
    print(f"added         median {added:7.1f} ms, {added / args.chunks:.2f} ms a chunk ({args.runs} pairs)")
    print(f"of which the app's own work, stepped in one thread: {own * 1000:.1f} ms "
          "(the backend read, the incremental parse, the chunks' JSON); the rest: thread <-> event loop, writes")


if __name__ == "__main__":
    sys.exit(main())
