"""The HTTP routes: authentication, errors in OpenAI's shape, the blocking and the streamed answer, the record.

The flow is synchronous (httpx); each step runs in a worker thread. Closing the flow's generator
closes the backend stream, which aborts the backend request: that happens when the client goes away.
"""

from __future__ import annotations

import hmac
import json
import time
from datetime import datetime, timezone

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

import flow
import wrappers
from core.errors import UserError
from flow import streaming, traffic
from flow.startup import StartupConfig, is_loopback

from . import translate
from .translate import EndpointError

MAX_HEADER = 300  # characters of a parse error in the response header


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
    """One request: what the traffic record keeps of it."""

    def __init__(self, request: Request, ring: traffic.Traffic):
        self.ring, self.started = ring, time.perf_counter()
        client = request.client
        self.entry = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                      "client": f"{client.host}:{client.port}" if client else "", "wrapper": None, "stream": False,
                      "status": None, "verdict": "", "request": None, "conversation": None, "prompt": "", "raw": "",
                      "parse": None, "response": None, "backend_request": None, "notes": []}

    def run(self, run: flow.Run | None) -> None:
        if run is not None:
            self.entry.update(prompt=run.prompt, raw=run.raw, parse=run.parsed.to_dict() if run.parsed else None,
                              backend_request=run.request, notes=self.entry["notes"] + run.notes)

    def done(self, status: int, verdict: str, response) -> None:
        self.entry.update(status=status, verdict=verdict, response=response,
                          latency_ms=round((time.perf_counter() - self.started) * 1000, 1))
        self.ring.add(self.entry)

    def error(self, error: EndpointError) -> JSONResponse:
        self.done(error.status, f"error: {error.message}", error.body())
        return JSONResponse(error.body(), status_code=error.status)


def _verdict(answer: streaming.Answer) -> str:
    if answer.error:
        return f"parse failed: {answer.error}"
    if answer.calls:
        return f"{len(answer.calls)} call{'s' if len(answer.calls) > 1 else ''}: {', '.join(c.name for c in answer.calls)}"
    return "text"


def _step(gen):
    return next(gen, None)


def routes(config: StartupConfig) -> list:
    """The endpoint's routes, to put on the page's server (app.py)."""
    router = APIRouter(prefix="/v1")

    def refused(request: Request) -> JSONResponse | None:
        problem = key_problem(config, request.headers.get("authorization", ""))
        if problem is None:
            return None
        return JSONResponse(EndpointError(401, problem, code="invalid_api_key").body(), status_code=401)

    @router.get("/models")
    def models(request: Request):
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
        exchange.entry["request"] = body
        try:
            prepared = translate.prepare(body, config)
        except EndpointError as e:
            exchange.entry["wrapper"] = body.get("model") if isinstance(body, dict) else None
            return exchange.error(e)
        exchange.entry.update(wrapper=prepared.request.wrapper, stream=prepared.stream,
                              conversation=prepared.request.conversation.to_data(), notes=list(prepared.notes))
        if prepared.stream:
            return await _streamed(prepared, exchange)
        return await _blocking(prepared, exchange)

    return router.routes


def _headers(prepared: translate.Prepared, answer: streaming.Answer | None = None) -> dict:
    headers = {"X-PFP-Wrapper": prepared.request.wrapper}
    if prepared.notes:
        headers["X-PFP-Notes"] = _ascii("; ".join(prepared.notes))
    if answer is not None and answer.error:
        headers["X-PFP-Parse-Error"] = _ascii(answer.error)  # the raw text is the content; here is why
    return headers


async def _blocking(prepared: translate.Prepared, exchange: _Exchange) -> JSONResponse:
    try:
        run = await anyio.to_thread.run_sync(flow.generate, prepared.request)
    except UserError as e:
        return exchange.error(translate.from_user_error(e))
    exchange.run(run)
    answer = streaming.answer(run.parsed, run.raw, prepared.max_calls)
    body = translate.completion(answer, prepared.mode, prepared.request.wrapper, run.finish_reason, run.usage)
    exchange.done(200, _verdict(answer), body)
    return JSONResponse(body, headers=_headers(prepared, answer))


async def _streamed(prepared: translate.Prepared, exchange: _Exchange):
    gen = flow.generate_stream(prepared.request)
    try:  # the render, then the backend's first answer: their errors still get a status of their own
        run = await anyio.to_thread.run_sync(_step, gen)
        exchange.run(run)
        run = await anyio.to_thread.run_sync(_step, gen)
    except UserError as e:
        await anyio.to_thread.run_sync(gen.close)
        return exchange.error(translate.from_user_error(e))
    return _ClosingStream(_events(prepared, exchange, gen, run), media_type="text/event-stream",
                          headers={**_headers(prepared), "Cache-Control": "no-cache"})


async def _events(prepared: translate.Prepared, exchange: _Exchange, gen, run: flow.Run):
    wrapper = wrappers.get(prepared.request.wrapper)
    conversation = prepared.request.conversation
    incremental = streaming.IncrementalParse(lambda text: wrapper.parse(text, conversation), prepared.max_calls)
    chunks = translate.Chunks(prepared.request.wrapper, prepared.mode)
    status, verdict, response = 499, "client went away", None
    try:
        yield chunks.first()
        seen = 0
        while not run.done:
            if len(run.raw) > seen:
                seen = len(run.raw)
                for delta in incremental.feed(run.raw):
                    yield chunks.delta(delta)
            run = await anyio.to_thread.run_sync(_step, gen)
        exchange.run(run)
        answer = streaming.answer(run.parsed, run.raw, prepared.max_calls)
        for delta in incremental.finish(answer):
            yield chunks.delta(delta)
        response = translate.completion(answer, prepared.mode, prepared.request.wrapper, run.finish_reason, run.usage)
        status, verdict = 200, _verdict(answer)
        if incremental.diverged:
            verdict += f"; the stream differs from this answer: {incremental.diverged}"
        yield chunks.last(answer, run.finish_reason, run.usage, answer.error)
        yield translate.DONE
    except UserError as e:  # mid-stream: the status went out already, the error goes as an event
        error = translate.from_user_error(e)
        status, verdict, response = error.status, f"error: {error.message}", error.body()
        exchange.run(run)
        yield translate.sse(error.body())
        yield translate.DONE
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(gen.close)
        exchange.done(status, verdict, response)
