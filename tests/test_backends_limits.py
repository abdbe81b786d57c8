"""Time and size limits hold against a misbehaving server: the timeout is a wall-clock deadline for the
whole generation (a server dripping a byte a second cannot stretch it), the first-token and
between-token limits are separate and named, and sizes are checked while reading, so a line that
never ends cannot fill the memory."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

import backends
from backends import BackendError, Settings
from tests.conftest import ROOT
from tests.fakes import fake_server

PROMPT = "Say hi"
PARAMS = {"max_new_tokens": 64}


def failing(kind, fake_or_url, **settings):
    """(the BackendError, seconds it took) for one streamed generation."""
    url = getattr(fake_or_url, "url", fake_or_url)
    backend = backends.create(kind, Settings(url=url, model="m" if kind == "ollama" else "", **settings))
    start = time.monotonic()
    with pytest.raises(BackendError) as caught:
        list(backend.stream(PROMPT, PARAMS))
    return caught.value, time.monotonic() - start


@pytest.mark.parametrize("kind", ["llamacpp", "openai", "ollama", "koboldcpp"])
def test_a_dripping_server_ends_at_the_deadline(kind):
    with fake_server(kind, drip=1.0, models=["m"]) as fake:
        error, seconds = failing(kind, fake, timeout=3)
    assert seconds <= 4.0, f"the 3 s deadline held for {seconds:.1f} s"
    assert "did not answer in time (the whole generation took longer than the 3 s deadline)" in str(error)
    assert "raise the timeout" in str(error)


def test_the_first_token_limit_is_its_own_and_named():
    with fake_server("llamacpp", delay=3) as fake:
        error, seconds = failing("llamacpp", fake, timeout=30, first_token_timeout=1)
    assert seconds < 2.5 and "(no first token within 1 s)" in str(error) and "raise the first-token limit" in str(error)


def test_the_first_token_limit_holds_while_waiting_for_the_headers():
    listener = socket.socket()  # accepts the connection, never answers
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        error, seconds = failing("llamacpp", f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=30,
                                 first_token_timeout=1)
    finally:
        listener.close()
    assert seconds < 2.5 and "(no first token within 1 s)" in str(error)


def test_the_between_token_limit_is_its_own_and_keeps_the_text():
    with fake_server("llamacpp", delay=1.5) as fake:
        error, seconds = failing("llamacpp", fake, timeout=30, first_token_timeout=5, token_timeout=1)
    assert seconds < 4 and "(no new token for 1 s)" in str(error) and "raise the between-token limit" in str(error)
    assert error.partial_text == "Hello"


def test_a_silence_after_the_first_token_is_not_a_first_token_timeout():
    with fake_server("llamacpp", pause=1.5) as fake:
        done = backends.create("llamacpp", Settings(url=fake.url, timeout=20, first_token_timeout=1)).complete(PROMPT, PARAMS)
    assert done.text == "Hello, world! How are you?"


def test_the_websocket_stream_has_the_same_limits():
    with fake_server("webui-legacy", endless=True, delay=0.3) as fake:
        error, seconds = failing("webui-legacy", fake, timeout=2, legacy_stream_port=fake.ws_port)
    assert seconds <= 3 and "(the whole generation took longer than the 2 s deadline)" in str(error)
    assert error.partial_text.startswith(" 0 1")
    with fake_server("webui-legacy", delay=3) as fake:
        error, seconds = failing("webui-legacy", fake, timeout=30, first_token_timeout=1, legacy_stream_port=fake.ws_port)
    assert seconds < 2.5 and "(no first token within 1 s)" in str(error)


PEAK = """
import resource, sys
import backends
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    backends.create(sys.argv[1], backends.Settings(url=sys.argv[2], model="m", timeout=60)).complete("x", {})
except backends.BackendError as e:
    print(e)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


@pytest.mark.parametrize("kind", ["llamacpp", "ollama"])
def test_a_400_mb_line_is_refused_at_the_line_limit_not_held_whole(kind):
    with fake_server(kind, flood=400_000_000, models=["m"]) as fake:
        done = subprocess.run([sys.executable, "-c", PEAK, kind, fake.url], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
    message, grown_mb = done.stdout.strip().splitlines()
    assert "sent a line longer than 16,000,000 bytes without a line end; stopped reading" in message, done.stderr
    assert int(grown_mb) < 100, f"reading the line took {grown_mb} MB more"
