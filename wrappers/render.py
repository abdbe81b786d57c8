"""Render a wrapper's Jinja template the way Hugging Face transformers renders chat templates.

Same environment (sandboxed, trim_blocks, lstrip_blocks, loopcontrols), same helpers
(`raise_exception`, `strftime_now`, a non-escaping `tojson`), so a model's own
`tokenizer.chat_template` renders here byte for byte. Templates come from users, so rendering is
bounded in time and size (`wrappers.limits`), and a name the template was never given is an error
when printed, not an empty string.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json

from jinja2 import FunctionLoader, TemplateNotFound, TemplateSyntaxError, Undefined
from jinja2 import TemplateError as _JinjaTemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import SecurityError
from jinja2.utils import missing

from core.errors import UserError

from .limits import MAX_OUTPUT_CHARS, BoundedEnvironment, render_pieces, run_bounded  # noqa: F401  (MAX_OUTPUT_CHARS: the limit callers name)


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


class _Undefined(Undefined):
    """Jinja's lenient undefined (a missing key or attribute prints as nothing, as transformers
    renders it), except a bare name the template was never given: `{{ config }}` says so."""

    __slots__ = ()

    def __str__(self) -> str:
        if self._undefined_obj is missing and self._undefined_hint is None and self._undefined_name is not None:
            self._fail_with_undefined_error()
        return ""


class _ChatTemplateEnvironment(BoundedEnvironment):
    def unsafe_undefined(self, obj, attribute):
        # the sandbox would print an empty string here; say plainly that the attribute is blocked
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")


# what a template sees besides Jinja's own (strftime_now comes with each render, for the conversation's date)
HELPER_FILTERS = {"tojson": _tojson, "fromjson": _fromjson}
HELPER_TESTS = {"json": _is_json}
HELPER_GLOBALS = {"raise_exception": _raise_exception}
OPTIONS = {"trim_blocks": True, "lstrip_blocks": True, "extensions": [loopcontrols]}  # transformers' own


@functools.lru_cache(maxsize=1)
def _environment() -> _ChatTemplateEnvironment:
    env = _ChatTemplateEnvironment(**OPTIONS, undefined=_Undefined, extra_filters=HELPER_FILTERS,
                                   loader=FunctionLoader(lambda name: None))  # no include/import/extends: nothing to load
    env.tests.update(HELPER_TESTS)
    env.globals.update(HELPER_GLOBALS)
    return env


@functools.lru_cache(maxsize=256)
def _compile(source: str):
    # cached per template text: the page renders on every keystroke, and lint renders the same text again
    try:
        return _environment().from_string(source)
    except TemplateSyntaxError as e:
        raise TemplateError(f"template syntax error: {e.message}", e.lineno) from None


def _render(source: str, variables: dict, strftime_now) -> str:
    return render_pieces(_compile(source), variables, strftime_now=strftime_now)


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

    Bounded: compiling and rendering stop after MAX_SECONDS, and no value or output grows past
    MAX_OUTPUT_CHARS characters (see `wrappers.limits`), with a TemplateError saying which.
    """
    today = _dt.datetime.fromisoformat(now) if now else _dt.datetime.now()
    try:
        return run_bounded(_render, source, variables, today.strftime)
    except TemplateError:
        raise
    except TemplateNotFound as e:
        raise TemplateError(f"a wrapper template cannot include, import or extend another template ({e.message})",
                            _error_line(e)) from None
    except SecurityError as e:
        raise TemplateError(f"blocked by the template sandbox: {e.message}", _error_line(e)) from None
    except _JinjaTemplateError as e:
        raise TemplateError(e.message or type(e).__name__, getattr(e, "line", None) or _error_line(e)) from None
    except RecursionError:
        raise TemplateError("the template recursed too deeply and was stopped") from None
    except MemoryError:
        raise TemplateError("the template ran out of memory and was stopped") from None
    except OverflowError as e:
        raise TemplateError(f"a number or range in the template is too big: {e}", _error_line(e)) from None
    except Exception as e:  # a template may raise anything (TypeError, KeyError...): report, never crash
        raise TemplateError(f"{type(e).__name__}: {e}", _error_line(e)) from None
