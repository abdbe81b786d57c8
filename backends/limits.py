"""The time limits of one request, and the one thread that enforces them on blocked reads.

A per-read timeout lets a server that drips one byte a second hold a request for ever. Here the
limits are wall-clock: a deadline for the whole request, and for a stream a first-token limit and a
between-token limit (0 = none; the deadline always holds). The reader checks them after every chunk;
a read that blocks past them is interrupted by the watchdog, which shuts the socket down.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from .errors import BackendError

WATCH_INTERVAL = 0.05  # seconds between the watchdog's looks: how far past a limit a blocked read may run


class TimeLimits:
    """A request's clock (first token, total) and its limits, in seconds from its start."""

    def __init__(self, deadline: float, first_token: float = 0.0, token_gap: float = 0.0, what: str = "generation"):
        self.deadline, self.first_token, self.token_gap, self.what = deadline, first_token, token_gap, what
        self.start = time.monotonic()
        self.first: float | None = None  # seconds from the start to the first token
        self.last: float | None = None  # monotonic time of the latest token
        self.expired = False  # the watchdog interrupted the read
        self._interrupt: Callable[[], None] | None = None
        self._lock = threading.Lock()

    def token(self) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = now - self.start
        self.last = now

    def _limit(self) -> tuple[float, str]:
        """(monotonic time the binding limit passes, which limit: "deadline" | "first" | "gap")."""
        due, which = self.start + self.deadline, "deadline"
        if self.last is None and self.first_token and self.start + self.first_token < due:
            due, which = self.start + self.first_token, "first"
        elif self.last is not None and self.token_gap and self.last + self.token_gap < due:
            due, which = self.last + self.token_gap, "gap"
        return due, which

    def due(self) -> float:
        return self._limit()[0]

    def remaining(self) -> float:
        return max(0.0, self.due() - time.monotonic())

    def passed(self) -> bool:
        return self.expired or time.monotonic() >= self.due()

    def check(self, url: str) -> None:
        if self.passed():
            raise self.error(url)

    def error(self, url: str) -> BackendError:
        """The sentence naming the limit that passed."""
        which = self._limit()[1]
        if which == "first":
            reason, advice = f"no first token within {self.first_token:g} s", "raise the first-token limit"
        elif which == "gap":
            reason, advice = f"no new token for {self.token_gap:g} s", "raise the between-token limit"
        else:
            reason, advice = f"the whole {self.what} took longer than the {self.deadline:g} s deadline", "raise the timeout"
        return BackendError(f"{url} did not answer in time ({reason}): the server may be busy or stuck; "
                            f"{advice} or check the server")

    def timings(self) -> dict:
        return {"first_token": self.first, "total": time.monotonic() - self.start}

    # --- the watchdog's side --------------------------------------------------------------------------

    def watch(self, interrupt: Callable[[], None]) -> "_Watching":
        """While the returned context is open, `interrupt` is called (once) if a limit passes."""
        return _Watching(self, interrupt)

    def _trip(self) -> None:
        with self._lock:
            if self._interrupt is not None:
                self.expired = True
                interrupt, self._interrupt = self._interrupt, None
                interrupt()


class _Watching:
    def __init__(self, limits: TimeLimits, interrupt: Callable[[], None]):
        self.limits, self.interrupt = limits, interrupt

    def __enter__(self):
        self.limits._interrupt = self.interrupt
        _watchdog.add(self.limits)
        return self

    def __exit__(self, *exc):
        with self.limits._lock:  # after this, a late trip cannot touch a connection handed back to the pool
            self.limits._interrupt = None
        _watchdog.remove(self.limits)


class _Watchdog:
    """One daemon thread for every request in flight; it sleeps while there is none."""

    def __init__(self):
        self._watched: set[TimeLimits] = set()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, limits: TimeLimits) -> None:
        with self._changed:
            self._watched.add(limits)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="backend-time-limits", daemon=True)
                self._thread.start()
            self._changed.notify()

    def remove(self, limits: TimeLimits) -> None:
        with self._changed:
            self._watched.discard(limits)

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._watched:
                    self._changed.wait()
                watched = list(self._watched)
            now = time.monotonic()
            for limits in watched:
                if now >= limits.due():
                    limits._trip()
            time.sleep(WATCH_INTERVAL)


_watchdog = _Watchdog()
