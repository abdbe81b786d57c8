"""The resource limits on user templates: time, output size and the size of every value a template builds.

Jinja's sandbox stops attribute walks, not a template that loops for ever or builds a 10 GB string.
`BoundedEnvironment` (the immutable sandbox, subclassed) and `run_bounded`/`render_pieces` add:

- time: a watchdog thread stops a render (compiling included) at its deadline, wherever it is:
  template code, a filter, a library loop. Nothing is checked per loop iteration or call. A
  template that compiles to over MAX_CODE_LINES lines of Python is refused before Python compiles
  it (that step cannot be interrupted).
- output: what a render, a macro or a captured block prints is counted as it grows.
- text: operators (`+ * % **`, `~`), str and bytes methods, `str.format` and the filters that make
  text check the size of what they would build before building it (at most MAX_OUTPUT_CHARS
  characters). Those that grow text by a bounded factor (escape, upper, urlencode, encode...; at
  most 12x) are checked on their result. Integers stay within MAX_INT_BITS bits.
- sequences: a filter reads at most MAX_ITEMS items.
- shared references: a list, tuple or dict the template builds (a literal, `dict()`, `namespace()`,
  a macro's varargs, a filter's fill value, `+` and `*`) is counted as text when built, every
  reference to a shared value again, so no value can print or serialize past the limit through
  nesting (`[a, a]`, then `[b, b]`...). Values passed in are the caller's data (JSON trees), so
  `tojson` and printing a list or dict need no second count.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import threading
import time
from types import MethodType

from jinja2 import TemplateError, nodes
from jinja2.compiler import CodeGenerator
from jinja2.runtime import Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import Namespace, generate_lorem_ipsum

MAX_SECONDS = 2.0
MAX_OUTPUT_CHARS = 2_000_000
MAX_ITEMS = 100_000  # items a filter reads or builds: as many as the sandbox's range() makes (about 10 MB)
MAX_INT_BITS = 16_384  # about 4,900 digits: Python prints at most 4,300, and bigger ones make % and // slow
MAX_INDENT = 64  # tojson's indent
MAX_CODE_LINES = 2_500  # Python a template compiles to (the biggest built-in: 520 lines); compiling holds the GIL

_TEXT = (str, bytes, bytearray)
_CONTAINERS = (dict, list, tuple)  # what JSON and repr print in full; caller data or checked when built
_VIEWS = (type({}.keys()), type({}.values()), type({}.items()), set, frozenset)
_BUILTIN_METHOD = type("".join)
_BIG_WIDTH = re.compile(r"\d{7,}|\*")  # a %-format width or precision of a million or more, or one passed as '*'
_BIG_WIDTH_BYTES = re.compile(rb"\d{7,}|\*")


class Limit(TemplateError):
    """A render limit was hit; the message says which."""


def too_slow() -> Limit:
    return Limit(f"rendering took longer than {MAX_SECONDS:g} s and was stopped (a runaway loop or recursion?)")


def too_big(what: str = "a value") -> Limit:
    return Limit(f"{what} would be over {MAX_OUTPUT_CHARS:,} characters; rendering stopped")


def _too_many(what: str) -> Limit:
    return Limit(f"{what} would read or make over {MAX_ITEMS:,} items; rendering stopped")


def _too_long_number(what: str) -> Limit:
    return Limit(f"{what} would be over {MAX_INT_BITS:,} bits; rendering stopped")


# --- time: one watchdog thread for every render ----------------------------------------------------

class _Expired(BaseException):
    """Raised in a rendering thread at its deadline. A BaseException (like KeyboardInterrupt), so that
    no `except Exception` in a filter or library swallows it."""


class _Ticket:
    __slots__ = ("deadline", "thread", "fired")

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.thread = threading.get_ident()
        self.fired = False


def _raise_in(thread: int, exc: type[BaseException] | None) -> None:
    # Python delivers it between two bytecodes of that thread; None cancels one not yet delivered
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread), ctypes.py_object(exc) if exc else None)


class _Watchdog:
    """Raises `_Expired` once in a thread whose render passed its deadline. Sleeps until the earliest
    deadline, so a render costs two lock round trips, not a clock read per loop or call."""

    def __init__(self):
        self._cond = threading.Condition()
        self._tickets: set[_Ticket] = set()
        self._waiting_for: float | None = None  # the deadline the thread sleeps until (None: for a new ticket)
        self._thread: threading.Thread | None = None

    def start(self, seconds: float) -> _Ticket:
        ticket = _Ticket(time.monotonic() + seconds)
        with self._cond:
            self._tickets.add(ticket)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="template-watchdog", daemon=True)
                self._thread.start()
            elif self._waiting_for is None or ticket.deadline < self._waiting_for:
                self._cond.notify()
        return ticket

    def stop(self, ticket: _Ticket) -> None:
        """Idempotent; once it returns, no `_Expired` is pending or will come for this ticket."""
        with self._cond:
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
                self._waiting_for = None
                for ticket in self._tickets:
                    if ticket.fired:
                        continue
                    if ticket.deadline <= now:
                        ticket.fired = True
                        _raise_in(ticket.thread, _Expired)
                    elif self._waiting_for is None or ticket.deadline < self._waiting_for:
                        self._waiting_for = ticket.deadline
                self._cond.wait(None if self._waiting_for is None else self._waiting_for - now)


_watchdog = _Watchdog()
os.register_at_fork(after_in_child=_watchdog.forget_thread)


def run_bounded(work, *args):
    """`work(*args)` within the time limit; past it, raises `Limit` (too slow) with the traceback of
    where it stopped (template lines, when `work` rendered through `render_pieces`)."""
    ticket = _watchdog.start(MAX_SECONDS)
    try:
        try:
            return work(*args)
        finally:
            _watchdog.stop(ticket)
    except _Expired as stop:
        _watchdog.stop(ticket)  # the stop may have landed inside the first stop(), before it finished
        raise too_slow().with_traceback(stop.__traceback__) from None


# --- sizes -------------------------------------------------------------------------------------------

def text_size(value, budget: int = MAX_OUTPUT_CHARS) -> int:
    """About how many characters `value` prints as (JSON or repr), every reference to a shared value
    counted again; stops counting once over `budget`."""
    if type(value) is str:
        return len(value)
    total = 0
    todo = [value]
    pop, push = todo.pop, todo.append
    while todo:
        item = pop()
        kind = type(item)
        if kind is dict or isinstance(item, dict):
            total += 2 + 2 * len(item)
            for key in item:
                if type(key) is str:
                    total += len(key) + 4
                else:
                    push(key)
            children = item.values()
        elif kind is list or kind is tuple or isinstance(item, (list, tuple, *_VIEWS)):
            total += 2 + 2 * len(item)
            children = item
        elif isinstance(item, _TEXT):
            total += len(item) + 4
            continue
        elif kind is int:
            total += 8 + item.bit_length() // 3
            continue
        elif isinstance(item, Namespace):  # its repr shows every attribute
            push(item._Namespace__attrs)  # noqa: SLF001  (Namespace keeps them there and lets this name through)
            total += 12
            continue
        else:
            total += 8
            continue
        for child in children:
            kind = type(child)
            if kind is str:
                total += len(child) + 4
            elif kind is float or kind is bool or child is None:
                total += 8
            else:
                push(child)
        if total > budget:
            return total
    return total


def ensure(size: int, what: str = "a value") -> None:
    if size > MAX_OUTPUT_CHARS:
        raise too_big(what)


def _ensure_text(result, what: str):
    """For operations that grow text by a bounded factor: checked on the result."""
    if isinstance(result, _TEXT) and len(result) > MAX_OUTPUT_CHARS:
        raise too_big(what)
    return result


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ensure_count(n, what: str) -> None:
    if _is_count(n) and n > MAX_ITEMS:
        raise _too_many(what)


def checked_value(value):
    """A list, tuple or dict the template writes (`[a, b]`, `{'k': v}`), counted when built."""
    ensure(text_size(value), "a list or dict")
    return value


def checked_print(value):
    """`{{ value }}` when value is not text (also the environment's finalize): lists and dicts are
    caller data or were counted when built; anything else (a namespace, a dict view) is counted now."""
    if not isinstance(value, (*_TEXT, *_CONTAINERS)):
        ensure(text_size(value), "a printed value")
    return value


# --- operators ---------------------------------------------------------------------------------------

def checked_add(left, right):
    if type(left) is str and type(right) is str:  # the common case: building text
        if len(left) + len(right) > MAX_OUTPUT_CHARS:
            raise too_big("a concatenation")
    elif isinstance(left, (*_TEXT, list, tuple)) and isinstance(right, (*_TEXT, list, tuple)):
        ensure(text_size(left) + text_size(right), "a concatenation")
    return left + right


def checked_mul(left, right):
    if type(left) is int and type(right) is int:
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise _too_long_number("a product")
    else:
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, (*_TEXT, list, tuple)) and _is_count(n):
                ensure(text_size(seq) * max(n, 0) if seq else 0, "a repeated string or list")
    return left * right


def checked_pow(left, right):
    if _is_count(left) and _is_count(right) and abs(left) > 1 and right > 0:
        if (abs(left).bit_length() - 1) * right > MAX_INT_BITS:
            raise _too_long_number("a power")
    return left ** right


def _format_size(fmt, right) -> int:
    """What `fmt % right` can grow to; a huge width or precision is refused outright."""
    if (_BIG_WIDTH if isinstance(fmt, str) else _BIG_WIDTH_BYTES).search(fmt):
        raise too_big("a %-format with a huge width")
    values = right.values() if isinstance(right, dict) else right if isinstance(right, tuple) else (right,)
    return len(fmt) + fmt.count("%" if isinstance(fmt, str) else b"%") * max(map(text_size, values), default=0)


def checked_mod(left, right):
    if isinstance(left, _TEXT):
        ensure(_format_size(left, right), "a %-formatted string")
    elif type(left) is int and type(right) is int and left.bit_length() > MAX_INT_BITS:
        raise _too_long_number("a number")
    return left % right


def checked_concat(parts: tuple) -> str:
    """`a ~ b ~ c`: every part as text, the total checked before joining."""
    try:
        if sum(map(len, parts)) <= MAX_OUTPUT_CHARS:
            return "".join(parts)  # all str: done; anything else raises TypeError before building
    except TypeError:
        pass
    ensure(sum(len(p) if type(p) is str else text_size(p) for p in parts), "the joined text")
    return "".join(map(str, parts))


# --- what a macro or a captured block prints, and the whole output --------------------------------------

_SMALL_PIECE = 4096  # a printed piece a buffer may hold uncounted until its next check
_CHECK_EVERY = 64  # pieces: at most 64 x 4,096 characters wait to be counted


class Buffer(list):
    """A macro's or a captured block's output (Jinja collects it in a list and joins it). Appending
    stays a plain list append: the compiled template counts a printed value of 4,096 characters or
    more (or one that is not text) before adding it, calls `check` every 64 pieces, and joins with
    `joined`. A buffer that never reaches 64 pieces never sets an attribute."""

    chars = counted = pending = 0  # class defaults until the first check

    def piece(self, value) -> str:
        """A big or non-text value about to be printed into this buffer, counted first."""
        text = value if type(value) is str else str(checked_print(value))
        self.pending += len(text)
        if self.chars + self.pending > MAX_OUTPUT_CHARS:
            raise too_big("a macro's or a captured block's output")
        return text

    def check(self) -> int:
        """Counts the pieces added since the last check; returns when the next one is due."""
        new = self[self.counted:]
        self.chars += sum(map(len, new)) + new.count("")  # an empty piece counts one: a loop printing '' fills memory too
        self.counted = len(self)
        self.pending = 0
        if self.chars > MAX_OUTPUT_CHARS:
            raise too_big("a macro's or a captured block's output")
        return self.counted + _CHECK_EVERY

    def joined(self) -> str:
        text = "".join(self)  # at most MAX_OUTPUT_CHARS counted, plus what waits for the next check
        if len(text) > MAX_OUTPUT_CHARS:
            raise too_big("a macro's or a captured block's output")
        return text


def render_pieces(template, variables: dict, **more) -> str:
    """The template's output with `variables` and `more`, counted piece by piece; errors come out as
    Jinja's, with template lines."""
    out: list[str] = []
    append = out.append
    chars = 0
    try:
        for piece in template.root_render_func(template.new_context(variables, locals=more)):
            chars += len(piece) or 1
            if chars > MAX_OUTPUT_CHARS:
                raise too_big("the rendered prompt")
            append(piece)
    except (Exception, _Expired):
        template.environment.handle_exception()
    return "".join(out)


# --- calls: str and bytes methods, and what keeps its arguments -------------------------------------------

def _counted(iterable, what: str):
    """Items of an iterable of unknown length: at most MAX_ITEMS of them, and MAX_OUTPUT_CHARS of text."""
    chars = 0
    for count, item in enumerate(iterable, 1):
        if count > MAX_ITEMS:
            raise _too_many(what)
        if isinstance(item, _TEXT):
            chars += len(item)
            if chars > MAX_OUTPUT_CHARS:
                raise too_big(what)
        yield item


def _items(value, what: str):
    """What a filter or a join reads: sized values of at most MAX_ITEMS items as they are, anything else counted."""
    try:
        n = len(value)
    except TypeError:
        return _counted(value, what)
    if n > MAX_ITEMS:
        raise _too_many(what)
    return value


def _check_text_method(name: str, text, args: tuple, kwargs: dict) -> tuple:
    """Pre-check the str/bytes methods that make a big value from small arguments; returns the
    arguments to call with (a join's iterable, read once and counted)."""
    size = 0
    if name in ("ljust", "rjust", "center", "zfill"):
        width = args[0] if args else kwargs.get("width", 0)
        size = width if _is_count(width) else 0
    elif name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        if _is_count(tabsize):
            size = len(text) + text.count(b"\t" if isinstance(text, (bytes, bytearray)) else "\t") * tabsize
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], _TEXT) and isinstance(args[1], _TEXT):
        old, new = args[0], args[1]
        if len(new) > len(old):
            count = text.count(old) if old else len(text) + 1
            limit = args[2] if len(args) > 2 else kwargs.get("count", -1)
            if _is_count(limit) and limit >= 0:
                count = min(count, limit)
            size = len(text) + count * (len(new) - len(old))
    elif name == "join" and args:
        parts = list(_items(args[0], f"{type(text).__name__}.join()"))
        size = sum(len(p) for p in parts if isinstance(p, _TEXT)) + len(text) * max(len(parts) - 1, 0)
        args = (parts, *args[1:])
    elif name == "translate" and args and isinstance(args[0], dict) and isinstance(text, str):
        size = len(text) * max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
    if size > MAX_OUTPUT_CHARS:
        raise too_big(f"{type(text).__name__}.{name}()")
    return args


_KEEPING_METHODS = frozenset({"fromkeys", "to_bytes"})


def _check_keeper(obj, args: tuple, kwargs: dict) -> None:
    """Calls that keep their arguments in what they make: a class (dict(), namespace(), cycler()),
    a macro's varargs and kwargs; and two methods that make much of little: dict.fromkeys (one
    value under every key) and int.to_bytes(length)."""
    if isinstance(obj, type) or type(obj) is Macro:
        ensure(text_size(args) + text_size(kwargs), "the arguments kept by a call")
    elif getattr(obj, "__name__", None) in _KEEPING_METHODS:
        if obj.__name__ == "fromkeys" and args:
            keys = list(_items(args[0], "dict.fromkeys()"))
            ensure(len(keys) * text_size(args[1] if len(args) > 1 else None), "dict.fromkeys()")
        elif obj.__name__ == "to_bytes":
            length = args[0] if args else kwargs.get("length", 1)
            if _is_count(length):
                ensure(length, "int.to_bytes()")


# --- filters ------------------------------------------------------------------------------------------

def _check_fill(count, fill_with, what: str) -> None:
    _ensure_count(count, what)
    if fill_with is not None and _is_count(count):
        ensure(text_size(fill_with) * count, what)


def _check_batch(linecount, fill_with=None):
    _check_fill(linecount, fill_with, "the batch filter")


def _check_slice(slices, fill_with=None):
    _check_fill(slices, fill_with, "the slice filter")


def _check_join(items: list, d="", attribute=None):
    ensure(sum(len(p) for p in items if isinstance(p, _TEXT)) + text_size(d) * max(len(items) - 1, 0), "the join filter")


def _check_center(value, width=80):
    if _is_count(width):
        ensure(max(width, text_size(value)), "the center filter")


def _check_indent(s, width=4, first=False, blank=False):
    step = width if _is_count(width) else len(width) if isinstance(width, str) else 0
    lines = s.count("\n") + 1 if isinstance(s, str) else 1
    ensure(text_size(s) + lines * step, "the indent filter")


def _check_wordwrap(s, width=79, break_long_words=True, wrapstring=None, break_on_hyphens=True):
    if isinstance(s, str) and _is_count(width):
        # lines: at most one per half width (two short neighbours would have been joined), plus one per paragraph
        lines = 2 * len(s) // max(width, 1) + s.count("\n") + 2
        ensure(len(s) + lines * len(wrapstring if isinstance(wrapstring, str) else "\n"), "the wordwrap filter")


def _check_format(value, *args, **kwargs):
    if isinstance(value, str):
        ensure(_format_size(value, kwargs or args), "the format filter")


def _check_replace(s, old, new, count=None):
    size = text_size(s)
    old_len, new_len = len(str(old)), len(str(new))
    if new_len > old_len:
        occurrences = s.count(old) if isinstance(s, str) and isinstance(old, str) and old else size + 1
        if _is_count(count) and count >= 0:
            occurrences = min(occurrences, count)
        ensure(size + occurrences * (new_len - old_len), "the replace filter")


def _check_tojson(value, *args, **kwargs):
    # lists and dicts are caller data or were counted when built: only the indent can blow the text up
    for option in (*args, *kwargs.values()):
        if (_is_count(option) and option > MAX_INDENT) or (isinstance(option, str) and len(option) > MAX_INDENT):
            raise Limit(f"the tojson filter with an indent over {MAX_INDENT} was stopped")


def _check_printed(what: str):
    def check(value, *args, **kwargs):
        if not isinstance(value, (*_TEXT, *_CONTAINERS)):
            ensure(text_size(value), what)

    return check


def _check_urlize(value, trim_url_limit=None, nofollow=False, target=None, rel=None, extra_schemes=None):
    # target= and rel= are copied into every link, and a link takes at least 5 characters ("a.com")
    extra = sum(len(x) for x in (target, rel) if isinstance(x, str))
    ensure((text_size(value) // 5 + 1) * extra, "the urlize filter")


def _repeated(results, per_item: int, what: str):
    """map() with a filter's own arguments (`map('default', x)`): each result may hold them again."""
    for count, item in enumerate(results, 1):
        if count * per_item > MAX_OUTPUT_CHARS:
            raise too_big(what)
        yield item


# filters that read a sequence (at most MAX_ITEMS items), with a check of their other arguments
_READ_SEQUENCE = {"batch": _check_batch, "slice": _check_slice, "list": None, "map": None, "select": None,
                  "reject": None, "selectattr": None, "rejectattr": None, "unique": None, "sort": None,
                  "groupby": None, "reverse": None, "min": None, "max": None, "dictsort": None, "items": None,
                  "sum": None}
# filters that read a whole sequence and build one value of it, checked on the items read
_BUILD_FROM_SEQUENCE = {"join": _check_join}
# filters that make text: a check of their arguments (None: they grow it by a bounded factor), and of their result
_MAKE_TEXT = {"center": _check_center, "indent": _check_indent, "wordwrap": _check_wordwrap, "format": _check_format,
              "replace": _check_replace, "tojson": _check_tojson, "pprint": _check_printed("the pprint filter"),
              "string": _check_printed("the string filter"), "urlize": _check_urlize, "escape": None, "e": None,
              "forceescape": None, "upper": None, "lower": None, "title": None, "capitalize": None, "urlencode": None,
              "xmlattr": None, "truncate": None}


def _bounded_filter(name: str, fn):
    """`fn` with its limit: a sequence it reads is counted (and its other arguments checked), or the
    text it makes is checked before (when its arguments say how big) and after. One small function
    per case, since filters run in the hot path; `first` is the environment or context some take."""
    what = f"the {name} filter"
    takes_first = getattr(fn, "jinja_pass_arg", None) is not None
    if name in _READ_SEQUENCE:
        check = _READ_SEQUENCE[name]
        if takes_first:
            def bounded(first, value, *args, **kwargs):
                if check is not None:
                    check(*args, **kwargs)
                return fn(first, _items(value, what), *args, **kwargs)
        else:
            def bounded(value, *args, **kwargs):
                if check is not None:
                    check(*args, **kwargs)
                return fn(_items(value, what), *args, **kwargs)
    elif name in _BUILD_FROM_SEQUENCE:
        check = _BUILD_FROM_SEQUENCE[name]

        def bounded(*args, **kwargs):
            skip = 1 if takes_first else 0
            items = list(_items(args[skip], what))
            check(items, *args[skip + 1:], **kwargs)
            return fn(*args[:skip], items, *args[skip + 1:], **kwargs)
    else:
        check = _MAKE_TEXT[name]
        if takes_first:
            def bounded(first, value, *args, **kwargs):
                if check is not None:
                    check(value, *args, **kwargs)
                result = fn(first, value, *args, **kwargs)
                if isinstance(result, _TEXT) and len(result) > MAX_OUTPUT_CHARS:
                    raise too_big(what)
                return result
        else:
            def bounded(value, *args, **kwargs):
                if check is not None:
                    check(value, *args, **kwargs)
                result = fn(value, *args, **kwargs)
                if isinstance(result, _TEXT) and len(result) > MAX_OUTPUT_CHARS:
                    raise too_big(what)
                return result

    return functools.wraps(fn)(bounded)


def _bounded_map(fn):
    read = _bounded_filter("map", fn)

    @functools.wraps(fn)
    def bounded(context, value, *args, **kwargs):
        results = read(context, value, *args, **kwargs)
        if len(args) <= 1 and (not kwargs or (len(kwargs) == 1 and "attribute" in kwargs)):
            return results  # map('upper'), map(attribute='name'): nothing of its own comes back with each item
        # a filter's own arguments (map('default', x)), or attribute=...'s default, can come back with every item
        per_item = sum(map(text_size, args[1:])) + sum(text_size(v) for k, v in kwargs.items() if k != "attribute")
        return results if per_item <= 16 else _repeated(results, per_item, "the map filter")

    return bounded


def bound_filters(filters: dict) -> dict:
    """The filters with their limits; the others (length, first, trim, default...) make nothing bigger than they get."""
    bounded = {}
    for name, fn in filters.items():
        if name == "map":
            bounded[name] = _bounded_map(fn)
        elif name in _READ_SEQUENCE or name in _BUILD_FROM_SEQUENCE or name in _MAKE_TEXT:
            bounded[name] = _bounded_filter(name, fn)
        else:
            bounded[name] = fn
    return bounded


def lipsum(n=5, html=True, min=20, max=100):  # noqa: A002  (Jinja's own argument names)
    ensure(int(n) * int(max) * 12, "lipsum()")
    return generate_lorem_ipsum(n=n, html=html, min=min, max=max)


# --- the environment -------------------------------------------------------------------------------------

_HELPERS = ("checked_add", "checked_mul", "checked_mod", "checked_pow", "checked_concat", "checked_value",
            "checked_print", "Buffer")


def _small_constant(node) -> bool:
    """A literal that `+` may add without a check: it grows a value by at most 256 characters, so
    even a loop adding it for the whole time limit stays small (each step copies the value)."""
    return isinstance(node, nodes.Const) and (isinstance(node.value, (int, float)) or
                                              (isinstance(node.value, str) and len(node.value) <= 256))


class _CodeGenerator(CodeGenerator):
    """Compiles `+ * % **`, `~` and list/tuple/dict literals to the checked helpers, `{{ x }}` to a
    size check when x is not text, and collects macro and block output in a `Buffer`."""

    def visit_Template(self, node, frame=None) -> None:
        super().visit_Template(node, frame)
        # module-level names: a global lookup per use instead of an attribute lookup on `environment`
        for helper in _HELPERS:
            self.writeline(f"{helper} = environment.{helper}")

    def buffer(self, frame) -> None:
        # the buffer, and a local holding its length at the next check (every write is in this function)
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = Buffer()")
        self.writeline(f"{frame.buffer}_next = {_CHECK_EVERY}")

    def _check_buffer(self, frame) -> None:
        self.writeline(f"if len({frame.buffer}) >= {frame.buffer}_next: {frame.buffer}_next = {frame.buffer}.check()")

    def end_write(self, frame) -> None:
        super().end_write(frame)
        if frame.buffer is not None:
            self._check_buffer(frame)

    def visit_Output(self, node: nodes.Output, frame) -> None:
        super().visit_Output(node, frame)
        if frame.buffer is not None:
            self._check_buffer(frame)

    def _output_child_pre(self, node, frame, finalize) -> None:
        if frame.eval_ctx.volatile or frame.eval_ctx.autoescape:
            return super()._output_child_pre(node, frame, finalize)
        self.write("(t_out if type(t_out := ")  # text prints as is; anything else is size-checked first

    def _output_child_post(self, node, frame, finalize) -> None:
        if frame.eval_ctx.volatile or frame.eval_ctx.autoescape:
            return super()._output_child_post(node, frame, finalize)
        if frame.buffer is None:  # the render counts every piece it yields
            self.write(") is str else str(checked_print(t_out)))")
        else:  # a buffer counts small text in bulk, anything else on the spot
            self.write(f") is str and len(t_out) < {_SMALL_PIECE} else {frame.buffer}.piece(t_out))")

    def _checked_call(self, helper: str, *operands, frame) -> None:
        self.write(f"{helper}(")
        for i, operand in enumerate(operands):
            self.write(", " if i else "")
            self.visit(operand, frame)
        self.write(")")

    def visit_Add(self, node, frame) -> None:
        if _small_constant(node.left) or _small_constant(node.right):
            self.write("(")
            self.visit(node.left, frame)
            self.write(" + ")
            self.visit(node.right, frame)
            self.write(")")
        else:
            self._checked_call("checked_add", node.left, node.right, frame=frame)

    def visit_Mul(self, node, frame) -> None:
        self._checked_call("checked_mul", node.left, node.right, frame=frame)

    def visit_Mod(self, node, frame) -> None:
        self._checked_call("checked_mod", node.left, node.right, frame=frame)

    def visit_Pow(self, node, frame) -> None:
        self._checked_call("checked_pow", node.left, node.right, frame=frame)

    def visit_Concat(self, node: nodes.Concat, frame) -> None:
        self.write("checked_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def _literal(self, node, frame, write) -> None:
        try:  # made of constants only: as big as the template text, nothing to count
            node.as_const(frame.eval_ctx)
        except nodes.Impossible:
            self.write("checked_value(")
            write(node, frame)
            self.write(")")
        else:
            write(node, frame)

    def visit_List(self, node, frame) -> None:
        self._literal(node, frame, super().visit_List)

    def visit_Dict(self, node, frame) -> None:
        self._literal(node, frame, super().visit_Dict)

    def visit_Tuple(self, node, frame) -> None:
        if node.ctx != "load":  # an assignment target: {% for k, v in ... %}
            return super().visit_Tuple(node, frame)
        self._literal(node, frame, super().visit_Tuple)


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox with the limits above; `extra_filters` are bounded like the built-in ones."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"+", "*", "%", "**"})  # never folded at compile time: 'a' * 10**9 stays a runtime check
    checked_add = staticmethod(checked_add)
    checked_mul = staticmethod(checked_mul)
    checked_mod = staticmethod(checked_mod)
    checked_pow = staticmethod(checked_pow)
    checked_concat = staticmethod(checked_concat)
    checked_value = staticmethod(checked_value)
    checked_print = staticmethod(checked_print)
    Buffer = Buffer

    @staticmethod
    def concat(buffer: Buffer) -> str:  # Jinja joins a macro's or block's output with this
        return buffer.joined()

    def _compile(self, source: str, filename: str):
        # Python's compile() holds the interpreter lock and cannot be stopped: every user's request
        # waits for it, and the watchdog only once it is done. Refuse what would take long.
        lines = source.count("\n")
        if lines > MAX_CODE_LINES:
            raise Limit(f"the template is too long: it compiles to {lines:,} lines of Python, over {MAX_CODE_LINES:,}")
        return super()._compile(source, filename)

    def __init__(self, *, extra_filters: dict | None = None, **options):
        super().__init__(finalize=checked_print, **options)
        self.filters = bound_filters({**self.filters, **(extra_filters or {})})
        self.globals["lipsum"] = lipsum

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805  (names as in Jinja's own call)
        if not __self.is_safe_callable(__obj):
            raise SecurityError(f"{__obj!r} is not safely callable")
        kind = type(__obj)
        if kind is _BUILTIN_METHOD or kind is MethodType:
            owner = __obj.__self__
            if isinstance(owner, _TEXT):
                args = _check_text_method(__obj.__name__, owner, args, kwargs)
            elif __obj.__name__ in _KEEPING_METHODS:
                _check_keeper(__obj, args, kwargs)
            result = __context.call(__obj, *args, **kwargs)
            if isinstance(result, _TEXT) and len(result) > MAX_OUTPUT_CHARS:  # encode(), hex(), upper()...
                raise too_big(f"{type(owner).__name__}.{__obj.__name__}()")
            return result
        if kind is Macro:
            if __obj.catch_varargs or __obj.catch_kwargs:
                _check_keeper(__obj, args, kwargs)
        elif isinstance(__obj, type):
            _check_keeper(__obj, args, kwargs)
        return __context.call(__obj, *args, **kwargs)

    def wrap_str_format(self, value):
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        text = value.__self__

        def checked(*args, **kwargs):
            if _BIG_WIDTH.search(text.replace("*", "")) or any(
                    _is_count(a) and a > 999_999 for a in (*args, *kwargs.values())):
                raise too_big("a str.format with a huge width")
            values = [*args, *kwargs.values()]
            if values and isinstance(values[0], dict) and value.__name__ == "format_map":
                values = list(values[0].values())
            ensure(len(text) + text.count("{") * max(map(text_size, values), default=0), "a str.format result")
            return wrapper(*args, **kwargs)

        return functools.update_wrapper(checked, wrapper)
