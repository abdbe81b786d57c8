"""Render a wrapper's Jinja template the way Hugging Face transformers renders chat templates.

Same environment (sandboxed, trim_blocks, lstrip_blocks, loopcontrols), same helpers
(`raise_exception`, `strftime_now`, a non-escaping `tojson`), so a model's own
`tokenizer.chat_template` renders here byte for byte. Templates come from users, so rendering is
sandboxed and bounded in time and size: every loop, call, operator, join and size-making filter
checks a clock and the size it would produce (see `_Environment`).
"""

from __future__ import annotations

from core.errors import UserError
import contextvars
import datetime as _dt
import functools
import json
import re
import time

from jinja2 import TemplateError as _JinjaTemplateError
from jinja2 import FunctionLoader, TemplateNotFound, TemplateSyntaxError, nodes
from jinja2.compiler import CodeGenerator
from jinja2.defaults import DEFAULT_NAMESPACE
from jinja2.ext import loopcontrols
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

_JINJA_LIPSUM = DEFAULT_NAMESPACE["lipsum"]

MAX_OUTPUT_CHARS = 2_000_000
MAX_SECONDS = 2.0


class TemplateError(UserError):
    """A template failed to compile or render; `line` is 1-based where Jinja knows it."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        where = f" (template line {self.line})" if self.line else ""
        return f"{self.message}{where}"


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers overrides Jinja's tojson: no HTML escaping, ensure_ascii off by default
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _fromjson(text):
    """Parse JSON text; undefined-like `none` when it is not JSON (MemGPT's try/except)."""
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text, strict=False)
    except ValueError:
        return None


def _is_json(text) -> bool:
    if not isinstance(text, str):
        return False
    try:
        json.loads(text, strict=False)
    except ValueError:
        return False
    return True


def _raise_exception(message):
    raise _JinjaTemplateError(message)


_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("template_deadline", default=None)
_BUILTIN_METHOD = type("".join)
_CHECK_EVERY = 256  # loop iterations between two clock reads
_BIG_NUMBER = re.compile(r"\d{7,}|\*")  # a width or precision of a million or more, or one passed as '*'


class _Limit(_JinjaTemplateError):
    """A render limit was hit; the message says which."""


def _too_slow() -> _Limit:
    return _Limit(f"rendering took longer than {MAX_SECONDS:g} s and was stopped (a runaway loop or recursion?)")


def _too_big(what: str = "a value") -> _Limit:
    return _Limit(f"{what} would be over {MAX_OUTPUT_CHARS:,} characters; rendering stopped")


def _check_clock() -> None:
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() > deadline:
        raise _too_slow()


def _size(value, budget: int = MAX_OUTPUT_CHARS) -> int:
    """About how many characters `value` becomes as text; stops counting once over `budget`."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, (int, float, bool)) or value is None:
        return 8
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 4
        elif isinstance(item, dict):
            total += 2 + 2 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 + 2 * len(item)
            stack.extend(item)
        else:
            total += 8
        if total > budget:
            return total
    return total


def _ensure(size: int, what: str = "a value") -> None:
    if size > MAX_OUTPUT_CHARS:
        raise _too_big(what)


def _guard_iter(iterable):
    """Every template loop iterates through this: the clock is read every few hundred items."""
    deadline = _deadline.get()
    if deadline is None:
        yield from iterable
        return
    count = 0
    for item in iterable:
        count += 1
        if count >= _CHECK_EVERY:
            count = 0
            if time.monotonic() > deadline:
                raise _too_slow()
        yield item


def _checked_join(parts) -> str:
    total = 0
    for part in parts:
        total += len(part) if type(part) is str else _size(part)
    if total > MAX_OUTPUT_CHARS:
        raise _too_big("the joined text")
    return "".join(map(str, parts))


def _mul(left, right):
    for seq, n in ((left, right), (right, left)):
        if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and not isinstance(n, bool):
            _ensure(_size(seq) * max(n, 0) if seq else 0, "a repeated string or list")
    return left * right


def _pow(left, right):
    if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
        if abs(left).bit_length() * right > 4 * MAX_OUTPUT_CHARS:  # ~2.4M decimal digits
            raise _too_big("a power")
    return left ** right


def _add(left, right):
    if type(left) is str and type(right) is str:  # the common case: building text
        if len(left) + len(right) > MAX_OUTPUT_CHARS:
            raise _too_big("a concatenation")
    elif isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        _ensure(_size(left) + _size(right), "a concatenation")
    return left + right


def _mod(left, right):
    if isinstance(left, str):
        if _BIG_NUMBER.search(left):
            raise _too_big("a %-format with a huge width")
        args = right if isinstance(right, (tuple, dict)) else (right,)
        values = args.values() if isinstance(args, dict) else args
        _ensure(len(left) + left.count("%") * max((_size(v) for v in values), default=0), "a %-formatted string")
    return left % right


_BINOPS = {"*": _mul, "**": _pow, "+": _add, "%": _mod}  # the operators that can make huge values


def _check_str_method(obj, args, kwargs) -> None:
    """Pre-check str methods that can make a huge string from small inputs."""
    name = getattr(obj, "__name__", "")
    text = obj.__self__
    numbers = [a for a in (*args, *kwargs.values()) if isinstance(a, int) and not isinstance(a, bool)]
    if name in ("ljust", "rjust", "center", "zfill", "expandtabs"):
        bound = max(numbers, default=0) * (text.count("\t") + 1 if name == "expandtabs" else 1)
        _ensure(max(bound, len(text)), f"str.{name}()")
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        grow = len(args[1]) - len(args[0])
        if grow > 0:
            count = text.count(args[0]) if args[0] else len(text) + 1
            if len(args) > 2 and isinstance(args[2], int) and args[2] >= 0:
                count = min(count, args[2])
            _ensure(len(text) + count * grow, "str.replace()")
    elif name == "join" and args and isinstance(args[0], (list, tuple)):
        _ensure(_size(list(args[0])) + len(text) * len(args[0]), "str.join()")


def _checked_filter(name: str, fn):
    """A built-in filter with a size check before it runs (and on what it returns)."""

    @functools.wraps(fn)
    def filter_(*args, **kwargs):
        value = args[0] if args else None
        rest = [a for a in (*args[1:], *kwargs.values()) if isinstance(a, int) and not isinstance(a, bool)]
        if name in ("center", "indent", "wordwrap"):
            lines = value.count("\n") + 1 if isinstance(value, str) else 1
            _ensure(_size(value) + lines * max(rest, default=0), f"the {name} filter")
        elif name in ("join", "string", "tojson", "pprint", "format", "replace", "list"):
            if name in ("tojson", "pprint"):
                if any(n > 64 for n in rest):
                    raise _too_big(f"the {name} filter with an indent over 64")
            size = _size(value)
            if name == "format":
                size = len(value) + value.count("%") * max((_size(a) for a in args[1:]), default=0) if isinstance(value, str) else size
                if isinstance(value, str) and _BIG_NUMBER.search(value):
                    raise _too_big("a %-format with a huge width")
            elif name == "replace" and len(args) >= 3 and isinstance(value, str):
                size = len(value) + (len(value) + 1) * max(len(str(args[2])) - len(str(args[1])), 0)
            _ensure(size, f"the {name} filter")
        return fn(*args, **kwargs)

    return filter_


_CHECKED_FILTERS = ("center", "indent", "wordwrap", "join", "string", "pprint", "format", "replace", "list")


class _CodeGenerator(CodeGenerator):
    """Compiles every `for` loop to iterate through `_guard_iter`, and `~` to a size-checked join."""

    def visit_For(self, node: nodes.For, frame) -> None:
        if not getattr(node, "_guarded", False):
            node.iter = nodes.Call(nodes.EnvironmentAttribute("guard_iter"), [node.iter], [], None, None,
                                   lineno=node.iter.lineno)
            node._guarded = True
        super().visit_For(node, frame)

    def _checked_binop(self, node, frame, helper: str) -> None:
        # what the sandbox would route through call_binop, called straight (one Python call less)
        if self.environment.sandboxed:
            try:  # constants fold as usual; the operators below refuse to fold (intercepted_binops)
                self.write(repr(node.as_const(frame.eval_ctx)))
                return
            except nodes.Impossible:
                pass
        self.write(f"environment.{helper}(")
        self.visit(node.left, frame)
        self.write(", ")
        self.visit(node.right, frame)
        self.write(")")

    def visit_Add(self, node, frame) -> None:
        self._checked_binop(node, frame, "checked_add")

    def visit_Mul(self, node, frame) -> None:
        self._checked_binop(node, frame, "checked_mul")

    def visit_Mod(self, node, frame) -> None:
        self._checked_binop(node, frame, "checked_mod")

    def visit_Pow(self, node, frame) -> None:
        self._checked_binop(node, frame, "checked_pow")

    def visit_Concat(self, node: nodes.Concat, frame) -> None:
        self.write("environment.checked_join((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox, bounded: loops, calls, operators, joins and filters check the clock and sizes."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset(_BINOPS)
    guard_iter = staticmethod(_guard_iter)
    checked_join = staticmethod(_checked_join)
    checked_add = staticmethod(_add)
    checked_mul = staticmethod(_mul)
    checked_mod = staticmethod(_mod)
    checked_pow = staticmethod(_pow)

    def concat(self, parts) -> str:  # block captures: {% set x %}, macros, call blocks, filter blocks
        parts = list(parts)
        _ensure(sum(map(len, parts)), "a captured block")
        return "".join(parts)

    def call_binop(self, context, operator, left, right):
        return _BINOPS[operator](left, right)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805  (names as in Jinja's own call)
        deadline = _deadline.get()
        if deadline is not None and time.monotonic() > deadline:
            raise _too_slow()
        kind = type(__obj)
        if kind is _BUILTIN_METHOD and type(__obj.__self__) is str:
            _check_str_method(__obj, args, kwargs)
        elif kind is LoopContext and args:  # a recursive loop's loop(children): guard the inner loop too
            args = (_guard_iter(args[0]), *args[1:])
        if not __self.is_safe_callable(__obj):
            raise SecurityError(f"{__obj!r} is not safely callable")
        return __context.call(__obj, *args, **kwargs)

    def unsafe_undefined(self, obj, attribute):
        # the sandbox would print an empty string here; say plainly that the attribute is blocked
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")

    def wrap_str_format(self, value):
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        text = value.__self__

        def checked(*args, **kwargs):
            if _BIG_NUMBER.search(text.replace("*", "")) or any(
                    isinstance(a, int) and not isinstance(a, bool) and a > 999_999 for a in (*args, *kwargs.values())):
                raise _too_big("a str.format with a huge width")
            values = [*args, *kwargs.values()]
            if values and isinstance(values[0], dict) and value.__name__ == "format_map":
                values = list(values[0].values())
            _ensure(len(text) + text.count("{") * max((_size(v) for v in values), default=0), "a str.format result")
            return wrapper(*args, **kwargs)

        return functools.update_wrapper(checked, wrapper)


def _finalize(value):
    # what {{ x }} prints: a list or dict holding many references to one long string is checked first
    if not isinstance(value, str):
        _ensure(_size(value), "a printed value")
    return value


def _lipsum(n=5, html=True, min=20, max=100):  # noqa: A002  (Jinja's own argument names)
    _ensure(int(n) * int(max) * 12, "lipsum()")
    return _JINJA_LIPSUM(n=n, html=html, min=min, max=max)


@functools.lru_cache(maxsize=1)
def _environment() -> _Environment:
    env = _Environment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols], finalize=_finalize,
                       loader=FunctionLoader(lambda name: None))  # no include/import/extends: nothing to load
    for name in _CHECKED_FILTERS:
        env.filters[name] = _checked_filter(name, env.filters[name])
    env.filters["tojson"] = _checked_filter("tojson", _tojson)
    env.filters["fromjson"] = _fromjson
    env.tests["json"] = _is_json
    env.globals["raise_exception"] = _raise_exception
    env.globals["lipsum"] = _lipsum
    return env


@functools.lru_cache(maxsize=256)
def _compile(source: str):
    try:
        return _environment().from_string(source)
    except TemplateSyntaxError as e:
        raise TemplateError(f"template syntax error: {e.message}", e.lineno) from None


def _error_line(exc: BaseException) -> int | None:
    """The template line where `exc` was raised (Jinja rewrites tracebacks to template lines)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render(source: str, variables: dict, now: str | None = None) -> str:
    """Render `source` with `variables`; raise TemplateError with a line number on failure.

    Bounded: loops, calls and operators check a 2 s clock and the sizes they would make, so a
    runaway template stops with a TemplateError instead of stalling or filling memory.
    """
    template = _compile(source)
    today = _dt.datetime.fromisoformat(now) if now else _dt.datetime.now()
    deadline = time.monotonic() + MAX_SECONDS
    context = dict(variables)
    context["strftime_now"] = today.strftime
    token = _deadline.set(deadline)
    out: list[str] = []
    size = 0
    try:
        for piece in template.generate(**context):
            size += len(piece)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateError(f"the rendered prompt is over {MAX_OUTPUT_CHARS:,} characters; rendering stopped")
            if time.monotonic() > deadline:
                raise TemplateError(_too_slow().message)
            out.append(piece)
    except TemplateError:
        raise
    except TemplateNotFound as e:
        raise TemplateError(f"a wrapper template cannot include, import or extend another template ({e.message})",
                            _error_line(e)) from None
    except SecurityError as e:
        raise TemplateError(f"blocked by the template sandbox: {e.message}", _error_line(e)) from None
    except _JinjaTemplateError as e:
        raise TemplateError(e.message or type(e).__name__, _error_line(e)) from None
    except RecursionError:
        raise TemplateError("the template recursed too deeply and was stopped") from None
    except MemoryError:
        raise TemplateError("the template ran out of memory and was stopped") from None
    except OverflowError as e:
        raise TemplateError(f"a number or range in the template is too big: {e}", _error_line(e)) from None
    except Exception as e:  # a template may raise anything (TypeError, KeyError...): report, never crash
        raise TemplateError(f"{type(e).__name__}: {e}", _error_line(e)) from None
    finally:
        _deadline.reset(token)
    return "".join(out)
