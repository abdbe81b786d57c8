"""Exposure: loopback by default, no open page without a password, backend requests only where allowed,
no monitoring dashboard, no run history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

import cli
from flow import startup
from flow.startup import StartupConfig
from core.conversation import EXAMPLE_PATH
from tests.conftest import ROOT, free_port, wait_for

EXAMPLE = EXAMPLE_PATH.read_text()


def _args(*argv: str) -> StartupConfig:
    return cli.startup_config(cli._parser(startup.from_environment({})).parse_args(list(argv)))


def _app(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "app.py", *argv], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})


def test_the_default_address_is_loopback():
    assert _args().host == "127.0.0.1"
    assert startup.exposure_problem(_args()) is None


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]", "LOCALHOST"])
def test_loopback_addresses(host):
    assert startup.is_loopback(host)
    assert startup.exposure_problem(_args("--host", host)) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com", "my-laptop", ""])
def test_other_addresses_are_exposed(host):
    assert not startup.is_loopback(host)
    problem = startup.exposure_problem(_args("--host", host))
    assert problem and "without --auth USER:PASS" in problem and "backend URL field" in problem
    assert startup.RISK_FLAG in problem


@pytest.mark.parametrize("argv", [["--host", "0.0.0.0"], ["--share"], ["--host", "0.0.0.0", "--share"]])
def test_exposed_without_auth_refuses_to_start_with_a_reason(argv):
    done = _app(*argv, "--port", str(free_port()))
    assert done.returncode == 2
    assert done.stderr.startswith("error: refusing to serve ")
    assert "any address it can reach" in done.stderr and "--auth USER:PASS" in done.stderr
    assert "--expose-without-auth" in done.stderr
    assert "Prompt Format Playground on" not in done.stdout


@pytest.mark.parametrize("argv", [["--host", "0.0.0.0", "--auth", "me:secret"], ["--share", "--auth", "me:pw:with:colons"],
                                  ["--host", "0.0.0.0", "--expose-without-auth"], ["--share", "--expose-without-auth"]])
def test_auth_or_the_explicit_override_lets_it_start(argv):
    assert startup.exposure_problem(_args(*argv)) is None


@pytest.mark.parametrize("value", ["nopassword", ":pw", "user:", ""])
def test_a_malformed_auth_is_refused(value):
    done = _app("--auth", value)
    assert done.returncode == 2 and "give --auth as USER:PASS" in done.stderr


def test_auth_keeps_colons_in_the_password():
    assert _args("--auth", "me:a:b").auth == ("me", "a:b")


def test_allowed_backends_include_the_startup_backend():
    assert startup.allowed_backends(_args()) is None
    args = _args("--allow-backend", "10.0.0.5:8080", "--allow-backend", "gpu-box", "--backend-url", "http://127.0.0.1:5001/v1")
    assert startup.allowed_backends(args) == ["10.0.0.5:8080", "gpu-box", "127.0.0.1:5001"]


@pytest.fixture(scope="module")
def guarded_app(llama_cpp_server):
    """The app as `python app.py --auth ... --allow-backend <the llama.cpp server>` runs it."""
    port = free_port()
    allowed = llama_cpp_server.split("://", 1)[1]
    process = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--auth", "alice:wonder-land",
                                "--allow-backend", allowed], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/config", 90, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_auth_is_required_for_the_page_and_the_api(guarded_app):
    assert httpx.get(guarded_app + "/config", timeout=10).status_code in (401, 403)
    from gradio_client import Client

    with pytest.raises(Exception):  # noqa: B017  (gradio_client's error type for a login page varies)
        Client(guarded_app, verbose=False)
    client = Client(guarded_app, auth=("alice", "wonder-land"), verbose=False)
    try:
        assert "chatml" in client.predict(api_name="/wrappers")
    finally:
        client.close()


def test_a_backend_not_allowed_is_refused_clearly_and_the_allowed_one_works(guarded_app, llama_cpp_server):
    from gradio_client import Client

    client = Client(guarded_app, auth=("alice", "wonder-land"), verbose=False)
    try:
        for url in ("http://169.254.169.254", "http://127.0.0.1:9", "http://10.0.0.1:8080"):
            start = time.monotonic()
            with pytest.raises(Exception) as caught:
                client.predict("openai", "chatml", EXAMPLE, url, "deterministic", '{"max_new_tokens": 4}', "",
                               api_name="/generate")
            assert "not in the allowed backends (--allow-backend)" in str(caught.value), str(caught.value)
            assert time.monotonic() - start < 10  # refused before any connection attempt
        run = client.predict("openai", "chatml", EXAMPLE, llama_cpp_server, "deterministic", '{"max_new_tokens": 4}', "",
                             api_name="/generate")
        assert run["request"]["url"].startswith(llama_cpp_server)
    finally:
        client.close()


def test_monitoring_and_run_history_are_off(app_url):
    assert httpx.get(app_url + "/monitoring", timeout=10).status_code in (403, 404)
    config = httpx.get(app_url + "/config", timeout=10).json()
    assert config["run_history"] is False
    assert config["analytics_enabled"] is False


def test_the_page_binds_loopback_only(app_url):
    assert app_url.startswith("http://127.0.0.1:")
    done = subprocess.run([sys.executable, "-c", "import json,sys; sys.path.insert(0, sys.argv[1]);"
                           "from flow.startup import StartupConfig; print(json.dumps(StartupConfig().host))", str(ROOT)],
                          capture_output=True, text=True, timeout=60)
    assert json.loads(done.stdout) == "127.0.0.1"


def test_gradio_share_in_the_environment_opens_no_share_link():
    """Sharing is the app's own --share (which needs --auth), never GRADIO_SHARE: with it set, Gradio would try a
    public tunnel (and say "Could not create share link" where it cannot reach the tunnel server)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_SHARE": "true",
                                    "PYTHONUNBUFFERED": "1"})
    try:
        wait_for(f"http://127.0.0.1:{port}/config", 90, process)
        time.sleep(3)  # Gradio tries the tunnel right after the local server is up
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    assert f"Prompt Format Playground on http://127.0.0.1:{port}/ " in output
    assert "share link" not in output.lower() and "public URL" not in output, output
