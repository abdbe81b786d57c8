"""What the round-trip lint line costs on a keystroke.

The page re-lints on every keystroke in the template box (an 80 ms keystroke target). The round
trip (`wrappers.round_trip.check_cached`) is remembered per template text and parser, so a
keystroke costs:

- when the template changed: the generation-prompt render, one render of the assistant turn per
  input shape tried and one parse per shape that renders (a wrapper that reads back with its
  first shape: two renders and one parse). Compiling the new template is not counted: the page
  renders its prompt with it first, and the compiled template is cached;
- when it did not (the conversation or a control changed): a dictionary look-up.

Per built-in wrapper: the median ms of a changed template (a unique Jinja comment appended, as
after a real keystroke; its compile timed apart) and of an unchanged one.

    python bench/round_trip.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import header, median_ms

import wrappers  # noqa: E402
from wrappers import round_trip  # noqa: E402
from wrappers.render import _compile  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    header("round trip per keystroke")
    rows = []
    edit = 0
    for name in wrappers.names():
        w = wrappers.get(name)
        if not w.builtin or w.parser == "plain":
            continue
        compiled, changed, same = [], [], []
        for _ in range(args.repeat):
            edit += 1
            template = f"{w.template}{{# keystroke {edit} #}}"
            t = time.perf_counter()
            _compile(template)  # what the page's own render of the prompt does first
            compiled.append(time.perf_counter() - t)
            t = time.perf_counter()
            result = round_trip.check_cached(w, template)
            changed.append(time.perf_counter() - t)
            t = time.perf_counter()
            round_trip.check_cached(w, template)
            same.append(time.perf_counter() - t)
        rows.append((median_ms(changed), median_ms(same), median_ms(compiled), name, "ok" if result.ok else result.reason))
    rows.sort(reverse=True)
    print(f"{'wrapper':50s} {'changed ms':>11s} {'same ms':>9s} {'compile ms':>11s}  result")
    for changed_ms, same_ms, compile_ms, name, outcome in rows:
        print(f"{name:50s} {changed_ms:11.2f} {same_ms:9.4f} {compile_ms:11.2f}  {outcome}")
    medians = [r[0] for r in rows]
    print(f"\nchanged template: median of wrappers {statistics.median(medians):.2f} ms, worst {max(medians):.2f} ms "
          f"({rows[0][3]}); unchanged: worst {max(r[1] for r in rows):.4f} ms; compiling the edited template "
          f"(paid by the page's own render): median {statistics.median(r[2] for r in rows):.1f} ms")


if __name__ == "__main__":
    main()
