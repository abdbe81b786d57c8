"""Render and parse speed.

- Render: a 50-message conversation with 10 functions, with every built-in wrapper: median ms per
  render (compiled templates cached, as in the app). Target: <= 2 ms median for every wrapper.
- Limits: the same renders against the same template in a plain `ImmutableSandboxedEnvironment`
  (same options, filters and globals, compiled once, no limits), interleaved, median CPU time of
  the process (the watchdog thread included). Target: ours <= 1.3x plain for every wrapper.
  `--baseline COMMIT_OR_DIR` adds another checkout's renderer (its wrappers/render.py) to the
  same interleaved run: before and after side by side.
- Parse: the dev corpus (tests/fixtures/parsers/dev_corpus.jsonl) parsed per format on one core:
  outputs per second. Target: >= 5,000 outputs/s per format.
- MemGPT: its own wrapper code (pymemgpt 0.3.x, downloaded into a temporary folder, never installed
  into the project) on the same conversation and MemGPT's raw outputs, beside ours.

    python bench/render_parse.py [--repeat 200] [--no-memgpt] [--baseline COMMIT_OR_DIR]
"""

from __future__ import annotations

import argparse
import copy
import datetime
import glob
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
import zipfile

from _common import ROOT, checkouts, conversation, header, median_ms

import parsers  # noqa: E402
import wrappers  # noqa: E402
from parsers import ParseContext  # noqa: E402
from core.conversation import Conversation  # noqa: E402
from wrappers.render import TemplateError  # noqa: E402

render_module = importlib.import_module("wrappers.render")  # the module: `wrappers.render` is also the function

RENDER_TARGET_MS = 2.0
LIMITS_TARGET = 1.3
PARSE_TARGET = 5000


def variants(data: dict):
    """The conversation as is, then simpler shapes for templates that refuse some roles."""
    yield "full", data
    plain = [m for m in data["messages"] if m["role"] in ("system", "user", "assistant") and "function_call" not in m]
    alternating, want = [plain[0]], "user"
    for m in plain[1:]:
        if m["role"] == want:
            alternating.append(m)
            want = "assistant" if want == "user" else "user"
    yield "user/assistant only", {**data, "messages": alternating}
    merged = [{"role": "user", "content": alternating[0]["content"] + "\n\n" + alternating[1]["content"]}, *alternating[2:]]
    yield "system merged into user", {**data, "messages": merged}
    yield "no functions", {**data, "messages": alternating, "functions": []}


def rendering_shape(w, data: dict) -> tuple[str, Conversation, str] | None:
    """(shape label, conversation, prompt) of the first conversation shape the wrapper renders."""
    for label, shape in variants(data):
        conv = Conversation.from_data(copy.deepcopy(shape))
        try:
            return label, conv, w.render(conv)
        except TemplateError:
            continue
    return None


def bench_render(repeat: int) -> list[tuple[str, float, str, int]]:
    data = conversation(50, 10)
    rows = []
    for name in wrappers.names():
        w = wrappers.get(name)
        if not getattr(w, "builtin", False):
            continue
        found = rendering_shape(w, data)
        if found is None:
            rows.append((name, float("nan"), "refuses every shape", 0))
            continue
        label, conv, prompt = found
        for _ in range(5):
            w.render(conv)
        samples = []
        for _ in range(repeat):
            t = time.perf_counter()
            w.render(conv)
            samples.append(time.perf_counter() - t)
        rows.append((name, median_ms(samples), label, len(prompt)))
    return rows


def plain_renderer():
    """Render like ours, in a plain ImmutableSandboxedEnvironment: same options, filters, tests and
    globals, templates compiled once; no limits."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(**render_module.OPTIONS)
    env.filters.update(render_module.HELPER_FILTERS)
    env.tests.update(render_module.HELPER_TESTS)
    env.globals.update(render_module.HELPER_GLOBALS)
    compiled: dict[str, object] = {}

    def render(source: str, variables: dict, now: str | None = None) -> str:
        template = compiled.get(source) or compiled.setdefault(source, env.from_string(source))
        today = datetime.datetime.fromisoformat(now) if now else datetime.datetime.now()
        return template.render(**variables, strftime_now=today.strftime)

    return render


def baseline_renderer(baseline: str):
    """`render` of another checkout's wrappers/render.py (a folder, or a commit unpacked by `checkouts`),
    imported as a package of its own without running that package's __init__ (which would import the rest
    of that checkout)."""
    package = types.ModuleType("baseline_wrappers")
    package.__path__ = [os.path.join(checkouts(baseline)["baseline"], "wrappers")]
    sys.modules["baseline_wrappers"] = package
    return importlib.import_module("baseline_wrappers.render").render


def bench_limits(repeat: int, baseline: str | None) -> list[dict]:
    """Per built-in Jinja wrapper: median CPU ms per render, plain sandbox vs ours (vs the baseline)."""
    renderers = {"plain": plain_renderer(), "ours": render_module.render}
    if baseline:
        renderers["baseline"] = baseline_renderer(baseline)
    data = conversation(50, 10)
    rows = []
    for name in wrappers.names():
        w = wrappers.get(name)
        if not getattr(w, "builtin", False) or not w.editable:
            continue
        found = rendering_shape(w, data)
        if found is None:
            continue
        _, conv, prompt = found
        variables = w.variables_for(conv)
        same = all(fn(w.template, variables, conv.now) == prompt for fn in renderers.values())
        samples: dict[str, list[float]] = {label: [] for label in renderers}
        for _ in range(repeat):  # interleaved, so that a busy moment of the machine hits every column alike
            for label, fn in renderers.items():
                start = time.process_time()
                fn(w.template, variables, conv.now)
                samples[label].append(time.process_time() - start)
        ms = {label: statistics.median(values) * 1000 for label, values in samples.items()}
        rows.append({"wrapper": name, "same": same, **ms,
                     **{f"{label} ratio": ms[label] / ms["plain"] for label in renderers if label != "plain"}})
    return rows


def print_limits(rows: list[dict], repeat: int) -> None:
    columns = [c for c in ("ours", "baseline") if c in rows[0]]
    print(f"## limits: ours vs a plain ImmutableSandboxedEnvironment, same template and input, CPU time, "
          f"median of {repeat} interleaved (target <= {LIMITS_TARGET}x)")
    print(f"{'wrapper':50} {'plain ms':>9}" + "".join(f" {c + ' ms':>11} {c + ' x':>10}" for c in columns))
    for r in sorted(rows, key=lambda r: -r["ours ratio"]):
        flag = "" if r["ours ratio"] <= LIMITS_TARGET else "  <-- over target"
        flag += "" if r["same"] else "  <-- outputs differ"
        print(f"{r['wrapper']:50} {r['plain']:9.3f}" + "".join(f" {r[c]:11.3f} {r[c + ' ratio']:9.2f}x" for c in columns) + flag)
    for c in columns:
        ratios = sorted((r[c + " ratio"] for r in rows), reverse=True)
        print(f"{c}: worst {ratios[0]:.2f}x, median {statistics.median(ratios):.2f}x, over target "
              f"{sum(1 for x in ratios if x > LIMITS_TARGET)} of {len(ratios)}")
    print()


def bench_parse(min_seconds: float = 0.3) -> list[tuple[str, int, float]]:
    rows = [json.loads(line) for line in (ROOT / "tests/fixtures/parsers/dev_corpus.jsonl").read_text().splitlines() if line.strip()]
    by_format: dict[str, list[str]] = {}
    for r in rows:
        by_format.setdefault(r["format"], []).append(r["raw"])
    out = []
    for fmt in sorted(by_format):
        raws = by_format[fmt]
        context = ParseContext()
        count, start = 0, time.perf_counter()
        while True:
            for raw in raws:
                parsers.parse(fmt, raw, context)
            count += len(raws)
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds and count >= 200:
                break
        out.append((fmt, len(raws), count / elapsed))
    return out


# --- MemGPT's own code -----------------------------------------------------------------------------------

MEMGPT_COMPARE = ["chatml", "chatml-noforce", "chatml-noforce-roles", "llama3", "airoboros-l2-70b-2.1",
                  "dolphin-2.1-mistral-7b", "zephyr-7B"]


def load_memgpt() -> tuple[dict | None, str]:
    """MemGPT's wrapper classes from its 0.3.x wheel, without installing it or running its package __init__."""
    folder = tempfile.mkdtemp(prefix="memgpt-wheel-")
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "pymemgpt==0.3.*", "-d", folder],
                          capture_output=True, text=True, timeout=300)
    wheels = glob.glob(os.path.join(folder, "pymemgpt-*.whl"))
    if done.returncode != 0 or not wheels:
        return None, f"pip download pymemgpt==0.3.* failed: {done.stderr.strip()[-300:]}"
    with zipfile.ZipFile(wheels[0]) as z:
        z.extractall(folder)
    base = os.path.join(folder, "memgpt")
    for pkg, path in (("memgpt", base), ("memgpt.local_llm", os.path.join(base, "local_llm")),
                      ("memgpt.local_llm.llm_chat_completion_wrappers", os.path.join(base, "local_llm", "llm_chat_completion_wrappers"))):
        module = types.ModuleType(pkg)  # skip the package __init__s: they pull in MemGPT's whole server
        module.__path__ = [path]
        sys.modules[pkg] = module
    import importlib

    spec = json.loads((ROOT / "tests/fixtures/memgpt/wrappers.json").read_text())["wrappers"]
    classes = {}
    for name in MEMGPT_COMPARE:
        info = spec[name]
        cls = getattr(importlib.import_module(info["module"]), info["class"])
        obj = cls.__new__(cls)
        try:
            obj.__init__()
        except TypeError:
            pass
        for k, v in info["instance_attrs"].items():
            setattr(obj, k, v)
        classes[name] = obj
    return classes, os.path.basename(wheels[0])


def _time_it(fn, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return samples


def _compare(theirs, ours, data: dict, raws: list[str], repeat: int) -> tuple:
    """(our render ms, MemGPT's render ms or the error it raised, our parses/s, MemGPT's parses/s)."""
    conv = Conversation.from_data(copy.deepcopy(data))
    msgs, fns = data["messages"], data["functions"]
    try:
        theirs.chat_completion_to_prompt(msgs, fns)
        their_render = median_ms(_time_it(lambda: theirs.chat_completion_to_prompt(msgs, fns), repeat))
    except Exception as e:  # MemGPT's own bugs, e.g. zephyr.py uses JSON_LOADS_STRICT without importing it
        their_render = type(e).__name__
    our_render = median_ms(_time_it(lambda: ours.render(conv), repeat))

    def their_parse():
        for raw in raws:
            try:
                theirs.output_to_chat_completion_response(raw)
            except Exception:  # noqa: BLE001  (MemGPT raises on outputs it cannot parse)
                pass

    def our_parse():
        for raw in raws:
            ours.parse(raw)

    n = max(3, repeat // 20)
    their_rate = len(raws) / (sum(_time_it(their_parse, n)) / n)
    our_rate = len(raws) / (sum(_time_it(our_parse, n)) / n)
    return our_render, their_render, our_rate, their_rate


def bench_memgpt(repeat: int, memgpt: dict) -> list[tuple[str, float, float, float, float]]:
    data = conversation(50, 10)
    raws = list(json.loads((ROOT / "tests/fixtures/memgpt/raw_outputs.json").read_text()).values())
    rows = []
    for name, theirs in memgpt.items():
        rows.append((name, *_compare(theirs, wrappers.get(name), copy.deepcopy(data), raws, repeat)))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=200, help="renders per wrapper (default: %(default)s)")
    ap.add_argument("--no-memgpt", action="store_true", help="skip downloading MemGPT's wrapper code")
    ap.add_argument("--baseline", metavar="COMMIT_OR_DIR", help="another commit or checkout whose renderer joins the limits table")
    args = ap.parse_args()
    header("render and parse")

    rows = bench_render(args.repeat)
    print(f"## render: 50 messages, 10 functions, median of {args.repeat} (target <= {RENDER_TARGET_MS} ms)")
    print(f"{'wrapper':50} {'median ms':>9}  {'chars':>7}  conversation shape")
    for name, ms, label, size in rows:
        flag = "" if ms <= RENDER_TARGET_MS else "  <-- over target"
        print(f"{name:50} {ms:9.3f}  {size:7d}  {label}{flag}")
    valid = [r[1] for r in rows if r[1] == r[1]]
    print(f"wrappers: {len(rows)}; worst median {max(valid):.3f} ms; over target: "
          f"{sum(1 for v in valid if v > RENDER_TARGET_MS)}\n")

    print_limits(bench_limits(args.repeat, args.baseline), args.repeat)

    parse_rows = bench_parse()
    print(f"## parse: dev corpus per format, one core (target >= {PARSE_TARGET:,} outputs/s)")
    print(f"{'format':28} {'outputs':>7} {'outputs/s':>10}")
    for fmt, n, rate in parse_rows:
        flag = "" if rate >= PARSE_TARGET else "  <-- under target"
        print(f"{fmt:28} {n:7d} {rate:10,.0f}{flag}")
    print(f"formats: {len(parse_rows)}; slowest {min(r[2] for r in parse_rows):,.0f} outputs/s\n")

    if args.no_memgpt:
        print("## MemGPT: skipped (--no-memgpt)")
        return 0
    memgpt, note = load_memgpt()
    if memgpt is None:
        print(f"## MemGPT: not measured: {note}")
        return 0
    print(f"## MemGPT's own wrapper code ({note}) vs ours, same input")
    print(f"{'wrapper':26} {'render ms ours':>14} {'MemGPT':>8} {'parse/s ours':>13} {'MemGPT':>9}")
    for name, ours_ms, theirs_ms, ours_rate, theirs_rate in bench_memgpt(args.repeat, memgpt):
        theirs_text = f"{theirs_ms:8.3f}" if isinstance(theirs_ms, float) else f"{theirs_ms:>8}"
        print(f"{name:26} {ours_ms:14.3f} {theirs_text} {ours_rate:13,.0f} {theirs_rate:9,.0f}")
    print("(parse: MemGPT's tests/fixtures/memgpt/raw_outputs.json, with each wrapper's own parser; an error name in the\n"
          " MemGPT column is what MemGPT's own code raised on this conversation, a bug of its own)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
