"""The traffic record: every request the OpenAI-compatible endpoint served, for the page's Traffic tab.

A ring of the last N entries in memory (older ones fall off): an entry is there from the request's
arrival (status "in progress") and filled in as it runs; at its end it is appended to the JSONL
file, when there is one, that `load` reads back. An entry is a plain dict (time, client, wrapper,
status, latency, verdict, the request, the sampling values, the prompt sent, the raw output, the
parse, the response body, the backend's timings); it never holds the caller's key or the backend's
(the backend request is recorded with secrets masked).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from pathlib import Path

import presets
from core.errors import UserError

DEFAULT_SIZE = 200
IN_PROGRESS = "in progress"  # an entry's status until the request ends
SUMMARY_KEYS = ("id", "time", "client", "wrapper", "status", "latency_ms", "verdict")


class TrafficError(UserError):
    """The traffic log cannot be read or written; the message says which file and why."""


class Traffic:
    def __init__(self, size: int = DEFAULT_SIZE, log_path: str | None = None):
        if size < 1:
            raise TrafficError(f"the traffic ring needs room for at least 1 request, not {size}")
        self._entries: deque[dict] = deque(maxlen=size)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.log_path = Path(log_path) if log_path else None
        self.version = 0  # bumped on every change, so a viewer redraws only when something arrived

    @property
    def size(self) -> int:
        return self._entries.maxlen or 0

    def start(self, entry: dict) -> dict:
        """Record a request as it arrives (newest) and give it an id; the returned entry is the one kept."""
        with self._lock:
            entry = {"id": next(self._ids), **entry}
            self._entries.append(entry)
            self.version += 1
        return entry

    def update(self, entry: dict, **fields) -> None:
        with self._lock:
            entry.update(fields)
            self.version += 1

    def finish(self, entry: dict, **fields) -> None:
        """The request's end: its last fields, and its line in the log file when there is one."""
        self.update(entry, **fields)
        if self.log_path is None:
            return
        line = json.dumps(entry, ensure_ascii=False, default=str)
        with self._lock:
            try:
                with open(self.log_path, "a", encoding="utf-8") as f:
                    f.write(line + "\n")
            except OSError as e:  # the request was served; the log line is what is lost, and says so
                entry.setdefault("notes", []).append(f"not written to {self.log_path}: {e.strerror}")

    def add(self, entry: dict) -> dict:
        """Record a finished request at once."""
        entry = self.start(entry)
        self.finish(entry)
        return entry

    def entries(self) -> list[dict]:
        """Newest first."""
        with self._lock:
            return list(reversed(self._entries))

    def get(self, entry_id: int) -> dict | None:
        with self._lock:
            return next((e for e in self._entries if e.get("id") == entry_id), None)

    def load(self, path: str | None = None) -> int:
        """Replace the ring with the last N entries of a JSONL log (default: this ring's log); returns how many."""
        source = Path(path) if path else self.log_path
        if source is None:
            raise TrafficError("there is no traffic log to load: start the app with --traffic-log FILE")
        try:
            lines = source.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise TrafficError(f"cannot read the traffic log {source}: {e.strerror}") from None
        loaded = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as e:
                raise TrafficError(f"the traffic log {source} has a line that is not JSON (line {number}: {e.msg})") from None
            if isinstance(entry, dict):
                loaded.append(entry)
        with self._lock:
            self._entries.clear()
            self._entries.extend(loaded[-self.size:])
            top = max((e.get("id", 0) for e in self._entries if isinstance(e.get("id"), int)), default=0)
            self._ids = itertools.count(top + 1)
            self.version += 1
            return len(self._entries)


_ring = Traffic()


def configure(size: int = DEFAULT_SIZE, log_path: str | None = None) -> Traffic:
    """Set up the process's ring (app.py does, from --traffic-size and --traffic-log)."""
    global _ring
    _ring = Traffic(size, log_path)
    return _ring


def ring() -> Traffic:
    return _ring


HEADERS = ["#", "time", "client", "wrapper", "status", "latency ms", "verdict"]


def rows(entries: list[dict]) -> list[list]:
    """One table row per entry, in the order given (the Traffic tab shows newest first)."""
    return [[e.get("id"), str(e.get("time", ""))[11:23], e.get("client", ""), e.get("wrapper") or "", e.get("status"),
             e.get("latency_ms"), e.get("verdict", "")] for e in entries]


def detail(entry: dict) -> dict:
    """What the Traffic tab shows of one request below its prompt and raw output."""
    return {"messages": (entry.get("conversation") or {}).get("messages") or (entry.get("request") or {}).get("messages"),
            "functions": (entry.get("conversation") or {}).get("functions"), "parse": entry.get("parse"),
            "response": entry.get("response"), "notes": entry.get("notes"), "backend_request": entry.get("backend_request"),
            "backend_timings": entry.get("timings"), "request": entry.get("request")}


def sampling(entry: dict) -> dict:
    """The sampling values the request ran with (the preset's, the wrapper's stop strings and the request's own),
    by parameter name: what *Open in panel* puts into the panel's controls. Empty for a request refused before it ran."""
    params = entry.get("params") or {}
    return {key: params[key] for key in presets.KEYS if key in params}
