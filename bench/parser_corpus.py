"""The held-out parser corpus (outputs taken from other projects' parser tests) scored per checkout:
how many parse to exactly the expected calls and content, as tests/test_parsers_upstream.py scores
them. The corpus file is this checkout's; each checkout's own parsers read it, in its own process.

    python bench/parser_corpus.py [--baseline COMMIT_OR_DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from _common import ROOT, checkouts, header

CORPUS = ROOT / "tests" / "fixtures" / "parsers" / "upstream_corpus.jsonl"

# Runs inside the checkout being measured: its `parsers` and its test helpers (the memgpt prefix, the
# schema built from the expected calls), the corpus path as argv[1]. Prints one JSON line.
SCORE = """
import json, sys
import parsers
from parsers import ParseContext
from tests.test_parsers import PREFIXES, functions_for
cases = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
misses = []
for case in cases:
    context = ParseContext(prefix=PREFIXES.get(case["format"], ""), functions=functions_for(case["expected"]))
    result = parsers.parse(case["format"], case["raw"], context)
    got = [{"name": c.name, "arguments": c.arguments} for c in result.tool_calls]
    if got != case["expected"] or result.content != case["content"]:
        misses.append(case["format"])
print(json.dumps({"cases": len(cases), "misses": misses}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", default="", help="a commit or another checkout, measured in the same run")
    args = ap.parse_args()
    header("held-out parser corpus")
    for label, root in checkouts(args.baseline).items():
        done = subprocess.run([sys.executable, "-c", SCORE, str(CORPUS)], cwd=root, capture_output=True, text=True)
        if done.returncode:
            print(f"{label:9s} failed: {done.stderr.strip().splitlines()[-1]}")
            continue
        score = json.loads(done.stdout)
        passed = score["cases"] - len(score["misses"])
        by_format = {f: score["misses"].count(f) for f in sorted(set(score["misses"]))}
        print(f"{label:9s} {passed}/{score['cases']} = {passed / score['cases']:.1%} (goal >= 98%)"
              + (f"; misses by format: {by_format}" if by_format else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
