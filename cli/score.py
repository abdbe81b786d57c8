"""`python app.py score ...`: run a scoreboard from the command line, print the matrix, write the JSON."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

import backends
import presets
from backends import Settings
from core.errors import UserError
from flow import startup
from scoreboard import bfcl, catalog, grammar, journal, suites
from scoreboard.report import RunRecord
from scoreboard.runner import ScoreRequest, run_scoreboard


def _names(text: str) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def add_score_command(subparsers) -> argparse.ArgumentParser:
    """Add the `score` subcommand to an argparse subparsers object."""
    defaults = startup.from_environment()
    s = subparsers.add_parser(
        "score", help="run a suite over wrappers x presets (x grammar) on a backend; prints the matrix, writes JSON",
        description="Measure which wrapper, preset and grammar work with a model: every case of a suite, for each "
                    "wrapper x preset (x grammar off/on), N times. Ctrl-C stops and keeps the finished runs.")
    s.add_argument("--backend-type", default=defaults.backend_type, help=f"one of: {', '.join(backends.names())} (default: %(default)s)")
    s.add_argument("--backend-url", action="append", default=None, metavar="URL",
                   help="the server's address, e.g. http://127.0.0.1:8080; repeat it for a pool of servers the runs are spread over")
    s.add_argument("--backend-model", default="", help="model name the server needs")
    s.add_argument("--model", default="", metavar="PATH", help="GGUF file for the embedded backend")
    s.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the server per request (default: %(default)s)")
    s.add_argument("--suite", required=True, help=f"a shipped suite ({', '.join(suites.names())}), a suite .yaml file, or BFCL's "
                   f"categories: {', '.join(bfcl.PREFIX + c for c in bfcl.CATEGORIES)} (several: comma-separated; bfcl:all)")
    s.add_argument("--cases", default="", metavar="N|ID,ID",
                   help="only the first N cases of each BFCL category (of a YAML suite: the first N), "
                        "or these case ids (run in the suite's order, each once)")
    s.add_argument("--bfcl-dir", default="", metavar="DIR",
                   help="BFCL's data folder (BFCL_v4_*.json and possible_answer/); default: the installed bfcl-eval package's")
    s.add_argument("--wrappers", required=True, metavar="A,B", help="comma-separated wrapper names")
    s.add_argument("--presets", default=presets.DEFAULT, metavar="P,Q", help="comma-separated presets (default: %(default)s)")
    s.add_argument("--repeat", type=int, default=1, metavar="N", help="runs per case and cell (default: %(default)s)")
    s.add_argument("--grammar", action="store_true", help="also run every cell grammar-constrained (grammar off and on)")
    s.add_argument("--grammar-only", action="store_true", help="run grammar-constrained cells only")
    s.add_argument("--grammar-kind", choices=("gbnf", "json_schema"), default="gbnf",
                   help="send the constraint as a GBNF grammar or, where the output is pure JSON, a JSON schema (default: %(default)s)")
    s.add_argument("--max-string", type=int, default=grammar.MAX_STRING, metavar="CHARS",
                   help="longest JSON string a grammar allows (default: %(default)s)")
    s.add_argument("--max-calls", type=int, default=grammar.MAX_PARALLEL, metavar="N",
                   help="most calls per answer a grammar allows, where the format has several (default: %(default)s)")
    s.add_argument("--concurrency", type=int, default=0, metavar="K",
                   help="requests in flight at once per server (default: the server's slot count from /props or /slots, else 1)")
    s.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="override a sampling parameter in every preset, e.g. --param max_new_tokens=128")
    s.add_argument("--out", metavar="FILE", help="write the results as JSON; each run is also appended to FILE's .runs.jsonl as it finishes")
    s.add_argument("--resume", action="store_true", help="continue an earlier run of the same command and --out: skip the runs its .runs.jsonl holds "
                        "(another command is refused)")
    s.add_argument("--csv", metavar="FILE", help="also write the matrix as CSV")
    s.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return s


def _progress_line(total: list[int], lock: threading.Lock, done: list[int]):
    def on_run(r: RunRecord) -> None:
        with lock:
            done[0] += 1
            marks = " ".join(k for k, v in r.verdict.to_dict().items() if v) or ("error" if r.error else "-")
            g = "on" if r.grammar else "off"
            print(f"[{done[0]}/{total[0]}] {r.wrapper} | {r.preset} | grammar {g} | {r.case}: {marks}"
                  f"{'' if r.latency_s is None else f' ({r.latency_s:.1f} s)'}", file=sys.stderr, flush=True)
    return on_run


def _pool_lines():
    """Say once, on stderr, when a server leaves the pool."""
    said: set[str] = set()

    def on_servers(servers: list[dict]) -> None:
        for s in servers:
            if s["failed"] and s["url"] not in said:
                said.add(s["url"])
                print(f"server {s['url']} {s['failed']}; its runs go to the other servers", file=sys.stderr, flush=True)
    return on_servers


def run_score(args: argparse.Namespace) -> int:
    log = None
    try:
        params = dict(presets.parse_param(p) for p in args.param)
        suite = catalog.load(args.suite, args.bfcl_dir or None)
        if args.cases.strip().isdigit():
            suite = suite.first(int(args.cases))
        elif args.cases:
            suite = suite.subset(_names(args.cases))
        modes = [True] if args.grammar_only else [False, True] if args.grammar else [False]
        urls = args.backend_url or [startup.from_environment().backend_url or ""]
        request = ScoreRequest(
            backend_type=args.backend_type, suite=suite, wrappers=_names(args.wrappers), presets=_names(args.presets),
            settings=Settings(url=urls[0], model=args.backend_model or args.model or "", timeout=args.timeout),
            grammar=modes, repeat=args.repeat, concurrency=args.concurrency, params=params,
            grammar_kind=args.grammar_kind, max_string=args.max_string, max_calls=args.max_calls, urls=urls)
        if args.resume and not args.out:
            raise ValueError("--resume continues the run recorded beside --out: give the same --out")
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            log = journal.Journal(journal.path_for(args.out), resume=args.resume)
        stop = threading.Event()
        total, done, lock = [0], [0], threading.Lock()
        result: dict = {}

        def progress(d: int, t: int) -> None:
            if total[0] == 0:  # the first call: the runs a resume takes from the journal are done already
                done[0] = d
                if d and not args.quiet:
                    print(f"resuming: {d} of {t} runs are in {log.path}", file=sys.stderr, flush=True)
            total[0] = t

        finished = threading.Event()

        def work() -> None:
            try:
                result["board"] = run_scoreboard(request, progress=progress, stop=stop,
                                                 on_run=None if args.quiet else _progress_line(total, lock, done),
                                                 journal=log, on_servers=_pool_lines())
            except BaseException as e:  # handed to the main thread
                result["error"] = e
            finally:
                finished.set()

        threading.Thread(target=work, name="score", daemon=True).start()
        # wait on an Event, not Thread.join: a join interrupted by Ctrl-C can return early for good
        while not finished.is_set():
            try:
                finished.wait(0.2)
            except KeyboardInterrupt:
                if not stop.is_set():
                    stop.set()
                    print("stopping: runs in flight are dropped, finished runs are kept", file=sys.stderr)
        if "error" in result:
            raise result["error"]
        board = result["board"]
        print(board.table())
        if args.out:
            Path(args.out).write_text(board.to_json() + "\n", encoding="utf-8")
            print(f"wrote {args.out}")
        if args.csv:
            Path(args.csv).write_text(board.to_csv(), encoding="utf-8")
            print(f"wrote {args.csv}")
        failed = [r for r in board.runs if r.error]
        if failed and len(failed) == len(board.runs):
            print(f"error: every run failed; the first: {failed[0].error.split(': ', 1)[-1]}", file=sys.stderr)
            return 2
        if failed:
            print(f"{len(failed)} of {len(board.runs)} runs failed; the first ({failed[0].wrapper}, {failed[0].case}): "
                  f"{failed[0].error}", file=sys.stderr)
        return 0
    except (UserError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if log is not None:
            log.close()

