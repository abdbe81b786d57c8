"""The pool of servers a scoreboard spreads its runs over.

Each server runs up to its own concurrency at once (by default the slot count the server reports:
llama.cpp's `/props` `total_slots`, else the length of its `/slots`, else 1; asked with the API
key). The runs wait in one queue; a free worker of any server takes the next. A run that fails
because its server is down (cannot connect, the connection broke, a 502/503/504, a time-out) goes
back to the queue, so it is tried again; its server leaves the pool, with a sentence, after
`STRIKES` such failures in a row (a run it finishes resets the count), so a single time-out on a
busy server does not lose that server. The last server is never taken out: there, once its strikes
are used up, the runs fail with their error, as with one server.
"""

from __future__ import annotations

import collections
import re
import threading
from dataclasses import dataclass
from typing import Callable

import httpx

# BackendError sentences that say the server, not the run, failed (backends/base.py connection_message & co.)
SERVER_DOWN = re.compile(r"cannot connect to|cannot resolve the host|did not answer in time|broke off mid-response|"
                         r"stopped mid-way|^request to \S+ failed|answered HTTP 50[234]")


STRIKES = 2  # server failures in a row that take a server out of the pool


def server_down(error: str | None) -> bool:
    return bool(error) and SERVER_DOWN.search(error) is not None


@dataclass
class Server:
    url: str  # "" for the embedded backend
    concurrency: int
    runs: int = 0
    in_flight: int = 0
    strikes: int = 0  # server failures in a row
    failed: str | None = None  # why it left the pool

    def to_dict(self) -> dict:
        return {"url": self.url, "concurrency": self.concurrency, "runs": self.runs, "in_flight": self.in_flight,
                "strikes": self.strikes, "failed": self.failed}


def slot_count(url: str, api_key: str = "", timeout: float = 5.0) -> int | None:
    """The parallel slots a llama.cpp server reports, or None when it does not say."""
    base = url.rstrip("/").removesuffix("/v1")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    for path in ("/props", "/slots"):
        try:
            response = httpx.get(base + path, headers=headers, timeout=timeout)
            body = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            continue
        if path == "/props" and isinstance(body, dict) and isinstance(body.get("total_slots"), int) and body["total_slots"] > 0:
            return body["total_slots"]
        if path == "/slots" and isinstance(body, list) and body:
            return len(body)
    return None


def build(urls: list[str], concurrency: int, api_key: str = "") -> list[Server]:
    """One Server per distinct URL; `concurrency` 0 means each server's own slot count."""
    servers = []
    for url in dict.fromkeys(urls):
        k = concurrency or (slot_count(url, api_key) if url else None) or 1
        servers.append(Server(url, k))
    return servers


def run(jobs: list, servers: list[Server], work: Callable, stop: threading.Event | None,
        finished: Callable, changed: Callable[[], None] | None = None) -> None:
    """Run every job: `work(job, server) -> record or None` (None: dropped by Stop); `finished(record)`
    for each record kept. `changed()` after each run and each server that leaves the pool."""
    queue = collections.deque(jobs)
    outstanding = [len(jobs)]
    cond = threading.Condition()

    def worker(server: Server) -> None:
        while True:
            with cond:
                while True:
                    if (stop is not None and stop.is_set()) or server.failed:
                        return
                    if queue:
                        job = queue.popleft()
                        server.in_flight += 1
                        break
                    if outstanding[0] == 0:
                        return
                    cond.wait(0.5)
            record = work(job, server)
            with cond:
                server.in_flight -= 1
                others = any(not s.failed and s is not server for s in servers)
                requeued = False
                if record is not None and record.server_failed:
                    server.strikes += 1
                    if server.strikes >= STRIKES and others and not server.failed:
                        server.failed = f"left the pool after {server.runs} runs: {record.error.split(': ', 1)[-1]}"
                    requeued = server.strikes < STRIKES or others
                elif record is not None:
                    server.strikes = 0
                if requeued:
                    queue.appendleft(job)  # tried again, on another server if this one left
                else:
                    outstanding[0] -= 1
                    if record is not None:
                        server.runs += 1
                cond.notify_all()
            if record is not None and not requeued:
                finished(record)
            if changed:
                changed()

    threads = [threading.Thread(target=worker, args=(s,), name=f"score-{i}-{k}", daemon=True)
               for i, s in enumerate(servers) for k in range(s.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
