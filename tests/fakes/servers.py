"""One fake per server family, each following the servers' documented wire formats.

    with fake_server("llamacpp", pieces=["Hi", "!"]) as fake:
        ... fake.url ... fake.requests[-1]["json"] ... fake.events

Options (all optional):
  pieces       the tokens the "model" generates, in order (then end of sequence)
  version      the version quirk to reproduce, per kind (see each handler)
  fail         "error": the server's own mid-stream error form after `fail_after` pieces;
               "drop": the connection ends mid-stream with no end marker;
               "interrupt" (OpenAI family): [DONE] with no finish_reason, as llama_cpp.server does when interrupted
  fail_after   pieces sent before the failure (default 2)
  endless      keep generating (with `delay` seconds per piece) until the client goes away
  delay        seconds between pieces
  pause        seconds of silence after the first piece
  errors       {path: (status, body)}: answer that path with this status and body (dict = JSON, str = as is)
  html         answer every request with an nginx welcome page (True: as text/html; or the content type to claim)
  redirect     answer every request with a 301 to this address
  models       the model names the server lists
  ws           False: no streaming websocket (webui-legacy), so its port refuses

A misbehaving server (each framed the server's own way: SSE, NDJSON or websocket frames):
  inject       a raw JSON text sent as one stream event before piece number `fail_after`
  flood        after the headers, this many bytes of one stream line with no line end
  drip         seconds between the bytes of the stream (one byte at a time)
  echo_auth    the final event quotes the request's Authorization header
  add_bos      (llama.cpp) the model adds a BOS token `<s>` to a prompt tokenized with add_special
"""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import time
import uuid

PIECES = ["Hello", ",", " world", "!", " How", " are", " you", "?"]
HTML = b"<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head><body>nginx</body></html>"


def plan(pieces: list[str], max_tokens: int | None, stop: list[str], keep_stop: bool = False):
    """(deltas, finish) where finish is "eos" | "limit" | "word", and the stop word that matched ("" if none)."""
    deltas, text = [], ""
    for n, piece in enumerate(pieces):
        if max_tokens is not None and max_tokens >= 0 and n >= max_tokens:
            return deltas, "limit", ""
        before = text
        text += piece
        hits = [(text.find(s), s) for s in stop if s and s in text]
        if hits:
            at, word = min(hits)
            end = at + len(word) if keep_stop else at
            if end > len(before):
                deltas.append(text[len(before):end])
            return deltas, "word", word
        deltas.append(piece)
    return deltas, "eos", ""


class _Stream:
    """Writes a streamed body: chunked (HTTP/1.1 servers) or raw until close (HTTP/1.0 servers).

    `frame` wraps one event's JSON text the server's way (SSE `data:` lines, one NDJSON line...)."""

    def __init__(self, handler, content_type: str, chunked: bool = True, frame=lambda text: f"data: {text}\n\n"):
        self.h, self.chunked, self.frame = handler, chunked, frame
        handler.stream = self
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        if chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        handler.send_header("Connection", "close")
        handler.end_headers()
        if handler.opts.get("flood"):
            self.flood(handler.opts["flood"])

    def write(self, data: str) -> None:
        drip = self.h.opts.get("drip")
        for part in (data.encode("utf-8"),) if not drip else (bytes([b]) for b in data.encode("utf-8")):
            self._send(part)
            if drip:
                time.sleep(drip)

    def _send(self, raw: bytes) -> None:
        if self.chunked:
            raw = f"{len(raw):X}\r\n".encode() + raw + b"\r\n"
        self.h.wfile.write(raw)
        self.h.wfile.flush()

    def flood(self, size: int) -> None:
        """`size` bytes of one line that never ends, a megabyte at a time (until the client hangs up)."""
        self._send(self.frame("{}").split("{}")[0].encode() + b'{"text": "')  # an event that never ends
        block = b"x" * 2**20
        for _ in range(size // len(block)):
            self._send(block)

    def end(self) -> None:
        if self.chunked:
            self.h.wfile.write(b"0\r\n\r\n")
            self.h.wfile.flush()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "FakeServer"

    def log_message(self, *args):
        pass

    # --- plumbing -------------------------------------------------------------------------------------
    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return {"__invalid__": raw.decode("utf-8", "replace")}

    def _handle(self, method: str):
        fake = self.server.fake
        path = self.path.split("?")[0]
        body = self._body() if method == "POST" else None
        fake.requests.append({"method": method, "path": path, "json": body, "headers": dict(self.headers),
                              "client": self.client_address})
        if fake.opts.get("html"):
            return self.send(200, HTML, fake.opts["html"] if isinstance(fake.opts["html"], str) else "text/html")
        if fake.opts.get("redirect"):
            self.send_response(301)
            self.send_header("Location", fake.opts["redirect"])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if path in fake.opts.get("errors", {}):
            status, err = fake.opts["errors"][path]
            return self.send(status, err)
        try:
            getattr(self, "kind_" + fake.kind.replace("-", "_"))(method, path, body or {})
        except (BrokenPipeError, ConnectionResetError):
            fake.events.append("disconnect")

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def send(self, status: int, body, content_type: str | None = None) -> None:
        if isinstance(body, (dict, list)):
            raw, content_type = json.dumps(body).encode(), content_type or "application/json"
        elif isinstance(body, str):
            raw, content_type = body.encode(), content_type or "text/plain"
        else:
            raw, content_type = body, content_type or "application/octet-stream"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def pieces(self, deltas: list[str]):
        """The deltas to stream: the script, or endless ones; raises _Fail where a failure is injected."""
        opts = self.server.fake.opts
        source = deltas if not opts.get("endless") else (f" {n}" for n in range(10**6))
        for n, delta in enumerate(source):
            if opts.get("inject") is not None and n == opts.get("fail_after", 2):
                self.stream.write(self.stream.frame(opts["inject"]))
            if opts.get("fail") and n == opts.get("fail_after", 2):
                raise _Fail(opts["fail"])
            if opts.get("delay"):
                time.sleep(opts["delay"])
            if opts.get("pause") and n == 1:
                time.sleep(opts["pause"])
            yield n, delta

    @property
    def opts(self) -> dict:
        return self.server.fake.opts

    def not_found(self, body=None):
        self.send(404, body if body is not None else "Not Found")

    # --- (c) llama.cpp native -----------------------------------------------------------------------
    # version "new" (Dec 2024+: stop_type, completion_probabilities with logprob/top_logprobs;
    # "post" with post_sampling_probs), "old" (stopped_eos/word/limit, probs [{tok_str, prob}], slot_id)
    def kind_llamacpp(self, method, path, body):
        old = self.opts.get("version") == "old"
        model = self.opts.get("models", ["smollm2.gguf"])[0]
        if path == "/health":
            return self.send(200, {"status": "ok"})
        if path == "/props":
            return self.send(200, {"default_generation_settings": {"n_ctx": 4096, "params": {}}, "total_slots": 1,
                                   "model_path": "/models/" + model, "model_alias": "/models/" + model,
                                   "chat_template": "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}",
                                   "bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "build_info": "b4501-fake"})
        if path == "/v1/models":
            return self.send(200, {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "llamacpp"}
                                                               for m in self.opts.get("models", [model])]})
        if path == "/tokenize":
            content = body.get("content", "")
            bos = [{"id": 1, "piece": "<s>"}] if body.get("add_special") and self.opts.get("add_bos") else []
            if body.get("parse_special") and content.startswith("<s>"):
                bos.append({"id": 1, "piece": "<s>"})
                content = content[3:]
            words = content.split(" ")
            toks = bos + [{"id": 100 + n, "piece": (" " if n else "") + w} for n, w in enumerate(words)]
            if body.get("with_pieces"):
                toks.append({"id": 198, "piece": [195]})  # bytes that are not valid UTF-8 alone
                return self.send(200, {"tokens": toks})
            return self.send(200, {"tokens": [t["id"] for t in toks]})
        if path == "/apply-template":
            return self.send(200, {"prompt": chatml(body)})
        if path != "/completion":
            return self.send(404, {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}})
        if not isinstance(body.get("prompt"), (str, list)):
            return self.send(400, {"error": {"code": 400, "message": "\"prompt\" must be a string, a list of tokens, ...",
                                             "type": "invalid_request_error"}})
        stop = body.get("stop") if isinstance(body.get("stop"), list) else []  # a bare string is ignored
        deltas, finish, word = plan(self.opts.get("pieces", PIECES), body.get("n_predict"), stop)
        n_probs = body.get("n_probs", 0)
        prompt_n = len(str(body["prompt"]).split())
        post = bool(body.get("post_sampling_probs"))

        def probs(tok):
            if old:
                return [{"content": tok, "probs": [{"tok_str": tok, "prob": 0.75}, {"tok_str": "alt", "prob": 0.25}][:n_probs]}]
            if post:
                return [{"id": 7, "token": tok, "bytes": list(tok.encode()), "prob": 0.75,
                         "top_probs": [{"id": 7, "token": tok, "bytes": list(tok.encode()), "prob": 0.75},
                                       {"id": 8, "token": "alt", "bytes": [97, 108, 116], "prob": 0.25}][:n_probs]}]
            return [{"id": 7, "token": tok, "bytes": list(tok.encode()), "logprob": -0.2877,
                     "top_logprobs": [{"id": 7, "token": tok, "bytes": list(tok.encode()), "logprob": -0.2877},
                                      {"id": 8, "token": "alt", "bytes": [97, 108, 116], "logprob": -1.3863}][:n_probs]}]

        def final(count):
            out = {"index": 0, "content": "", "tokens": [], "stop": True, "model": "/models/" + model,
                   "tokens_predicted": count, "tokens_evaluated": prompt_n, "generation_settings": {"n_probs": n_probs},
                   "prompt": body["prompt"], "has_new_line": False, "truncated": False, "tokens_cached": prompt_n + count,
                   "timings": {"prompt_n": prompt_n, "prompt_ms": 1.0, "predicted_n": count, "predicted_ms": 2.0}}
            if self.opts.get("echo_auth"):
                out["echo"] = {"authorization": self.headers.get("Authorization")}
            if old:
                out.update({"slot_id": 0, "stopped_eos": finish == "eos", "stopped_word": finish == "word",
                            "stopped_limit": finish == "limit", "stopping_word": word})
            else:
                out.update({"id_slot": 0, "stop_type": finish, "stopping_word": word})
            return out

        if not body.get("stream"):
            full = final(len(deltas))
            full["content"] = "".join(deltas)
            if n_probs:
                full["completion_probabilities"] = [p for d in deltas for p in probs(d)]
            return self.send(200, full)
        s = _Stream(self, "text/event-stream")
        count = 0
        try:
            for n, delta in self.pieces(deltas):
                count += 1
                event = {"index": 0, "content": delta, "tokens": [n], "stop": False, "id_slot": -1,
                         "tokens_predicted": count, "tokens_evaluated": prompt_n}
                if n_probs:
                    event["completion_probabilities"] = probs(delta)
                s.write(f"data: {json.dumps(event)}\n\n")
                if n == 0:
                    s.write(":\n\n")  # an SSE ping comment, as new builds send
        except _Fail as f:
            if f.mode == "error":
                s.write('data: {"error":{"code":500,"message":"slot crashed: out of memory","type":"server_error"}}\n\n')
            return s.end() if f.mode == "error" else None
        s.write(f"data: {json.dumps(final(count))}\n\n")
        s.end()

    # --- OpenAI family: (h) OpenAI, (b) webui, (f) vLLM, (g) LM Studio -------------------------
    def _openai_models(self, owner, default=("local-model",)):
        return self.send(200, {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": owner}
                                                          for m in self.opts.get("models", list(default))]})

    def _openai_completions(self, body, *, id_prefix="cmpl-", crlf=False, done=True, first_empty=False,
                            usage_in_final=False, stop_reason=False, error_form="openai", default_max=16,
                            fingerprint=False):
        stop = body.get("stop") or []
        stop = [stop] if isinstance(stop, str) else stop
        deltas, finish, word = plan(self.opts.get("pieces", PIECES), body.get("max_tokens", default_max), stop)
        reason = "length" if finish == "limit" else "stop"
        prompt_n = len(str(body.get("prompt", "")).split())
        usage = {"prompt_tokens": prompt_n, "completion_tokens": len(deltas), "total_tokens": prompt_n + len(deltas)}
        base = {"id": id_prefix + uuid.uuid4().hex[:12], "object": "text_completion", "created": 1730000000,
                "model": body.get("model", "m")}
        if fingerprint:
            base["system_fingerprint"] = None
        lp_n = body.get("logprobs")

        def logprobs(tok):
            if not lp_n:
                return None
            return {"tokens": [tok], "token_logprobs": [-0.5], "top_logprobs": [{tok: -0.5, "alt": -1.5}],
                    "text_offset": [0]}

        def choice(text, fin, tok=None):
            c = {"index": 0, "text": text, "logprobs": logprobs(tok) if tok else None, "finish_reason": fin}
            if stop_reason:
                c["stop_reason"] = word or None if fin else None
            return c

        if not body.get("stream"):
            return self.send(200, {**base, "choices": [choice("".join(deltas), reason)], "usage": usage})
        nl = "\r\n" if crlf else "\n"
        s = _Stream(self, "text/event-stream")

        def send(obj):
            s.write(f"data: {json.dumps(obj)}{nl}{nl}")

        include_usage = (body.get("stream_options") or {}).get("include_usage")
        try:
            if first_empty:
                send({**base, "choices": [choice("", None)]})
            for _, delta in self.pieces(deltas):
                send({**base, "choices": [choice(delta, None, delta)]})
        except _Fail as f:
            if f.mode == "error" and error_form == "vllm":
                send({"error": {"message": "engine dead", "type": "InternalServerError", "param": None, "code": 500}})
                s.write("data: [DONE]\n\n")
            elif f.mode == "error":
                send({"error": {"message": "generation failed", "type": "server_error", "param": None, "code": None}})
            elif f.mode == "interrupt":  # llama_cpp.server when another request arrives: [DONE], no finish_reason
                s.write("data: [DONE]\n\n")
                return s.end()
            return s.end() if f.mode == "error" else None
        last = {**base, "choices": [choice("", reason)]}
        echo = {"echo": {"authorization": self.headers.get("Authorization")}} if self.opts.get("echo_auth") else {}
        last.update(echo)
        if usage_in_final:
            last["usage"] = usage
        send(last)
        if include_usage and not usage_in_final:
            send({**base, "choices": [], "usage": usage, **echo})
        if done:
            s.write(f"data: [DONE]{nl}{nl}")
        s.end()

    def kind_openai(self, method, path, body):
        if path == "/v1/models":
            return self._openai_models("openai")
        if path != "/v1/completions":
            return self.send(404, {"error": {"message": f"Invalid URL (POST {path})", "type": "invalid_request_error",
                                             "param": None, "code": None}})
        if not isinstance(body.get("max_tokens", 1), int) or body.get("max_tokens", 1) < 0:
            return self.send(400, {"error": {"message": "max_tokens must be greater than or equal to 0.",
                                             "type": "invalid_request_error", "param": "max_tokens", "code": None}})
        self._openai_completions(body)

    # version "v4.1" (default: first empty chunk, [DONE], LF, usage chunk only with include_usage, error envelope)
    # or "v1.8" (2023-11 .. v4.0: CRLF, no [DONE], usage in the final chunk, errors as bare 500)
    def kind_webui(self, method, path, body):
        old = self.opts.get("version") == "v1.8"
        if path == "/v1/internal/token-count":
            return self.send(200, {"length": len(body.get("text", "").split())})
        if path == "/v1/internal/encode":
            n = len(body.get("text", "").split())
            return self.send(200, {"tokens": list(range(500, 500 + n)), "length": n})
        if path == "/v1/internal/decode":
            return self.send(200, {"text": "".join(f"<{t}>" for t in body.get("tokens", []))})
        if path == "/v1/internal/model/info":
            return self.send(200, {"model_name": "Qwen_Qwen3-0.6B-Q4_K_M.gguf", "lora_names": [], "loader": "llama.cpp"})
        if path == "/v1/internal/stop-generation":
            self.server.fake.events.append("stop-generation")
            return self.send(200, "OK")
        if path == "/v1/models":
            return self._openai_models("user")
        if path != "/v1/completions":
            return self.send(404, {"detail": "Not Found"})
        if not isinstance(body.get("max_tokens", 1), int):
            return self.send(422, {"detail": [{"loc": ["body", "max_tokens"], "msg": "Input should be a valid integer",
                                               "type": "int_parsing"}]})
        if old:
            self._openai_completions(body, crlf=True, done=False, first_empty=True, usage_in_final=True)
        else:
            self._openai_completions(body, first_empty=True, fingerprint=True, default_max=512)

    # version "new" (error envelope) or "old" (before v0.10.1: flat {"object": "error", ...})
    def kind_vllm(self, method, path, body):
        models = self.opts.get("models", ["Qwen/Qwen2.5-7B-Instruct"])
        if path == "/v1/models":
            return self._openai_models("vllm", models)
        if path == "/version":
            return self.send(200, {"version": "0.11.0"})
        if path == "/tokenize" and "messages" in body:  # the chat form: the model's template, then its tokens
            return self.send(200, {"count": len(chatml(body)), "max_model_len": 32768,
                                   "tokens": [ord(c) for c in chatml(body)], "token_strs": None})
        if path == "/detokenize":
            return self.send(200, {"prompt": "".join(chr(i) for i in body.get("tokens") or [])})
        if path == "/tokenize":
            words = body.get("prompt", "").split()
            n = len(words) + (1 if body.get("add_special_tokens", True) else 0)
            return self.send(200, {"count": n, "max_model_len": 32768, "tokens": list(range(n)),
                                   "token_strs": ([("<s>")] if body.get("add_special_tokens", True) else []) + words
                                   if body.get("return_token_strs") else None})
        if path != "/v1/completions":
            return self.send(404, {"detail": "Not Found"})
        if body.get("model") not in models:
            msg = f"The model `{body.get('model')}` does not exist."
            if self.opts.get("version") == "old":
                return self.send(404, {"object": "error", "message": msg, "type": "NotFoundError", "param": None, "code": 404})
            return self.send(404, {"error": {"message": msg, "type": "NotFoundError", "param": "model", "code": 404}})
        self._openai_completions(body, stop_reason=True, error_form="vllm")

    def kind_lmstudio(self, method, path, body):
        if path == "/v1/models":
            return self._openai_models("organization_owner")
        if path == "/api/v0/models":
            return self.send(200, {"object": "list", "data": [{"id": "granite-3.0-2b-instruct", "type": "llm",
                                                               "state": "loaded"}]})
        if path != "/v1/completions":
            return self.send(404, {"error": f"Unexpected endpoint or method. ({method} {path})"})
        if body.get("max_tokens", 0) > 10**7:
            return self.send(400, {"error": "Context length exceeded. Tokens in context: 8000, Context length: 8000"})
        self._openai_completions(body, id_prefix="cmpl-p9rtx", default_max=-1)

    # --- (d) KoboldCpp ------------------------------------------------------------------------------
    # version "2024" (v1.64-v1.76: "finish_reason": "null" as a string, last text and finish in one event,
    # stop string kept whatever trim_stop says) or "new" (JSON null, a separate empty final event, trim_stop honoured)
    def kind_koboldcpp(self, method, path, body):
        new = self.opts.get("version", "2024") == "new"
        fake = self.server.fake
        if path == "/api/extra/version":
            return self.send(200, {"result": "KoboldCpp", "version": "1.99" if new else "1.76", "protected": False,
                                   "txt2img": False, "vision": False, "transcribe": False})
        if path == "/api/v1/model":
            return self.send(200, {"result": "koboldcpp/Llama-3-8B-Q4_K_M"})
        if path == "/props":
            if not new:
                return self.send(404, b"<html><body>404 Not Found</body></html>", "text/html")
            return self.send(200, {"chat_template": "{{ messages }}", "n_ctx": 8192, "model_path": "x.gguf",
                                   "default_generation_settings": {"n_ctx": 8192}})
        if path in ("/api/extra/tokencount", "/api/extra/tokenize"):
            if "prompt" not in body:
                return self.send(400, {"value": -1})
            words = body["prompt"].split()
            return self.send(200, {"value": len(words), "ids": list(range(1000, 1000 + len(words)))})
        if path == "/api/extra/detokenize":
            if not new:
                return self.send(404, b"<html><body>404 Not Found</body></html>", "text/html")
            return self.send(200, {"result": "".join(f"[{i}]" for i in body.get("ids", [])), "success": True})
        if path == "/api/extra/abort":
            fake.events.append(("abort", body.get("genkey")))
            return self.send(200, {"success": "true", "done": "true"})
        if path not in ("/api/extra/generate/stream", "/api/v1/generate"):
            return self.send(404, b"<html><body>404 Not Found</body></html>", "text/html")
        if "__invalid__" in body:
            return self.send(500, {"detail": {"msg": "Error parsing input.", "type": "bad_input"}})
        if fake.opts.get("busy"):
            return self.send(503, {"detail": {"msg": "Server is busy; please try again later.", "type": "service_unavailable"}})
        keep = not (new and body.get("trim_stop"))
        deltas, finish, _ = plan(fake.opts.get("pieces", PIECES), body.get("max_length", 200),
                                 body.get("stop_sequence") or [], keep_stop=keep)
        reason = "stop" if finish == "eos" else "length"  # a custom stop string reports "length" (2024 code)
        if path == "/api/v1/generate":
            return self.send(200, {"results": [{"text": "".join(deltas), "finish_reason": reason}]})
        s = _Stream(self, "text/event-stream", chunked=False,  # the connection closes after the last event
                    frame=lambda text: f"event: message\ndata: {text}\n\n")
        null = None if new else "null"
        try:
            for n, delta in self.pieces(deltas):
                last = n == len(deltas) - 1 and not new and not fake.opts.get("endless")
                s.write("event: message\ndata: " + json.dumps({"token": delta, "finish_reason": reason if last else null}) + "\n\n")
        except _Fail:
            return  # KoboldCpp: the connection just ends
        if new or not deltas:
            s.write("event: message\ndata: " + json.dumps({"token": "", "finish_reason": reason}) + "\n\n")

    # --- (e) Ollama ---------------------------------------------------------------------------------
    def kind_ollama(self, method, path, body):
        models = self.opts.get("models", ["llama3.2:latest"])
        if path == "/api/version":
            return self.send(200, {"version": "0.12.11"})
        if path == "/api/tags":
            return self.send(200, {"models": [{"name": m, "model": m, "modified_at": "2025-10-01T00:00:00Z", "size": 2019393189,
                                               "digest": "abc", "details": {"format": "gguf", "family": "llama"}}
                                              for m in models]})
        if path == "/api/show":
            if body.get("model", body.get("name")) not in models:
                return self.send(404, {"error": f"model '{body.get('model')}' not found"})
            return self.send(200, {"modelfile": "FROM x", "parameters": 'stop "<|eot_id|>"',
                                   "template": "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}{{ .Prompt }}",
                                   "details": {"family": "llama"}, "model_info": {"llama.context_length": 131072},
                                   "capabilities": ["completion"]})
        if path != "/api/generate":
            return self.send(404, "404 page not found")
        if body.get("model") not in models:
            return self.send(404, {"error": f"model '{body.get('model')}' not found"})
        if body.get("raw") and any(k in body for k in ("template", "system", "context")):
            return self.send(400, {"error": "raw mode does not support template, system, or context"})
        opts = body.get("options") or {}
        deltas, finish, _ = plan(self.opts.get("pieces", PIECES), opts.get("num_predict"), opts.get("stop") or [])
        prompt_n = len(body.get("prompt", "").split())
        done = {"done": True, "done_reason": "length" if finish == "limit" else "stop", "total_duration": 5043500667,
                "load_duration": 5025959, "prompt_eval_count": prompt_n, "prompt_eval_duration": 325953000,
                "eval_count": len(deltas), "eval_duration": 470921300}
        if self.opts.get("cached"):
            del done["prompt_eval_count"]  # omitempty: the whole prompt was cached
        head = {"model": body["model"], "created_at": "2025-10-26T17:15:24.097767Z"}

        def lp(tok):
            if not body.get("logprobs"):
                return {}
            return {"logprobs": [{"token": tok, "logprob": -0.1, "bytes": list(tok.encode()),
                                  "top_logprobs": [{"token": tok, "logprob": -0.1}, {"token": "x", "logprob": -2.4}]
                                  [:body.get("top_logprobs", 0)]}]}

        if body.get("stream") is False:
            return self.send(200, {**head, "response": "".join(deltas), **done}, "application/json; charset=utf-8")
        s = _Stream(self, "application/x-ndjson", frame=lambda text: text + "\n")  # streams by default
        try:
            for _, delta in self.pieces(deltas):
                s.write(json.dumps({**head, "response": delta, "done": False, **lp(delta)}) + "\n")
        except _Fail as f:
            if f.mode == "error":
                s.write(json.dumps({"error": "an error was encountered while running the model"}) + "\n")
            return s.end() if f.mode == "error" else None
        s.write(json.dumps({**head, "response": "", **done}) + "\n")
        s.end()

    # --- (a) text-generation-webui legacy (HTTP side; the websocket is FakeServer._start_ws) -------------------
    def kind_webui_legacy(self, method, path, body):
        fake = self.server.fake
        if path == "/api/v1/model":
            return self.send(200, {"result": "TheBloke_Llama-2-7B-GPTQ"})
        if path == "/api/v1/token-count":
            return self.send(200, {"results": [{"tokens": len(body.get("prompt", "").split())}]})
        if path == "/api/v1/stop-stream":
            fake.events.append("stop-stream")
            return self.send(200, {"results": "success"})
        if path == "/api/v1/generate":  # HTTP/1.0: 200 and headers first, the body after generating, then close
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            if fake.opts.get("fail") == "drop":
                return None  # the generation crashed: no body
            deltas, _, _ = plan(fake.opts.get("pieces", PIECES), body.get("max_new_tokens", 200),
                                body.get("stopping_strings") or [])
            self.wfile.write(json.dumps({"results": [{"text": "".join(deltas)}]}).encode())
            return None
        self.send_error(404)  # BaseHTTPRequestHandler's HTML page


def chatml(body: dict) -> str:
    """The fake model's chat template: ChatML, with the tools as a system block, and the generation prompt."""
    tools = body.get("tools")
    head = f"<|im_start|>system\n<tools>{json.dumps(tools)}</tools><|im_end|>\n" if tools else ""
    return head + "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in body.get("messages") or []) + (
        "<|im_start|>assistant\n" if body.get("add_generation_prompt", True) else "")


class _Fail(Exception):
    def __init__(self, mode):
        self.mode = mode


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many clients connecting at once, as a real server's backlog allows (not 5)
    fake: "FakeServer"


class FakeServer:
    def __init__(self, kind: str, **opts):
        self.kind, self.opts = kind, opts
        self.requests: list[dict] = []
        self.events: list = []
        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.httpd.fake = self
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.ws = None
        self.ws_url = ""
        self.ws_port = 0

    def start(self) -> "FakeServer":
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        if self.kind == "webui-legacy" and self.opts.get("ws", True):
            self._start_ws()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.ws is not None:
            self.ws.shutdown()

    def posts(self, path: str) -> list[dict]:
        return [r["json"] for r in self.requests if r["method"] == "POST" and r["path"] == path]

    # the legacy streaming API: one JSON request per text frame; text_stream frames, then stream_end
    def _start_ws(self) -> None:
        from websockets.sync.server import serve

        fake = self

        def handler(ws):
            if ws.request.path != "/api/v1/stream":
                ws.close(1008)
                return
            try:
                for message in ws:  # the connection loops: several requests per socket
                    body = json.loads(message)
                    fake.requests.append({"method": "WEBSOCKET", "path": ws.request.path, "json": body,
                                          "headers": dict(ws.request.headers)})
                    deltas, _, _ = plan(fake.opts.get("pieces", PIECES), body.get("max_new_tokens", 200),
                                        body.get("stopping_strings") or [])
                    source = deltas if not fake.opts.get("endless") else (f" {n}" for n in range(10**6))
                    n = 0
                    for n, delta in enumerate(source):
                        if fake.opts.get("inject") is not None and n == fake.opts.get("fail_after", 2):
                            ws.send(fake.opts["inject"])
                        if fake.opts.get("fail") and n == fake.opts.get("fail_after", 2):
                            return  # the connection just ends
                        if fake.opts.get("delay"):
                            time.sleep(fake.opts["delay"])
                        if fake.opts.get("pause") and n == 1:
                            time.sleep(fake.opts["pause"])
                        ws.send(json.dumps({"event": "text_stream", "message_num": n, "text": delta}))
                    ws.send(json.dumps({"event": "stream_end", "message_num": n + 1}))
            except Exception:  # noqa: BLE001 - the client went away
                fake.events.append("disconnect")

        self.ws = serve(handler, "127.0.0.1", 0, ping_interval=None)
        self.ws_port = self.ws.socket.getsockname()[1]
        self.ws_url = f"ws://127.0.0.1:{self.ws_port}"
        threading.Thread(target=self.ws.serve_forever, daemon=True).start()


@contextlib.contextmanager
def fake_server(kind: str, **opts):
    fake = FakeServer(kind, **opts).start()
    try:
        yield fake
    finally:
        fake.stop()
