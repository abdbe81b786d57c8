"""Render a wrapper's Jinja template the way Hugging Face transformers renders chat templates.

Same environment (sandboxed, trim_blocks, lstrip_blocks, loopcontrols), same helpers
(`raise_exception`, `strftime_now`, a non-escaping `tojson`), so a model's own
`tokenizer.chat_template` renders here byte for byte. Templates come from users, so rendering is
sandboxed and bounded in time and size.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import time

from jinja2 import TemplateError as _JinjaTemplateError
from jinja2 import TemplateSyntaxError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_OUTPUT_CHARS = 2_000_000
MAX_SECONDS = 2.0


class TemplateError(Exception):
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


class _Environment(ImmutableSandboxedEnvironment):
    def call(self, context, obj, *args, **kwargs):
        # one cheap clock check per call keeps runaway templates bounded
        deadline = context.get("_deadline")
        if deadline is not None and time.monotonic() > deadline[0]:
            raise _JinjaTemplateError(f"rendering took longer than {MAX_SECONDS:g} s and was stopped")
        return super().call(context, obj, *args, **kwargs)


@functools.lru_cache(maxsize=1)
def _environment() -> _Environment:
    env = _Environment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = _tojson
    env.filters["fromjson"] = _fromjson
    env.tests["json"] = _is_json
    env.globals["raise_exception"] = _raise_exception
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
    """Render `source` with `variables`; raise TemplateError with a line number on failure."""
    template = _compile(source)
    today = _dt.datetime.fromisoformat(now) if now else _dt.datetime.now()
    deadline = [time.monotonic() + MAX_SECONDS]
    context = dict(variables)
    context["strftime_now"] = today.strftime
    context["_deadline"] = deadline
    out: list[str] = []
    size = 0
    try:
        for piece in template.generate(**context):
            size += len(piece)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateError(f"the rendered prompt is over {MAX_OUTPUT_CHARS:,} characters; rendering stopped")
            if time.monotonic() > deadline[0]:
                raise TemplateError(f"rendering took longer than {MAX_SECONDS:g} s and was stopped")
            out.append(piece)
    except TemplateError:
        raise
    except _JinjaTemplateError as e:
        raise TemplateError(e.message or type(e).__name__, _error_line(e)) from None
    except RecursionError:
        raise TemplateError("the template recursed too deeply") from None
    except Exception as e:  # a template may raise anything (TypeError, KeyError...): report, never crash
        raise TemplateError(f"{type(e).__name__}: {e}", _error_line(e)) from None
    return "".join(out)
