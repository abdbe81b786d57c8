"""The `openai` backend against a real llama_cpp.server (llama-cpp-python's OpenAI-compatible server),
plus the failures a user meets: nothing listening, a server that never answers, an HTML page, a 4xx."""

import http.server
import socket
import threading
import time

import pytest

import backends
from backends import BackendError, Completion, Settings
from tests.conftest import free_port

PROMPT = "<|im_start|>user\nCount from 1 to 20, separated by commas.<|im_end|>\n<|im_start|>assistant\n"
GREEDY = {"max_new_tokens": 24, "temperature": 0.0, "top_p": 1.0, "seed": 7, "stop": ["<|im_end|>"]}


def openai(url, **kw):
    return backends.create("openai", Settings(url=url, timeout=kw.pop("timeout", 60), **kw))


def test_streams_text_and_records_the_exact_request(llama_cpp_server):
    events = list(openai(llama_cpp_server).stream(PROMPT, GREEDY))
    deltas, final = events[:-1], events[-1]
    assert isinstance(final, Completion) and all(isinstance(d, str) for d in deltas)
    assert len(deltas) > 3, "a streamed completion arrives in several chunks"
    assert "".join(deltas) == final.text and final.text.strip()
    assert final.finish_reason in ("length", "stop")
    assert final.request["url"] == llama_cpp_server + "/v1/completions"
    body = final.request["json"]
    assert body["prompt"] == PROMPT and body["max_tokens"] == 24 and body["stop"] == ["<|im_end|>"] and body["stream"] is True
    assert final.timings["first_token"] <= final.timings["total"]


def test_greedy_generation_is_repeatable_and_respects_max_tokens(llama_cpp_server):
    a = openai(llama_cpp_server).complete(PROMPT, {**GREEDY, "max_new_tokens": 8})
    b = openai(llama_cpp_server).complete(PROMPT, {**GREEDY, "max_new_tokens": 8})
    assert a.text == b.text
    assert a.finish_reason == "length"


def test_stop_string_ends_the_completion_and_is_not_returned(llama_cpp_server):
    done = openai(llama_cpp_server).complete(PROMPT, {**GREEDY, "max_new_tokens": 60, "stop": ["5"]})
    assert "5" not in done.text and done.finish_reason == "stop"
    assert done.text.strip().startswith("1")


def test_closing_the_stream_aborts_the_request(llama_cpp_server):
    stream = openai(llama_cpp_server).stream(PROMPT, {**GREEDY, "max_new_tokens": 2000, "stop": []})
    first = next(stream)
    assert isinstance(first, str)
    started = time.monotonic()
    stream.close()  # what the page's Stop does
    assert time.monotonic() - started < 5
    # the server is free again right away: a short request completes promptly
    quick = openai(llama_cpp_server, timeout=30).complete(PROMPT, {**GREEDY, "max_new_tokens": 2})
    assert quick.text


def test_v1_suffix_typed_by_the_user_is_not_doubled(llama_cpp_server):
    done = openai(llama_cpp_server + "/v1/").complete(PROMPT, {**GREEDY, "max_new_tokens": 2})
    assert done.request["url"] == llama_cpp_server + "/v1/completions"


def test_check_lists_the_servers_model(llama_cpp_server):
    backend = openai(llama_cpp_server)
    assert backend.models() == ["smollm2"]
    assert llama_cpp_server in backend.check()


def test_server_validation_error_body_reaches_the_user(llama_cpp_server):
    backend = openai(llama_cpp_server, extra={"max_tokens": "many"})
    with pytest.raises(BackendError) as e:
        backend.complete(PROMPT, GREEDY)
    message = str(e.value)
    # llama-cpp-python answers a pydantic validation error with HTTP 500 and the error in the body
    assert "answered HTTP 500" in message and "max_tokens" in message and llama_cpp_server in message
    assert len(message) < 600


def test_api_key_is_sent_but_masked_in_the_record(llama_cpp_server):
    done = openai(llama_cpp_server, api_key="sk-secret-123").complete(PROMPT, {**GREEDY, "max_new_tokens": 2})
    assert "sk-secret-123" not in repr(done.request)
    assert done.request["headers"]["Authorization"] == "Bearer ***"


def test_nothing_listening_gives_a_clear_sentence():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(BackendError, match=f"cannot connect to {url}/v1/completions: is the server running"):
        openai(url).complete(PROMPT, GREEDY)


def test_bad_scheme_is_refused_before_any_request():
    with pytest.raises(BackendError, match="must start with http"):
        openai("ftp://localhost:8080").complete(PROMPT, GREEDY)


def test_server_that_never_answers_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        with pytest.raises(BackendError, match="did not answer in time"):
            openai(url, timeout=1).complete(PROMPT, GREEDY)
    finally:
        listener.close()


class _HtmlHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self._html()

    def do_POST(self):
        self._html()

    def _html(self):
        body = b"<!DOCTYPE html><html><body>Welcome to nginx!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_html_page_instead_of_json_is_named():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HtmlHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        with pytest.raises(BackendError, match="HTML page instead of JSON"):
            openai(url).check()
    finally:
        server.shutdown()
