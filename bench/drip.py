"""A misbehaving server against the app's backend client: the figures issue 14 asks for.

1. Drip: a server that sends its stream one byte a second, the generation's timeout 3 s: the wall
   time until the request ends (target: at most the timeout + 1 s), per server framing.
2. A 400 MB stream line with no line end: the client's peak memory (ru_maxrss) over a process that
   imported the same modules and sent nothing (target: at most +100 MB).

    python bench/drip.py [--timeout 3] [--flood-mb 400]

The servers are the test suite's protocol fakes (tests/fakes), on loopback.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from _common import ROOT, header

import backends  # noqa: E402
from backends import BackendError, Settings  # noqa: E402
from tests.fakes import fake_server  # noqa: E402

# one request in a fresh process; prints its peak resident memory in KB (sys.argv[3] == "idle": no request)
CLIENT = """
import resource, sys
import backends
if sys.argv[3] != "idle":
    try:
        backends.create(sys.argv[1], backends.Settings(url=sys.argv[2], model="m", timeout=120)).complete("x", {})
    except backends.BackendError as e:
        print(e, file=sys.stderr)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def drip_seconds(kind: str, timeout: float) -> tuple[float, str]:
    with fake_server(kind, drip=1.0, models=["m"]) as fake:
        backend = backends.create(kind, Settings(url=fake.url, model="m", timeout=timeout))
        start = time.monotonic()
        try:
            backend.complete("Say hi", {"max_new_tokens": 8})
            message = "finished (not expected)"
        except BackendError as e:
            message = str(e)
        return time.monotonic() - start, message


def peak_kb(kind: str, url: str, mode: str) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-c", CLIENT, kind, url, mode], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    return int(done.stdout.strip().splitlines()[-1]), done.stderr.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--flood-mb", type=int, default=400)
    args = ap.parse_args()
    header("a misbehaving server: drip and an endless line")
    print(f"drip, 1 byte/s, timeout {args.timeout:g} s (target <= {args.timeout + 1:g} s):")
    for kind in ("llamacpp", "openai", "ollama", "koboldcpp"):
        seconds, message = drip_seconds(kind, args.timeout)
        print(f"  {kind:10} {seconds:5.2f} s  {message[message.find('(') + 1:message.find('):')]}")
    print(f"\na {args.flood_mb} MB stream line with no line end (target <= +100 MB):")
    for kind in ("llamacpp", "ollama"):
        with fake_server(kind, flood=args.flood_mb * 1_000_000, models=["m"]) as fake:
            idle, _ = peak_kb(kind, fake.url, "idle")
            start = time.monotonic()
            peak, message = peak_kb(kind, fake.url, "flood")
            seconds = time.monotonic() - start
        print(f"  {kind:10} peak {peak / 1024:6.1f} MB vs {idle / 1024:6.1f} MB idle: +{(peak - idle) / 1024:.1f} MB "
              f"in {seconds:.1f} s; {message.split(' sent ', 1)[-1][:60]}")


if __name__ == "__main__":
    main()
