"""Shared by the bench scripts: the machine, free ports, waiting for a server, RSS, the test conversation."""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from backends.embedded import default_model_path  # noqa: E402  (the app's, from ROOT)


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def header(title: str) -> None:
    print(f"# {title}\nmachine: {machine()}\n", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float, process: subprocess.Popen | None = None, interval: float = 0.05) -> float:
    """Poll `url` until it answers below 500; returns the moment (perf_counter) it did."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return time.perf_counter()
        except httpx.HTTPError:
            pass
        time.sleep(interval)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux): less sensitive to a busy machine than wall time."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def start_llama_server(port: int, log_path: str = "/tmp/bench-llama-server.log", queue: bool = False) -> subprocess.Popen:
    """llama-cpp-python's OpenAI-compatible server with the SmolLM2 GGUF, on loopback. By default a new
    request interrupts the one streaming (its `interrupt_requests`); `queue=True` makes them wait instead."""
    log = open(log_path, "w")
    return subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", default_model_path(), "--host",
                             "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--model_alias", "smollm2",
                             *(["--interrupt_requests", "False"] if queue else [])],
                            stdout=log, stderr=subprocess.STDOUT)


def start_app(port: int, *extra: str, log_path: str = "/tmp/bench-app.log", root: Path = ROOT) -> subprocess.Popen:
    """`python app.py` of the checkout at `root` (another one: a baseline to compare with, e.g. from `git archive`)."""
    log = open(log_path, "w")
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    return subprocess.Popen([sys.executable, "app.py", "--port", str(port), *extra], cwd=root, stdout=log,
                            stderr=subprocess.STDOUT, env=env)


def checkouts(baseline: str) -> dict[str, Path]:
    """{label: checkout} to measure: this one, and the baseline when one is given (side by side in one run).
    `baseline` is a folder holding another checkout, or a commit of this repository, unpacked once with
    `git archive` into the temporary folder."""
    if not baseline:
        return {"this": ROOT}
    if Path(baseline).is_dir():
        return {"this": ROOT, "baseline": Path(baseline).resolve()}
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", f"{baseline}^{{commit}}"], check=True,
                            capture_output=True, text=True).stdout.strip()
    folder = Path(tempfile.gettempdir()) / f"pfp-baseline-{commit}"
    if not (folder / "app.py").exists():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return {"this": ROOT, "baseline": folder}


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def conversation(messages: int = 50, functions: int = 10) -> dict:
    """A `messages`-message conversation (system, user/assistant turns with function calls and
    results) and `functions` JSON-schema functions: the render benchmark's input."""
    fns = [{"name": f"tool_{i}", "description": f"Tool number {i}: does thing {i} for the user.",
            "parameters": {"type": "object", "properties": {
                "query": {"type": "string", "description": "what to look up"},
                "limit": {"type": "integer", "description": "how many results"},
                "inner_thoughts": {"type": "string", "description": "private reasoning"}},
                "required": ["query"]}} for i in range(functions)]
    msgs = [{"role": "system", "content": "You are MemGPT, a helpful assistant with tools. " * 5}]
    i = 0
    while len(msgs) < messages:
        if i % 3 == 2:
            msgs.append({"role": "assistant", "content": f"Let me call tool {i % functions}.",
                         "function_call": {"name": f"tool_{i % functions}", "arguments": json.dumps({"query": f"q{i}", "limit": 3})}})
            if len(msgs) < messages:
                msgs.append({"role": "function", "name": f"tool_{i % functions}", "content": json.dumps({"status": "OK", "result": [f"r{i}"] * 3})})
        else:
            msgs.append({"role": "user" if i % 3 == 0 else "assistant", "content": f"Message {i}: " + "some words here " * 12})
        i += 1
    if msgs[-1]["role"] != "user":
        msgs[-1] = {"role": "user", "content": "And now?"}
    return {"messages": msgs[:messages], "functions": fns}
