"""Sizes: the limits' numbers and messages, how big a value prints, and reading a sequence within the limits."""

from __future__ import annotations

from jinja2 import TemplateError, Undefined
from jinja2.utils import Namespace

MAX_SECONDS = 2.0
MAX_OUTPUT_CHARS = 2_000_000
MAX_ITEMS = 100_000  # items a filter reads or builds: as many as the sandbox's range() makes (about 10 MB)
MAX_INT_BITS = 16_384  # about 4,900 digits: Python prints at most 4,300, and bigger ones make % and // slow
MAX_INDENT = 64  # tojson's indent
MAX_CODE_LINES = 2_500  # Python a template compiles to (the biggest built-in: 520 lines); compiling holds the GIL

TEXT = (str, bytes, bytearray)
CONTAINERS = (dict, list, tuple)  # what JSON and repr print in full; caller data or checked when built
_PRINTS_AS_IS = (*TEXT, *CONTAINERS, Undefined)
VIEWS = (type({}.keys()), type({}.values()), type({}.items()), set, frozenset)


class Limit(TemplateError):
    """A render limit was hit; the message says which, `line` where (when the traceback cannot)."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


def too_slow(line: int | None = None) -> Limit:
    return Limit(f"rendering took longer than {MAX_SECONDS:g} s and was stopped (a runaway loop or recursion?)", line)


def too_big(what: str = "a value") -> Limit:
    return Limit(f"{what} would be over {MAX_OUTPUT_CHARS:,} characters; rendering stopped")


def too_many(what: str) -> Limit:
    return Limit(f"{what} would read or make over {MAX_ITEMS:,} items; rendering stopped")


def too_long_number(what: str) -> Limit:
    return Limit(f"{what} would be over {MAX_INT_BITS:,} bits; rendering stopped")


def text_size(value, budget: int = MAX_OUTPUT_CHARS) -> int:
    """About how many characters `value` prints as (JSON or repr), every reference to a shared value
    counted again; stops counting once over `budget`."""
    if type(value) is str:
        return len(value)
    return _size(value, budget)


def _size(value, budget: int) -> int:
    # recursive (a template's values nest a few levels deep), with the common children inline
    kind = type(value)
    if kind is str or isinstance(value, TEXT):
        return len(value) + 4
    if kind is int:
        return 8 + value.bit_length() // 3
    if kind is dict or isinstance(value, dict):
        total = 2 + 2 * len(value)
        for key in value:
            total += len(key) + 4 if type(key) is str else _size(key, budget - total)
        children = value.values()
    elif kind is list or kind is tuple or isinstance(value, (list, tuple, *VIEWS)):
        total = 2 + 2 * len(value)
        children = value
    elif isinstance(value, Namespace):  # its repr shows every attribute
        return 12 + _size(value._Namespace__attrs, budget)  # noqa: SLF001  (Namespace keeps them there and lets this name through)
    else:  # float, bool, None, and what prints short (a macro, a loop, a range)
        return 8
    for child in children:
        kind = type(child)
        if kind is str:
            total += len(child) + 4
        elif kind is float or kind is bool or child is None:
            total += 8
        else:
            total += _size(child, budget - total)
        if total > budget:
            return total
    return total


def ensure(size: int, what: str = "a value") -> None:
    if size > MAX_OUTPUT_CHARS:
        raise too_big(what)


def is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def ensure_count(n, what: str) -> None:
    if is_count(n) and n > MAX_ITEMS:
        raise too_many(what)


def checked_value(value):
    """A list, tuple or dict the template writes (`[a, b]`, `{'k': v}`), counted when built."""
    ensure(text_size(value), "a list or dict")
    return value


def checked_print(value):
    """`{{ value }}` when value is not text (also the environment's finalize): lists and dicts are
    caller data or were counted when built, an undefined value prints as nothing (or says it is
    undefined); anything else (a namespace, a dict view) is counted now."""
    if not isinstance(value, _PRINTS_AS_IS):
        ensure(text_size(value), "a printed value")
    return value


def counted(iterable, what: str):
    """Items of an iterable of unknown length: at most MAX_ITEMS of them, and MAX_OUTPUT_CHARS of text."""
    chars = 0
    for count, item in enumerate(iterable, 1):
        if count > MAX_ITEMS:
            raise too_many(what)
        if isinstance(item, TEXT):
            chars += len(item)
            if chars > MAX_OUTPUT_CHARS:
                raise too_big(what)
        yield item


def items_read(value, what: str):
    """What a filter or a join reads: sized values of at most MAX_ITEMS items as they are, anything else counted."""
    try:
        n = len(value)
    except TypeError:
        return counted(value, what)
    if n > MAX_ITEMS:
        raise too_many(what)
    return value
