"""The HTTP routes: authentication, errors in OpenAI's shape, the blocking and the streamed answer, the record.

The flow is synchronous (httpx): a blocking answer runs in one worker thread, a streamed one steps its
run (and the incremental parse) in one worker thread that hands each step to the event loop without
waiting for it to be taken (one crossing a chunk, not a round trip). The threads come from a limiter of
the endpoint's own (`API_THREADS`), so agents cannot take the threads the page's events run in.
Closing the flow's generator closes the backend stream, which aborts the backend request: that happens
when the client goes away, streamed or not (a blocking request watches for the client's disconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import threading
import time
from datetime import datetime, timezone

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

import flow
import wrappers
from core.errors import UserError
from flow import streaming, traffic
from flow.startup import StartupConfig, is_loopback

from . import translate
from .translate import EndpointError

MAX_HEADER = 300  # characters of a parse error in the response header
API_THREADS = 32  # /v1 generations running at once; more wait their turn


def key_problem(config: StartupConfig, authorization: str) -> str | None:
    """Why a request may not use the endpoint, or None. A key is needed wherever others may reach the app."""
    if not (config.api_key or config.auth or config.share or not is_loopback(config.host)):
        return None
    if not config.api_key:
        return ("this endpoint needs an API key when the app is served with --auth or beyond this machine: "
                "start it with --api-key KEY and send 'Authorization: Bearer KEY'")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), config.api_key.encode()):
        return "missing or wrong API key: send 'Authorization: Bearer KEY' with the key given to --api-key"
    return None


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode()[:MAX_HEADER].replace("\r", " ").replace("\n", " ")


class _ClosingStream(StreamingResponse):
    """A streamed response that closes its body generator however it ends (a client gone included)."""

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()


class _Exchange:
    """One request: its entry in the traffic record, there from the request's arrival ("in progress") to its end."""

    def __init__(self, request: Request, ring: traffic.Traffic):
        self.ring, self.started = ring, time.perf_counter()
        client = request.client
        self.entry = ring.start({
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "client": f"{client.host}:{client.port}" if client else "", "wrapper": None, "stream": False,
            "status": traffic.IN_PROGRESS, "verdict": "", "request": None, "conversation": None, "params": None,
            "prompt": "", "raw": "", "parse": None, "response": None, "backend_request": None, "timings": {}, "notes": []})

    def update(self, **fields) -> None:
        self.ring.update(self.entry, **fields)

    def run(self, run: flow.Run | None) -> None:
        if run is not None:
            notes = self.entry["notes"] + [n for n in run.notes if n not in self.entry["notes"]]
            self.update(prompt=run.prompt, raw=run.raw, params=run.params, parse=run.parsed.to_dict() if run.parsed else None,
                        backend_request=run.request, timings=run.timings, notes=notes)

    def done(self, status: int, verdict: str, response, notes: list[str] = ()) -> None:
        self.ring.finish(self.entry, status=status, verdict=verdict, response=response, notes=self.entry["notes"] + list(notes),
                         latency_ms=round((time.perf_counter() - self.started) * 1000, 1))

    def error(self, error: EndpointError) -> JSONResponse:
        self.done(error.status, f"error: {error.message}", error.body())
        return JSONResponse(error.body(), status_code=error.status)


def _verdict(answer: streaming.Answer) -> str:
    if answer.error:
        return f"parse failed: {answer.error}"
    if answer.calls:
        return f"{len(answer.calls)} call{'s' if len(answer.calls) > 1 else ''}: {', '.join(c.name for c in answer.calls)}"
    return "text"


def routes(config: StartupConfig) -> list:
    """The endpoint's routes, to put on the page's server (app.py)."""
    router = APIRouter(prefix="/v1")
    threads: list[anyio.CapacityLimiter] = []  # made in the server's event loop, at the first request

    def limiter() -> anyio.CapacityLimiter:
        if not threads:
            threads.append(anyio.CapacityLimiter(API_THREADS))
        return threads[0]

    def refused(request: Request) -> JSONResponse | None:
        problem = key_problem(config, request.headers.get("authorization", ""))
        if problem is None:
            return None
        return JSONResponse(EndpointError(401, problem, code="invalid_api_key").body(), status_code=401)

    @router.get("/models")
    async def models(request: Request):  # async: quick, and off the page's worker threads
        if (denied := refused(request)) is not None:
            return denied
        return JSONResponse({"object": "list", "data": [{"id": name, "object": "model", "created": 0,
                                                         "owned_by": "prompt-format-playground"} for name in wrappers.names()]})

    @router.post("/chat/completions")
    async def chat_completions(request: Request):
        if (denied := refused(request)) is not None:
            return denied
        exchange = _Exchange(request, traffic.ring())
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            return exchange.error(translate.bad_request(f"the request body is not valid JSON: {e}"))
        exchange.update(request=body, wrapper=body.get("model") if isinstance(body, dict) else None)
        try:
            prepared = translate.prepare(body, config)
        except EndpointError as e:
            return exchange.error(e)
        exchange.update(wrapper=prepared.request.wrapper, stream=prepared.stream,
                        conversation=prepared.request.conversation.to_data(), notes=list(prepared.notes))
        if prepared.stream:
            return await _streamed(prepared, exchange, limiter())
        return await _blocking(prepared, exchange, request, limiter())

    return router.routes


def _headers(prepared: translate.Prepared, answer: streaming.Answer | None = None) -> dict:
    headers = {"X-PFP-Wrapper": prepared.request.wrapper}
    notes = prepared.notes + (answer.notes if answer is not None else [])
    if notes:
        headers["X-PFP-Notes"] = _ascii("; ".join(notes))
    if answer is not None and answer.error:
        headers["X-PFP-Parse-Error"] = _ascii(answer.error)  # the raw text is the content; here is why
    return headers


def _generate(prepared: translate.Prepared, gone: threading.Event) -> flow.Run | UserError | None:
    """The whole run in one worker thread; None when the client went away (closing the run aborts the backend request)."""
    try:
        with contextlib.closing(flow.generate_stream(prepared.request)) as runs:
            for update in runs:
                if gone.is_set():
                    return None
                last = update
            return last
    except UserError as e:
        return e


async def _blocking(prepared: translate.Prepared, exchange: _Exchange, request: Request,
                    limiter: anyio.CapacityLimiter) -> Response:
    gone = threading.Event()

    async def watch() -> None:  # the body is read, so the next message is the client's disconnect
        while (await request.receive())["type"] != "http.disconnect":
            pass
        gone.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(watch)
        outcome = await anyio.to_thread.run_sync(_generate, prepared, gone, limiter=limiter)
        tasks.cancel_scope.cancel()
    if outcome is None:
        exchange.done(499, "client went away", None)
        return Response(status_code=499)
    if isinstance(outcome, UserError):
        return exchange.error(translate.from_user_error(outcome))
    run = outcome
    exchange.run(run)
    answer = streaming.answer(run.parsed, run.raw, prepared.policy)
    body = translate.completion(answer, prepared.mode, prepared.request.wrapper, run.finish_reason, run.usage)
    exchange.done(200, _verdict(answer), body, answer.notes)
    return JSONResponse(body, headers=_headers(prepared, answer))


class _Stream:
    """A streamed run stepped from worker threads: each step waits for the next output and parses it incrementally."""

    def __init__(self, prepared: translate.Prepared):
        self.prepared = prepared
        self.runs = flow.generate_stream(prepared.request)
        self.incremental = streaming.IncrementalParse.for_wrapper(prepared.request.wrapper, prepared.request.conversation,
                                                                  prepared.policy)
        self.fed = 0
        self.answer: streaming.Answer | None = None

    def step(self) -> tuple[flow.Run, list[streaming.Delta]]:
        run = next(self.runs)
        if not run.done:
            new, self.fed = run.raw[self.fed:], len(run.raw)
            return run, self.incremental.feed(new)
        self.answer = streaming.answer(run.parsed, run.raw, self.prepared.policy)
        return run, self.incremental.finish(self.answer)


async def _streamed(prepared: translate.Prepared, exchange: _Exchange, limiter: anyio.CapacityLimiter):
    stream = _Stream(prepared)
    try:  # the render, then the backend's first answer: their errors still get a status of their own
        run, _ = await anyio.to_thread.run_sync(stream.step, limiter=limiter)
        exchange.run(run)
        first = await anyio.to_thread.run_sync(stream.step, limiter=limiter)
    except UserError as e:
        await anyio.to_thread.run_sync(stream.runs.close, limiter=limiter)
        return exchange.error(translate.from_user_error(e))
    return _ClosingStream(_events(prepared, exchange, stream, first, limiter), media_type="text/event-stream",
                          headers={**_headers(prepared), "Cache-Control": "no-cache"})


class _Pump:
    """Steps a stream in one worker thread after its first chunk and hands each step to the event loop as it comes,
    without waiting for the loop to take it; the thread closes the stream (the backend request) when the run ends,
    fails, or `close()` asks it to stop."""

    def __init__(self, stream: _Stream, limiter: anyio.CapacityLimiter):
        self.stream, self.limiter = stream, limiter
        self.loop = asyncio.get_running_loop()
        self.steps: asyncio.Queue = asyncio.Queue()
        self.stop = threading.Event()
        self.thread: asyncio.Task | None = None

    def _put(self, item) -> None:
        self.loop.call_soon_threadsafe(self.steps.put_nowait, item)

    def _run(self) -> None:  # in the worker thread
        try:
            while not self.stop.is_set():
                run, deltas = self.stream.step()
                self._put((run, run.done, deltas))  # `done` now: the thread goes on changing the same run
                if run.done:
                    return
        except BaseException as e:  # noqa: BLE001  (the loop raises it where the step was awaited)
            self._put(e)
        finally:
            self.stream.runs.close()

    async def next(self) -> tuple[flow.Run, bool, list[streaming.Delta]]:
        if self.thread is None:
            self.thread = asyncio.ensure_future(anyio.to_thread.run_sync(self._run, limiter=self.limiter))
        step = await self.steps.get()
        if isinstance(step, BaseException):
            raise step
        return step

    async def close(self) -> None:
        """Stop stepping (after the step under way) and wait for the thread, which closes the stream."""
        self.stop.set()
        if self.thread is None:
            await anyio.to_thread.run_sync(self.stream.runs.close, limiter=self.limiter)
        else:
            await self.thread


async def _events(prepared: translate.Prepared, exchange: _Exchange, stream: _Stream, first, limiter):
    chunks = translate.Chunks(prepared.request.wrapper, prepared.mode)
    run, deltas = first
    done = run.done
    pump = _Pump(stream, limiter)
    finished = False
    try:
        yield chunks.first()
        while True:
            for delta in deltas:
                yield chunks.delta(delta)
            if done:
                break
            run, done, deltas = await pump.next()
        exchange.run(run)
        answer = stream.answer
        notes = answer.notes + ([f"the stream differs from this answer: {stream.incremental.diverged}"]
                                if stream.incremental.diverged else [])
        response = translate.completion(answer, prepared.mode, prepared.request.wrapper, run.finish_reason, run.usage)
        exchange.done(200, _verdict(answer), response, notes)  # recorded before the client reads the end
        finished = True
        yield chunks.last(answer, run.finish_reason, run.usage, notes)
        yield translate.DONE
    except UserError as e:  # mid-stream: the status went out already, the error goes as an event
        error = translate.from_user_error(e)
        exchange.run(run)
        exchange.done(error.status, f"error: {error.message}", error.body())
        finished = True
        yield translate.sse(error.body())
        yield translate.DONE
    finally:
        with anyio.CancelScope(shield=True):
            await pump.close()
        if not finished:
            exchange.done(499, "client went away", None)
