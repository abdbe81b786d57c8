"""The scoreboard runner: every case of a suite, for each wrapper x preset x grammar mode, N times,
against one backend; concurrent (a thread pool), with progress, stoppable, partial results kept.

Each run goes through the one flow (`flow.generate_stream`: render -> backend -> parse)
and gets a verdict:

- parsed:   the wrapper's parser read the output without an error;
- valid:    parsed, and every call names a known function with arguments valid against its JSON
            schema (`parsers.validate.validate_calls`); a plain answer with no call is valid;
- expected: parsed, and the calls are the ones the case expects (name, required values, schema),
            or no call when the case expects none.

A cell's numbers are sums and means over its stored runs, nothing else.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import io
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import backends
import presets as presets_registry
import wrappers as wrappers_registry
from backends import BackendError, Settings
from jsonschema import validators
from parsers import ParseResult, ToolCall
from parsers.validate import validate_calls
import flow
from core.conversation import Conversation
from presets import PresetError
from wrappers import TemplateError, WrapperError

from . import grammar as grammars
from . import suites as suites_registry
from .suites import Case, ExpectedCall, Expectation, Suite

CELL_KEYS = ("wrapper", "preset", "grammar", "runs", "parsed", "valid", "expected", "mean_latency_s", "mean_completion_tokens")


@dataclass
class ScoreRequest:
    backend_type: str
    suite: Suite | str
    wrappers: list[str]
    presets: list[str]
    settings: Settings = field(default_factory=Settings)
    grammar: list[bool] = field(default_factory=lambda: [False])  # the modes to run: [False], [True] or both
    repeat: int = 1
    concurrency: int = 1
    params: dict = field(default_factory=dict)  # explicit overrides over every preset (e.g. max_new_tokens)
    grammar_kind: str = "gbnf"  # "gbnf" (params["grammar"]) or "json_schema" where the output is pure JSON
    max_string: int = grammars.MAX_STRING  # characters per JSON string in a grammar
    max_calls: int = grammars.MAX_PARALLEL  # calls per answer a grammar allows (where the format has several)


@dataclass
class Job:
    index: int
    wrapper: str
    preset: str
    grammar: bool
    case: Case
    repeat_index: int


@dataclass
class Verdict:
    parsed: bool = False
    valid: bool = False
    expected: bool = False

    def to_dict(self) -> dict:
        return {"parsed": self.parsed, "valid": self.valid, "expected": self.expected}


@dataclass
class RunRecord:
    wrapper: str
    preset: str
    grammar: bool
    case: str
    repeat_index: int
    prompt: str = ""
    raw: str = ""
    parsed: dict | None = None
    verdict: Verdict = field(default_factory=Verdict)
    problems: list[str] = field(default_factory=list)  # why not valid / not expected
    error: str | None = None  # the run could not complete (backend, template...)
    latency_s: float | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    grammar_format: str | None = None
    grammar_sent: bool = False  # the request carried the constraint
    request: dict = field(default_factory=dict)
    index: int = 0  # the job's position in the plan (runs are stored in plan order)

    def to_dict(self) -> dict:
        return {"wrapper": self.wrapper, "preset": self.preset, "grammar": self.grammar, "case": self.case,
                "repeat_index": self.repeat_index, "prompt": self.prompt, "raw": self.raw, "parsed": self.parsed,
                "verdict": self.verdict.to_dict(), "problems": self.problems, "error": self.error,
                "latency_s": self.latency_s, "completion_tokens": self.completion_tokens,
                "finish_reason": self.finish_reason, "grammar_format": self.grammar_format,
                "grammar_sent": self.grammar_sent, "request": self.request}


@dataclass
class Scoreboard:
    suite: str
    backend: dict
    cases: int
    repeat: int
    wrappers: list[str]
    presets: list[str]
    grammar_modes: list[bool]
    runs: list[RunRecord] = field(default_factory=list)
    notes: dict = field(default_factory=dict)  # (wrapper, preset, grammar) -> note, e.g. grammar unsupported
    planned: int = 0
    stopped: bool = False
    elapsed_s: float = 0.0

    def cell_keys(self) -> list[tuple[str, str, bool]]:
        return [(w, p, g) for w in self.wrappers for p in self.presets for g in self.grammar_modes]

    def cells(self) -> list[dict]:
        out = []
        for w, p, g in self.cell_keys():
            runs = [r for r in self.runs if (r.wrapper, r.preset, r.grammar) == (w, p, g)]
            out.append(aggregate(w, p, g, runs, self.notes.get((w, p, g))))
        return out

    def cell(self, wrapper: str, preset: str, grammar: bool = False) -> dict:
        return next(c for c in self.cells() if (c["wrapper"], c["preset"], c["grammar"]) == (wrapper, preset, grammar))

    def cell_runs(self, wrapper: str, preset: str, grammar: bool = False) -> list[RunRecord]:
        """A cell's runs (for the page: open one in the workbench)."""
        return [r for r in self.runs if (r.wrapper, r.preset, r.grammar) == (wrapper, preset, grammar)]

    def to_dict(self) -> dict:
        return {"suite": self.suite, "backend": self.backend, "cases": self.cases, "repeat": self.repeat,
                "cells": self.cells(), "runs": [r.to_dict() for r in self.runs],
                "planned": self.planned, "stopped": self.stopped, "elapsed_s": round(self.elapsed_s, 3)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_csv(self) -> str:
        """One row per cell: the matrix as numbers (percentages of runs)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["suite", "wrapper", "preset", "grammar", "runs", "parsed", "valid", "expected",
                         "parsed_pct", "valid_pct", "expected_pct", "mean_latency_s", "mean_completion_tokens", "note"])
        for c in self.cells():
            n = c["runs"]
            pct = [round(100 * c[k] / n, 1) if n else "" for k in ("parsed", "valid", "expected")]
            writer.writerow([self.suite, c["wrapper"], c["preset"], c["grammar"], n, c["parsed"], c["valid"], c["expected"],
                             *pct, "" if c["mean_latency_s"] is None else c["mean_latency_s"],
                             "" if c["mean_completion_tokens"] is None else c["mean_completion_tokens"], c.get("note") or ""])
        return buf.getvalue()

    def runs_csv(self) -> str:
        """One row per run."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["wrapper", "preset", "grammar", "case", "repeat_index", "parsed", "valid", "expected",
                         "latency_s", "completion_tokens", "error", "problems", "raw"])
        for r in self.runs:
            writer.writerow([r.wrapper, r.preset, r.grammar, r.case, r.repeat_index, r.verdict.parsed, r.verdict.valid,
                             r.verdict.expected, r.latency_s, r.completion_tokens, r.error or "", "; ".join(r.problems), r.raw])
        return buf.getvalue()

    def table(self, show_percent: bool = True) -> str:
        """The matrix as text: one row per wrapper x grammar mode, per preset parsed/valid/expected."""
        header = ["wrapper", "grammar"] + [f"{p}: parsed/valid/expected" for p in self.presets] + ["latency s", "tokens"]
        rows = []
        for w in self.wrappers:
            for g in self.grammar_modes:
                row = [w, "on" if g else "off"]
                lat, tok = [], []
                for p in self.presets:
                    c = self.cell(w, p, g)
                    n = c["runs"]
                    if not n:
                        row.append("n/a" if c.get("note") else "-")
                        continue
                    if show_percent:
                        row.append(" / ".join(f"{round(100 * c[k] / n):3d}%" for k in ("parsed", "valid", "expected")) + f"  (n={n})")
                    else:
                        row.append(" / ".join(str(c[k]) for k in ("parsed", "valid", "expected")) + f" of {n}")
                    if c["mean_latency_s"] is not None:
                        lat.append(c["mean_latency_s"])
                    if c["mean_completion_tokens"] is not None:
                        tok.append(c["mean_completion_tokens"])
                row.append(f"{sum(lat) / len(lat):.2f}" if lat else "-")
                row.append(f"{sum(tok) / len(tok):.1f}" if tok else "-")
                rows.append(row)
        widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
        lines = ["  ".join(str(x).ljust(wd) for x, wd in zip(header, widths, strict=True)).rstrip(),
                 "  ".join("-" * wd for wd in widths)]
        lines += ["  ".join(str(x).ljust(wd) for x, wd in zip(row, widths, strict=True)).rstrip() for row in rows]
        notes = [f"{w} / {p} / grammar {'on' if g else 'off'}: {n}" for (w, p, g), n in self.notes.items()]
        done = len(self.runs)
        lines.append(f"{done} of {self.planned} runs{' (stopped)' if self.stopped else ''} in {self.elapsed_s:.1f} s; "
                     f"suite {self.suite} ({self.cases} cases x {self.repeat})")
        return "\n".join(lines + notes)


def aggregate(wrapper: str, preset: str, grammar: bool, runs: list[RunRecord], note: str | None = None) -> dict:
    lat = [r.latency_s for r in runs if r.latency_s is not None]
    tok = [r.completion_tokens for r in runs if r.completion_tokens is not None]
    cell = {"wrapper": wrapper, "preset": preset, "grammar": grammar, "runs": len(runs),
            "parsed": sum(r.verdict.parsed for r in runs), "valid": sum(r.verdict.valid for r in runs),
            "expected": sum(r.verdict.expected for r in runs),
            "mean_latency_s": round(sum(lat) / len(lat), 3) if lat else None,
            "mean_completion_tokens": round(sum(tok) / len(tok), 2) if tok else None,
            "errors": sum(r.error is not None for r in runs)}
    if note:
        cell["note"] = note
    return cell


# ------------------------------------------------------------------------------------------------
# verdicts


def _same(expected, actual) -> bool:
    """Required value vs. the model's: strings compare trimmed and case-insensitively, objects as subsets."""
    if isinstance(expected, str):
        return isinstance(actual, str) and expected.strip().casefold() == actual.strip().casefold()
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, (int, float)):
        return isinstance(actual, (int, float)) and abs(expected - actual) < 1e-9
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and _same(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) and all(map(_same, expected, actual))
    return expected == actual


def call_problems(exp: ExpectedCall, call: ToolCall) -> list[str]:
    """Why `call` is not the expected call (empty: it is)."""
    if call.name != exp.function:
        return [f"called '{call.name}', expected '{exp.function}'"]
    args = call.arguments
    if not isinstance(args, dict):
        return [f"the arguments of '{call.name}' are not an object"]
    problems = [f"'{exp.function}' argument '{k}' is {args[k]!r}, expected {v!r}" if k in args
                else f"'{exp.function}' lacks the expected argument '{k}'" for k, v in exp.arguments.items()
                if not (k in args and _same(v, args[k]))]
    if exp.schema:
        cls = validators.validator_for(exp.schema)
        for e in cls(exp.schema).iter_errors(args):
            where = ".".join(map(str, e.absolute_path))
            problems.append(f"'{exp.function}' arguments{(' ' + where) if where else ''}: {e.message}")
    return problems


def expectation_problems(expect: Expectation, calls: list[ToolCall]) -> list[str]:
    if expect.no_call:
        return [f"expected no call, got {', '.join(repr(c.name) for c in calls)}"] if calls else []
    if not calls:
        return [f"expected a call to {', '.join(repr(c.function) for c in expect.calls)}, got no call"]
    if len(calls) > len(expect.calls) and not expect.allow_extra_calls:
        extra = f"expected {len(expect.calls)} call(s), got {len(calls)}"
    else:
        extra = None

    # one-to-one matching of expected calls to actual calls (a handful: plain backtracking)
    def match(i: int, used: frozenset) -> bool:
        if i == len(expect.calls):
            return True
        return any(j not in used and not call_problems(expect.calls[i], c) and match(i + 1, used | {j})
                   for j, c in enumerate(calls))

    if match(0, frozenset()):
        return [extra] if extra else []
    problems = []
    for exp in expect.calls:
        candidates = [call_problems(exp, c) for c in calls]
        if not any(not p for p in candidates):
            best = min(candidates, key=len)
            problems.extend(best)
    return (problems or ["the calls do not match the expected ones one to one"]) + ([extra] if extra else [])


def judge(parsed: ParseResult | None, case: Case) -> tuple[Verdict, list[str]]:
    if parsed is None:
        return Verdict(), ["no output"]
    if parsed.error is not None:
        return Verdict(), [f"parse error: {parsed.error.message}"]
    problems: list[str] = []
    for call, probs in zip(parsed.tool_calls, validate_calls(parsed.tool_calls, case.conversation.functions), strict=True):
        problems += [f"{call.name}: {p}" for p in probs]
    valid = not problems
    mismatch = expectation_problems(case.expect, parsed.tool_calls)
    return Verdict(parsed=True, valid=valid, expected=not mismatch), problems + mismatch


# ------------------------------------------------------------------------------------------------
# the run


def plan(request: ScoreRequest, suite: Suite) -> list[Job]:
    """Cell by cell (so a cell's cases share a cached prompt prefix), each case `repeat` times."""
    jobs = []
    for w in request.wrappers:
        for p in request.presets:
            for g in request.grammar:
                for case in suite.cases:
                    for k in range(request.repeat):
                        jobs.append(Job(len(jobs), w, p, g, case, k))
    return jobs


def check(request: ScoreRequest) -> Suite:
    """Fail early, with one sentence, on anything that would fail every run."""
    suite = suites_registry.load(request.suite) if isinstance(request.suite, str) else request.suite
    if not request.wrappers:
        raise WrapperError("name at least one wrapper")
    for w in request.wrappers:
        wrappers_registry.get(w)
    if not request.presets:
        raise PresetError("name at least one preset")
    for p in request.presets:
        presets_registry.load(p)
    for k, v in request.params.items():
        presets_registry.check_value(k, v)
    backends.create(request.backend_type, request.settings)
    if request.repeat < 1:
        raise ValueError("--repeat must be at least 1")
    if request.concurrency < 1:
        raise ValueError("--concurrency must be at least 1")
    if request.max_string < 1 or request.max_calls < 1:
        raise ValueError("the grammar's longest string and most calls must be at least 1")
    if request.grammar_kind not in ("gbnf", "json_schema"):
        raise ValueError("the grammar kind must be 'gbnf' or 'json_schema'")
    return suite


def _backend_takes(backend_type: str, key: str) -> bool:
    cls = backends.TYPES.get(backend_type)
    return bool(cls) and key in (cls.params or {})


def _constraint_params(request: ScoreRequest, constraint: grammars.Constraint) -> tuple[dict, Settings, str]:
    """The request parameters carrying the constraint, the settings to use, and where it goes.

    A backend that maps `grammar` / `json_schema` gets it as a parameter; an HTTP backend that does
    not (yet) gets it as an extra request field (llama.cpp's server and llama_cpp.server read
    `grammar` and `json_schema` from the body); otherwise it is not sent.
    """
    params = constraint.params(request.grammar_kind)
    key = next(iter(params))
    if _backend_takes(request.backend_type, key):
        return params, request.settings, "param"
    cls = backends.TYPES.get(request.backend_type)
    from backends.base import HttpBackend

    if cls is not None and issubclass(cls, HttpBackend):
        settings = Settings(**{**request.settings.__dict__, "extra": {**request.settings.extra, **params}})
        return {}, settings, "extra"
    return params, request.settings, "ignored"


def _sent(request_record: dict, key: str) -> bool:
    body = request_record.get("json") or {}
    value = body.get(key) if isinstance(body, dict) else None
    return value is not None and value != ""


def conversation_for(wrapper: str, conversation: Conversation) -> Conversation:
    """The case's conversation with past calls' `arguments` in the form the wrapper's template reads:
    a JSON string for MemGPT's wrappers (OpenAI's wire shape, which MemGPT decodes), an object for the
    models' own chat templates (Hugging Face's convention). Nothing else changes."""
    as_string = wrappers_registry.get(wrapper).parser == "memgpt_inner_monologue"

    def convert(call: dict) -> dict:
        args = call.get("arguments")
        if as_string and isinstance(args, (dict, list)):
            return {**call, "arguments": json.dumps(args, ensure_ascii=False)}
        if not as_string and isinstance(args, str):
            try:
                decoded = json.loads(args)
            except json.JSONDecodeError:
                return call
            return {**call, "arguments": decoded} if isinstance(decoded, dict) else call
        return call

    messages = []
    for m in conversation.messages:
        if isinstance(m.get("function_call"), dict):
            m = {**m, "function_call": convert(m["function_call"])}
        if isinstance(m.get("tool_calls"), list):
            m = {**m, "tool_calls": [{**t, "function": convert(t["function"])} if isinstance(t, dict) and isinstance(t.get("function"), dict)
                                     else t for t in m["tool_calls"]]}
        messages.append(m)
    return Conversation(messages=messages, functions=conversation.functions,
                        template_variables=conversation.template_variables, now=conversation.now)


def generate_request(request: ScoreRequest, case: Case, wrapper: str, preset: str,
                     grammar: bool = False) -> tuple[flow.GenerateRequest, grammars.Constraint | None]:
    """The exact request one cell sends for a case (and the grammar constraint, if any): for running it,
    and for the page to open a run in the workbench and replay it."""
    conversation = conversation_for(wrapper, case.conversation)
    params, settings, constraint = dict(request.params), request.settings, None
    if grammar:
        constraint = grammars.derive(wrapper, conversation, request.max_string, request.max_calls)
        extra, settings, _ = _constraint_params(request, constraint)
        params.update(extra)
    return flow.GenerateRequest(backend_type=request.backend_type, wrapper=wrapper, conversation=conversation,
                                settings=settings, preset=preset, params=params), constraint


def run_job(request: ScoreRequest, job: Job, stop: threading.Event | None = None) -> RunRecord | None:
    """One generation and its verdict; None when `stop` was set mid-generation (the run is dropped)."""
    record = RunRecord(job.wrapper, job.preset, job.grammar, job.case.id, job.repeat_index, index=job.index)
    key = None
    try:
        generate, constraint = generate_request(request, job.case, job.wrapper, job.preset, job.grammar)
        if constraint is not None:
            record.grammar_format = constraint.format
            key = next(iter(constraint.params(request.grammar_kind)))
        gen = flow.generate_stream(generate)
        run = None
        with contextlib.closing(gen):
            for run in gen:
                if record.prompt == "":
                    record.prompt = run.prompt
                if stop is not None and stop.is_set() and not run.done:
                    return None  # closing the stream aborts the request
        record.raw = run.raw
        record.request = run.request
        record.finish_reason = run.finish_reason
        record.latency_s = round(run.timings.get("total"), 3) if run.timings.get("total") is not None else None
        tokens = run.usage.get("completion_tokens")
        record.completion_tokens = int(tokens) if isinstance(tokens, (int, float)) else None
        record.parsed = run.parsed.to_dict() if run.parsed else None
        if key:
            record.grammar_sent = _sent(run.request, key)
        record.verdict, record.problems = judge(run.parsed, job.case)
    except (BackendError, TemplateError, WrapperError, PresetError, grammars.GrammarUnsupported) as e:
        record.error = f"{type(e).__name__}: {e}"
        record.problems = [str(e)]
    return record


def run_scoreboard(request: ScoreRequest, progress: Callable[[int, int], None] | None = None,
                   stop: threading.Event | None = None,
                   on_run: Callable[[RunRecord], None] | None = None) -> Scoreboard:
    """Run the whole matrix. `progress(done, total)` after each run; set `stop` to end early (runs in
    flight are aborted and dropped; finished runs are kept); `on_run(record)` for live display.
    Raises SuiteError, WrapperError, PresetError, BackendError or ValueError before any run starts."""
    suite = check(request)
    start = time.perf_counter()
    board = Scoreboard(suite=suite.name, backend={"type": request.backend_type, "url": request.settings.url,
                                                  "model": request.settings.model},
                       cases=len(suite.cases), repeat=request.repeat, wrappers=list(request.wrappers),
                       presets=list(request.presets), grammar_modes=list(request.grammar))
    jobs = plan(request, suite)
    # grammar cells whose wrapper has no grammar format are skipped with a note, not failed
    if True in request.grammar:
        for w in request.wrappers:
            for case in suite.cases:
                try:
                    grammars.derive(w, conversation_for(w, case.conversation), request.max_string, request.max_calls)
                except grammars.GrammarUnsupported as e:
                    for p in request.presets:
                        board.notes[(w, p, True)] = f"no grammar: {e}"
                    break
        jobs = [j for j in jobs if not (j.grammar and (j.wrapper, j.preset, True) in board.notes)]
        where = _where_constraint_goes(request)
        if where != "param":
            for w in request.wrappers:
                for p in request.presets:
                    board.notes.setdefault((w, p, True), where)
    board.planned = len(jobs)
    lock = threading.Lock()
    done = 0
    if progress:
        progress(0, len(jobs))

    def work(job: Job) -> None:
        nonlocal done
        if stop is not None and stop.is_set():
            return
        record = run_job(request, job, stop)
        with lock:
            if record is not None:
                board.runs.append(record)
                done += 1
            count = done
        if record is not None:
            if on_run:
                on_run(record)
            if progress:
                progress(count, len(jobs))

    with concurrent.futures.ThreadPoolExecutor(max_workers=request.concurrency, thread_name_prefix="score") as pool:
        futures = [pool.submit(work, j) for j in jobs]
        for f in futures:
            f.result()
    board.runs.sort(key=lambda r: r.index)
    board.stopped = bool(stop is not None and stop.is_set() and len(board.runs) < len(jobs))
    board.elapsed_s = time.perf_counter() - start
    return board


def _where_constraint_goes(request: ScoreRequest) -> str:
    key = "json_schema" if request.grammar_kind == "json_schema" else "grammar"
    if _backend_takes(request.backend_type, key):
        return "param"
    from backends.base import HttpBackend

    cls = backends.TYPES.get(request.backend_type)
    if cls is not None and issubclass(cls, HttpBackend):
        return f"the {request.backend_type} backend does not map '{key}'; sent as an extra request field"
    return f"the {request.backend_type} backend does not take '{key}': these runs are unconstrained"
