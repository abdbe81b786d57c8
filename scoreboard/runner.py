"""The scoreboard runner: every case of a suite, for each wrapper x preset x grammar mode, N times,
spread over a pool of servers (`pool`), with progress, stoppable, partial results kept, each
finished run journaled for a resume (`journal`).

Each run goes through the one flow (`flow.generate_stream`: render -> backend -> parse) and gets a
verdict (`verdict`); the counts and the matrix are in `report`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import backends
import flow
import presets as presets_registry
import wrappers as wrappers_registry
from backends import BackendError, Settings
from backends.base import HttpBackend
from core.conversation import Conversation
from presets import PresetError
from wrappers import TemplateError, WrapperError

from . import catalog
from . import grammar as grammars
from . import pool as server_pool
from .journal import Journal
from .report import RunRecord, Scoreboard
from .suites import Case, Suite
from .verdict import judge


@dataclass
class ScoreRequest:
    backend_type: str
    suite: Suite | str
    wrappers: list[str]
    presets: list[str]
    settings: Settings = field(default_factory=Settings)
    grammar: list[bool] = field(default_factory=lambda: [False])  # the modes to run: [False], [True] or both
    repeat: int = 1
    concurrency: int = 1  # requests in flight per server; 0 = the server's slot count (1 when it does not say)
    params: dict = field(default_factory=dict)  # explicit overrides over every preset (e.g. max_new_tokens)
    grammar_kind: str = "gbnf"  # "gbnf" (params["grammar"]) or "json_schema" where the output is pure JSON
    max_string: int = grammars.MAX_STRING  # characters per JSON string in a grammar
    max_calls: int = grammars.MAX_PARALLEL  # calls per answer a grammar allows (where the format has several)
    urls: list[str] = field(default_factory=list)  # the pool of servers; empty: settings.url alone
    bfcl_dir: str = ""  # BFCL's data folder for `bfcl:` suites; empty: the installed bfcl_eval package's

    def pool_urls(self) -> list[str]:
        return [u.strip() for u in self.urls if u.strip()] or [self.settings.url]


@dataclass
class Job:
    index: int
    wrapper: str
    preset: str
    grammar: bool
    case: Case
    repeat_index: int

    @property
    def key(self) -> tuple:
        return (self.wrapper, self.preset, self.grammar, self.case.id, self.repeat_index)


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
    suite = catalog.load(request.suite, request.bfcl_dir or None) if isinstance(request.suite, str) else request.suite
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
    for url in request.pool_urls():
        backends.create(request.backend_type, replace(request.settings, url=url))
    if request.repeat < 1:
        raise ValueError("--repeat must be at least 1")
    if request.concurrency < 0:
        raise ValueError("--concurrency must be at least 1 (or 0: the server's slot count)")
    if request.max_string < 1 or request.max_calls < 1:
        raise ValueError("the grammar's longest string and most calls must be at least 1")
    if request.grammar_kind not in ("gbnf", "json_schema"):
        raise ValueError("the grammar kind must be 'gbnf' or 'json_schema'")
    return suite


def fingerprint(request: ScoreRequest, suite: Suite) -> dict:
    """What makes a resume "the same command": what decides which runs there are and what each one
    sends; not where they go (a resume may use other servers) nor how many go at once."""
    ids = [c.id for c in suite.cases]
    return {"suite": suite.name, "categories": list(dict.fromkeys(c.category for c in suite.cases if c.category)),
            "cases": len(ids), "case_ids": hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16],
            "wrappers": list(request.wrappers), "presets": list(request.presets), "grammar": list(request.grammar),
            "grammar_kind": request.grammar_kind, "max_string": request.max_string, "max_calls": request.max_calls,
            "repeat": request.repeat, "params": dict(request.params), "backend_type": request.backend_type,
            "model": request.settings.model}


def _constraint_route(request: ScoreRequest, key: str) -> str:
    """Where a grammar constraint goes: "param" (the backend maps `key`), "extra" (an HTTP backend that
    does not map it gets it as an extra request field: llama.cpp's server and llama_cpp.server read
    `grammar` and `json_schema` from the body), or "ignored"."""
    cls = backends.TYPES.get(request.backend_type)
    if cls is not None and key in (cls.params or {}):
        return "param"
    return "extra" if cls is not None and issubclass(cls, HttpBackend) else "ignored"


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
                     grammar: bool = False, url: str | None = None) -> tuple[flow.GenerateRequest, grammars.Constraint | None]:
    """The exact request one cell sends for a case (and the grammar constraint, if any): for running it,
    and for the page to open a run in the workbench and replay it. `url`: the pool's server to send it to."""
    conversation = conversation_for(wrapper, case.conversation)
    params, constraint = dict(request.params), None
    settings = request.settings if url is None else replace(request.settings, url=url)
    if grammar:
        constraint = grammars.derive(wrapper, conversation, request.max_string, request.max_calls)
        extra = constraint.params(request.grammar_kind)
        route = _constraint_route(request, next(iter(extra)))
        if route == "extra":
            settings = replace(settings, extra={**settings.extra, **extra})
        else:
            params.update(extra)
    return flow.GenerateRequest(backend_type=request.backend_type, wrapper=wrapper, conversation=conversation,
                                settings=settings, preset=preset, params=params), constraint


def run_job(request: ScoreRequest, job: Job, stop: threading.Event | None = None, url: str | None = None) -> RunRecord | None:
    """One generation and its verdict; None when `stop` was set mid-generation (the run is dropped)."""
    record = RunRecord(job.wrapper, job.preset, job.grammar, job.case.id, job.repeat_index, index=job.index,
                       category=job.case.category, server=request.settings.url if url is None else url)
    key = None
    try:
        generate, constraint = generate_request(request, job.case, job.wrapper, job.preset, job.grammar, url)
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
        record.server_failed = isinstance(e, BackendError) and server_pool.server_down(str(e))
    return record


def _grammar_notes(request: ScoreRequest, suite: Suite, board: Scoreboard) -> None:
    """Grammar cells whose wrapper has no grammar format are skipped with a note, not failed; a note
    too where the constraint is not a parameter of the backend."""
    for w in request.wrappers:
        for case in suite.cases:
            try:
                grammars.derive(w, conversation_for(w, case.conversation), request.max_string, request.max_calls)
            except grammars.GrammarUnsupported as e:
                for p in request.presets:
                    board.notes[(w, p, True)] = f"no grammar: {e}"
                break
    key = "json_schema" if request.grammar_kind == "json_schema" else "grammar"
    route = _constraint_route(request, key)
    note = {"extra": f"the {request.backend_type} backend does not map '{key}'; sent as an extra request field",
            "ignored": f"the {request.backend_type} backend does not take '{key}': these runs are unconstrained"}.get(route)
    if note:
        for w in request.wrappers:
            for p in request.presets:
                board.notes.setdefault((w, p, True), note)


def run_scoreboard(request: ScoreRequest, progress: Callable[[int, int], None] | None = None,
                   stop: threading.Event | None = None,
                   on_run: Callable[[RunRecord], None] | None = None,
                   journal: Journal | None = None,
                   on_servers: Callable[[list[dict]], None] | None = None) -> Scoreboard:
    """Run the whole matrix over the pool. `progress(done, total)` after each run; set `stop` to end
    early (runs in flight are aborted and dropped; finished runs are kept); `on_run(record)` for live
    display; `journal`: append each finished run, and skip the runs it already holds (a resume);
    `on_servers(pool)` when a server's counts change or it leaves the pool.
    Raises SuiteError, WrapperError, PresetError, BackendError, ValueError or JournalError (a journal
    of another command) before any run starts."""
    suite = check(request)
    if journal is not None:
        journal.start(fingerprint(request, suite))
    start = time.perf_counter()
    categories = list(dict.fromkeys(c.category for c in suite.cases if c.category))
    board = Scoreboard(suite=suite.name, backend={"type": request.backend_type, "url": request.settings.url,
                                                  "model": request.settings.model, "pool": request.pool_urls()},
                       cases=len(suite.cases), repeat=request.repeat, wrappers=list(request.wrappers),
                       presets=list(request.presets), grammar_modes=list(request.grammar), categories=categories)
    jobs = plan(request, suite)
    if True in request.grammar:
        _grammar_notes(request, suite, board)
        jobs = [j for j in jobs if not (j.grammar and str(board.notes.get((j.wrapper, j.preset, True), "")).startswith("no grammar"))]
    board.planned = len(jobs)
    earlier = journal.finished() if journal is not None else {}
    for job in jobs:
        if job.key in earlier:
            board.runs.append(replace(earlier[job.key], index=job.index))
    board.resumed = len(board.runs)
    todo = [j for j in jobs if j.key not in earlier]
    servers = server_pool.build(request.pool_urls() if request.backend_type != "embedded" else [""], request.concurrency,
                                request.settings.api_key)
    lock = threading.Lock()
    if progress:
        progress(len(board.runs), len(jobs))
    if on_servers:
        on_servers([s.to_dict() for s in servers])

    def work(job: Job, server: server_pool.Server) -> RunRecord | None:
        if stop is not None and stop.is_set():
            return None
        return run_job(request, job, stop, server.url or None)

    def finished(record: RunRecord) -> None:
        if journal is not None:
            journal.append(record)
        with lock:
            board.runs.append(record)
            count = len(board.runs)
        if on_run:
            on_run(record)
        if progress:
            progress(count, len(jobs))

    changed = (lambda: on_servers([s.to_dict() for s in servers])) if on_servers else None
    server_pool.run(todo, servers, work, stop, finished, changed)
    board.runs.sort(key=lambda r: r.index)
    board.servers = [s.to_dict() for s in servers]
    board.stopped = bool(stop is not None and stop.is_set() and len(board.runs) < len(jobs))
    board.elapsed_s = time.perf_counter() - start
    return board
