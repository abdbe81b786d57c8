"""How many requests to backends run at once. A backend that never answers holds a worker thread for
as long as the request's timeout; unbounded, forty such requests take every thread the server has
and nobody else is served (not even the page or `/render`). Two bounds, decided at start-up:

- overall: the faces put every event that waits on a backend in one queue (`QUEUE`) that runs at
  most `overall` of them at once; the others wait their turn in order, their place shown.
- per session (one browser page, one API client): at most `per_session` of those at once; one more
  is refused at once with a sentence, so one caller cannot take every place of the queue.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

from core.errors import UserError

QUEUE = "backend"  # the faces' queue (Gradio's concurrency id) of every event that waits on a backend
DEFAULT_OVERALL = 8
DEFAULT_PER_SESSION = 4  # three panels and a stability run


class Busy(UserError):
    """The session already runs as many backend requests as it may."""


class BackendSlots:
    def __init__(self, overall: int = DEFAULT_OVERALL, per_session: int = DEFAULT_PER_SESSION):
        if overall < 1 or per_session < 1:
            raise ValueError("the limits on backend requests must be at least 1")
        self.overall = overall
        self.per_session = per_session
        self._running: dict[str, int] = {}  # session -> its requests running; a session at 0 has no entry
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def hold(self, session: str) -> Iterator[None]:
        """One of the session's places for the duration of the block; Busy when it has none left."""
        with self._lock:
            running = self._running.get(session, 0)
            if running >= self.per_session:
                raise Busy(f"busy: this session already runs {running} request{'s' * (running != 1)} to a backend, "
                           "the most one page or API client may run at once (--max-generations-per-session); wait "
                           "for one to finish or stop one")
            self._running[session] = running + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._running.pop(session) - 1
                if left:
                    self._running[session] = left
