"""The named API endpoints, called through gradio_client against the app served for real."""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from gradio_client import Client
from gradio_client.utils import Status

import flow
from core.conversation import EXAMPLE_PATH, Conversation
from tests.conftest import ROOT, free_port, wait_for

EXAMPLE = EXAMPLE_PATH.read_text()


@pytest.fixture(scope="module")
def client(app_url):
    c = Client(app_url, verbose=False)
    yield c
    c.close()


def test_endpoints_are_named_and_documented(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/render", "/parse", "/generate", "/wrappers"} <= names


def test_render_matches_the_cli_and_library_exactly(client):
    prompt = client.predict("chatml", EXAMPLE, None, api_name="/render")
    assert prompt == flow.render("chatml", Conversation.from_json(EXAMPLE))


def test_render_with_an_edited_template(client):
    assert client.predict("chatml", EXAMPLE, "{{ messages[1].role }}", api_name="/render") == "user"


def test_parse_with_wrapper_and_functions(client):
    raw = (' "core_memory_replace",\n  "params": {"inner_thoughts": "fix", "name": "human", '
           '"old_content": "First name: Chad", "new_content": "First name: Brad", "request_heartbeat": true}}')
    functions = json.dumps(json.loads(EXAMPLE)["functions"])
    result = client.predict(raw, "chatml", functions, None, api_name="/parse")
    assert result["function_call"]["name"] == "core_memory_replace"
    assert result["function_call"]["arguments"]["new_content"] == "First name: Brad"


def test_generate_on_the_embedded_model(client):
    out = client.predict("embedded", "chatml", EXAMPLE, "", "deterministic", '{"max_new_tokens": 10}', "",
                         api_name="/generate")
    assert out["request"]["json"]["max_tokens"] == 10 and out["prompt"].startswith("<|im_start|>system")
    assert out["parsed"] is not None and "error" in out["parsed"]


def test_wrappers_lists_names(client):
    assert "chatml" in client.predict(api_name="/wrappers")


def test_errors_reach_the_client_as_sentences(client):
    with pytest.raises(Exception, match="unknown wrapper 'nope'"):
        client.predict("nope", EXAMPLE, None, api_name="/render")
    with pytest.raises(Exception, match="cannot connect to http://127.0.0.1:9"):
        client.predict("openai", "chatml", EXAMPLE, "http://127.0.0.1:9", "deterministic", "{}", "", api_name="/generate")


@pytest.fixture
def silent_backend():
    """A loopback server that accepts every connection and never answers: a backend that hangs."""
    server = socket.create_server(("127.0.0.1", 0), backlog=256)
    server.settimeout(0.2)
    held, done = [], threading.Event()

    def accept():
        while not done.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    done.set()
    thread.join(timeout=5)
    for connection in held:  # the app's requests end at once (the connection is closed)
        connection.close()
    server.close()


@pytest.fixture
def busy_app():
    """`python app.py` of its own, at most 8 backend requests at once, 4 per client."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--max-generations", "8",
                                "--max-generations-per-session", "4"], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/config", 120, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _hanging(client: Client, backend: str, timeout: float = 300):
    return client.submit("openai", "chatml", EXAMPLE, backend, "deterministic", '{"max_new_tokens": 4}', "", timeout,
                         api_name="/generate")


def test_forty_hanging_generations_leave_the_app_serving_everyone_else(busy_app, silent_backend):
    clients = [Client(busy_app, verbose=False) for _ in range(10)]
    jobs = [_hanging(c, silent_backend) for c in clients for _ in range(4)]  # 40, 4 per client
    try:
        deadline = time.monotonic() + 60
        while sum(j.status().code == Status.IN_QUEUE for j in jobs) < 32 and time.monotonic() < deadline:
            time.sleep(0.5)
        waiting = [j.status() for j in jobs if j.status().code == Status.IN_QUEUE]
        assert len(waiting) == 32, "8 run, the others wait in the queue"
        assert sorted(s.rank for s in waiting)[-1] >= 31  # each knows how many are ahead of it

        other = Client(busy_app, verbose=False)
        start = time.monotonic()
        assert other.predict("chatml", EXAMPLE, None, api_name="/render").startswith("<|im_start|>system")
        assert time.monotonic() - start <= 1.0, "another user's /render waited behind the generations"
        start = time.monotonic()
        assert httpx.get(busy_app + "/config", timeout=10).status_code == 200
        assert time.monotonic() - start <= 1.0
        other.close()
    finally:
        for c in clients:
            c.close()


def test_one_client_runs_at_most_four_generations_at_once(app_url, silent_backend):
    greedy = Client(app_url, verbose=False)
    try:
        jobs = [_hanging(greedy, silent_backend) for _ in range(5)]
        done = next(j for j in _finished_first(jobs, 60))
        with pytest.raises(Exception, match="busy: this session already runs 4 requests to a backend"):
            done.result()
        assert sum(not j.done() for j in jobs) == 4  # the others still wait for the silent server
    finally:
        greedy.close()


def _finished_first(jobs, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        finished = [j for j in jobs if j.done()]
        if finished:
            return finished
        time.sleep(0.1)
    raise AssertionError(f"none of {len(jobs)} jobs finished within {seconds} s")


def test_generate_takes_a_timeout_as_the_page_does(client, silent_backend):
    start = time.monotonic()
    with pytest.raises(Exception, match="127.0.0.1"):
        client.predict("openai", "chatml", EXAMPLE, silent_backend, "deterministic", "{}", "", 2, api_name="/generate")
    assert time.monotonic() - start < 15


LONE = '{"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "bad \\ud800 here"}], "functions": []}'


def test_lone_surrogates_come_back_replaced_with_a_note(client):
    assert client.predict("chatml", LONE, None, api_name="/render").count("bad \ufffd here") == 1
    result = client.predict('<tool_call>{"name": "f", "arguments": {"a": "x\\ud800y"}}</tool_call>', None, None, "hermes",
                            api_name="/parse")
    assert result["tool_calls"][0]["arguments"] == {"a": "x\ufffdy"}
    assert any("U+FFFD" in note for note in result["notes"])
    run = client.predict("embedded", "chatml", LONE, "", "deterministic", '{"max_new_tokens": 2}', "", api_name="/generate")
    assert "bad \ufffd here" in run["prompt"] and any("U+FFFD" in note for note in run["notes"])
