"""What the page keeps per browser session on the server: its finished runs and the Stop flags of
its running generations and scoreboard. Panels finish concurrently, so the entries live here behind
a lock rather than in a per-event copy of page state; `forget` drops a session's entries when its
page closes, so many sessions over a long time do not add up."""

from __future__ import annotations

import threading


class Sessions:
    RUN_LIMIT = 200  # runs kept per session

    def __init__(self):
        self._runs: dict[str, list[dict]] = {}
        self._stops: dict[str, dict[str, threading.Event]] = {}  # session -> what runs (panel 1, scoreboard…) -> its Stop
        self._lock = threading.Lock()

    def add_run(self, session: str, record: dict) -> list[dict]:
        with self._lock:
            runs = self._runs.setdefault(session, [])
            runs.append(record)
            del runs[: -self.RUN_LIMIT]
            return list(runs)

    def runs(self, session: str) -> list[dict]:
        with self._lock:
            return list(self._runs.get(session, []))

    def stop_flag(self, session: str, what: str) -> threading.Event:
        """A fresh Stop flag for what starts running now (it replaces the one of the run before)."""
        flag = threading.Event()
        with self._lock:
            self._stops.setdefault(session, {})[what] = flag
        return flag

    def stop(self, session: str, *what: str) -> None:
        """Set the Stop flags of `what` in this session (all of them when none is named)."""
        with self._lock:
            flags = self._stops.get(session, {})
            for name, flag in flags.items():
                if not what or name in what:
                    flag.set()

    def forget(self, session: str) -> None:
        """The page closed: stop what it still runs and drop its entries."""
        self.stop(session)
        with self._lock:
            self._runs.pop(session, None)
            self._stops.pop(session, None)

    def active(self) -> set[str]:
        """The sessions that hold entries."""
        with self._lock:
            return set(self._runs) | set(self._stops)
