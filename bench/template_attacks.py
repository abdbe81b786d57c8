"""Hostile templates: the time and the memory each takes before the render limits stop it.

The attacks are tests/fixtures/templates/attacks.json. One process imports the renderer and renders
an ordinary template; then each attack runs in a child forked from it (so that its peak RSS,
ru_maxrss, is its own and starts from the same state): the child notes its RSS, renders the attack,
reads its peak RSS and renders an ordinary template again. Targets: stopped within 10% of the time
limit (2.2 s), at most +100 MB of peak RSS, a refusal naming the limit, the next render served.
Time is wall time, and beside it the CPU time the process got: on a machine busy with other work
the wall time grows by the time the process waited for a core, the CPU time does not.
tests/test_hostile.py runs this script with --json and asserts the same targets.

    python bench/template_attacks.py [--only NAME ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
ATTACKS = ROOT / "tests" / "fixtures" / "templates" / "attacks.json"
TIME_LIMIT = 2.0 * 1.1  # the render limit, plus 10%
MEMORY_LIMIT_MB = 100
CHILD_TIMEOUT = 60


def attacks() -> dict[str, tuple[str, str]]:
    """name -> (template, words the refusal must contain, alternatives split by |); a third number in
    the file repeats the template text."""
    return {name: (entry[0] * (entry[2] if len(entry) > 2 else 1), entry[1])
            for name, entry in json.loads(ATTACKS.read_text(encoding="utf-8"))["attacks"].items()}


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def measure(name: str, template: str, words: str) -> dict:
    """One attack in this (freshly forked) process: seconds, peak RSS over the starting RSS, the message."""
    from wrappers.render import TemplateError, render

    before = _rss_mb()
    start, start_cpu = time.monotonic(), time.process_time()
    try:
        render(template, {})
        message = "(rendered without an error)"
    except TemplateError as e:
        message = str(e)
    seconds, cpu_seconds = time.monotonic() - start, time.process_time() - start_cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    still_serving = render("{{ messages|length }}", {"messages": [1, 2]}) == "2"
    return {"name": name, "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3),
            "peak_mb": round(peak - before, 1), "message": message,
            "names_the_limit": any(w in message for w in words.split("|")), "still_serving": still_serving}


def _in_child(name: str, template: str, words: str) -> dict:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: measure, report, leave without running the parent's cleanup
        os.close(read_end)
        try:
            report = measure(name, template, words)
        except BaseException as e:  # noqa: BLE001  (whatever happens, the parent gets a line)
            report = {"name": name, "error": f"{type(e).__name__}: {e}"}
        os.write(write_end, json.dumps(report).encode())
        os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + CHILD_TIMEOUT
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return {"name": name, "error": f"no answer in {CHILD_TIMEOUT} s"}
        time.sleep(0.01)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    return json.loads(data) if data else {"name": name, "error": "the child died without a report"}


def run(names: list[str]) -> list[dict]:
    from wrappers.render import render

    render("{% for m in messages %}{{ m }}{% endfor %}", {"messages": ["warm", "up"]})
    table = attacks()
    return [_in_child(name, *table[name]) for name in names]


def held(report: dict) -> bool:
    """Within the targets; the time is wall time, or the CPU time the process got if the machine was busy."""
    return ("error" not in report and min(report["seconds"], report["cpu_seconds"]) <= TIME_LIMIT
            and report["peak_mb"] <= MEMORY_LIMIT_MB and report["names_the_limit"] and report["still_serving"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these attacks")
    ap.add_argument("--json", action="store_true", help="one JSON line per attack instead of the table")
    args = ap.parse_args()
    names = args.only or list(attacks())
    if args.json:
        for report in run(names):
            print(json.dumps(report), flush=True)
        return 0

    from _common import header

    header("template attacks")
    print(f"{'attack':42} {'seconds':>8} {'CPU s':>6} {'peak MB':>8}  verdict  message")
    reports = run(names)
    for r in reports:
        if "error" in r:
            print(f"{r['name']:42} {'':8} {'':6} {'':8}  FAILED   {r['error']}")
            continue
        print(f"{r['name']:42} {r['seconds']:8.3f} {r['cpu_seconds']:6.2f} {r['peak_mb']:8.1f}  "
              f"{'ok' if held(r) else 'FAILED':7}  {r['message'][:80]}")
    failed = sum(not held(r) for r in reports)
    worst_time = max((r["seconds"] for r in reports if "error" not in r), default=float("nan"))
    worst_memory = max((r["peak_mb"] for r in reports if "error" not in r), default=float("nan"))
    print(f"\nattacks: {len(reports)}; failed: {failed}; slowest {worst_time:.3f} s, most memory +{worst_memory:.1f} MB "
          f"(targets: <= {TIME_LIMIT:.1f} s, <= +{MEMORY_LIMIT_MB} MB, a refusal naming the limit, the next render served)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
