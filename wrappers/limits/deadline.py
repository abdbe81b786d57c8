"""Time: one watchdog thread stops any render that passes its deadline, wherever it is."""

from __future__ import annotations

import ctypes
import os
import threading
import time

from .sizes import MAX_SECONDS, too_slow


class Expired(BaseException):
    """Raised in a rendering thread at its deadline. A BaseException (like KeyboardInterrupt), so that
    no `except Exception` in a filter or library swallows it."""


_REPEAT_AFTER = 1.0  # seconds: a stop swallowed (a finalizer running just then prints and drops it) comes again


class _Ticket:
    __slots__ = ("due", "thread", "fired")

    def __init__(self, deadline: float):
        self.due = deadline  # the deadline, then when the stop is repeated
        self.thread = threading.get_ident()
        self.fired = False


def _raise_in(thread: int, exc: type[BaseException] | None) -> None:
    # Python delivers it between two bytecodes of that thread; None cancels one not yet delivered
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread), ctypes.py_object(exc) if exc else None)


class _Watchdog:
    """Raises `Expired` in a thread whose render passed its deadline (again every second until the
    render ends). Sleeps until the next one is due, so a render costs two lock round trips, not a
    clock read per loop or call."""

    def __init__(self):
        # rendering threads take the bare lock: its enter is C, so a stop landing just after it is
        # taken lands inside the `with` and releases it (a Condition's Python-level enter would not)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._tickets: set[_Ticket] = set()
        self._waiting_for: float | None = None  # when the thread wakes next (None: for a new ticket)
        self._thread: threading.Thread | None = None

    def start(self, seconds: float) -> _Ticket:
        ticket = _Ticket(time.monotonic() + seconds)
        with self._lock:
            self._tickets.add(ticket)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="template-watchdog", daemon=True)
                self._thread.start()
            elif self._waiting_for is None or ticket.due < self._waiting_for:
                self._cond.notify()
        return ticket

    def stop(self, ticket: _Ticket) -> None:
        """Idempotent; once it returns, no `Expired` is pending or will come for this ticket."""
        with self._lock:
            self._tickets.discard(ticket)
            if ticket.fired:
                _raise_in(ticket.thread, None)

    def forget_thread(self) -> None:
        """In a forked child: the thread did not come along; the next render starts a new one."""
        self.__init__()

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for ticket in self._tickets:
                    if ticket.due <= now:
                        ticket.fired = True
                        ticket.due = now + _REPEAT_AFTER
                        _raise_in(ticket.thread, Expired)
                self._waiting_for = min((t.due for t in self._tickets), default=None)
                self._cond.wait(None if self._waiting_for is None else self._waiting_for - now)


_watchdog = _Watchdog()
os.register_at_fork(after_in_child=_watchdog.forget_thread)


def _stop_watching(ticket: _Ticket) -> None:
    # a stop repeated while this runs lands here, before the ticket is gone: try again
    while True:
        try:
            _watchdog.stop(ticket)
            return
        except Expired:
            continue


def run_bounded(work, *args):
    """`work(*args)` within the time limit; past it, raises `Limit` (too slow), with the template line
    where it stopped when `work` rendered through `render_pieces`."""
    ticket = _watchdog.start(MAX_SECONDS)
    try:
        try:
            return work(*args)
        finally:
            _stop_watching(ticket)
    except Expired as stop:
        _stop_watching(ticket)  # the stop may have landed inside the first one, before it finished
        raise too_slow(getattr(stop, "line", None)) from None
