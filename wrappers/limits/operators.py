"""Text and numbers: the checked operators (`+ * % **`, `~`) and calls (str/bytes methods, and calls
that keep their arguments), each sized before the value is built."""

from __future__ import annotations

import re

from jinja2.runtime import Macro
from jinja2.utils import generate_lorem_ipsum

from .sizes import (MAX_INT_BITS, MAX_OUTPUT_CHARS, TEXT, ensure, is_count, items_read, text_size, too_big,
                    too_long_number)

BUILTIN_METHOD = type("".join)
BIG_WIDTH = re.compile(r"\d{7,}|\*")  # a %-format width or precision of a million or more, or one passed as '*'
BIG_WIDTH_BYTES = re.compile(rb"\d{7,}|\*")


def checked_add(left, right):
    if type(left) is str and type(right) is str:  # the common case: building text
        if len(left) + len(right) > MAX_OUTPUT_CHARS:
            raise too_big("a concatenation")
    elif isinstance(left, (*TEXT, list, tuple)) and isinstance(right, (*TEXT, list, tuple)):
        ensure(text_size(left) + text_size(right), "a concatenation")
    return left + right


def checked_mul(left, right):
    if type(left) is int and type(right) is int:
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise too_long_number("a product")
    else:
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, (*TEXT, list, tuple)) and is_count(n):
                ensure(text_size(seq) * max(n, 0) if seq else 0, "a repeated string or list")
    return left * right


def checked_pow(left, right):
    if is_count(left) and is_count(right) and abs(left) > 1 and right > 0:
        if (abs(left).bit_length() - 1) * right > MAX_INT_BITS:
            raise too_long_number("a power")
    return left ** right


def format_size(fmt, right) -> int:
    """What `fmt % right` can grow to; a huge width or precision is refused outright."""
    if (BIG_WIDTH if isinstance(fmt, str) else BIG_WIDTH_BYTES).search(fmt):
        raise too_big("a %-format with a huge width")
    values = right.values() if isinstance(right, dict) else right if isinstance(right, tuple) else (right,)
    return len(fmt) + fmt.count("%" if isinstance(fmt, str) else b"%") * max(map(text_size, values), default=0)


def checked_mod(left, right):
    if isinstance(left, TEXT):
        ensure(format_size(left, right), "a %-formatted string")
    elif type(left) is int and type(right) is int and left.bit_length() > MAX_INT_BITS:
        raise too_long_number("a number")
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


def check_text_method(name: str, text, args: tuple, kwargs: dict) -> tuple:
    """Pre-check the str/bytes methods that make a big value from small arguments; returns the
    arguments to call with (a join's iterable, read once and counted)."""
    size = 0
    if name in ("ljust", "rjust", "center", "zfill"):
        width = args[0] if args else kwargs.get("width", 0)
        size = width if is_count(width) else 0
    elif name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        if is_count(tabsize):
            size = len(text) + text.count(b"\t" if isinstance(text, (bytes, bytearray)) else "\t") * tabsize
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], TEXT) and isinstance(args[1], TEXT):
        old, new = args[0], args[1]
        if len(new) > len(old):
            count = text.count(old) if old else len(text) + 1
            limit = args[2] if len(args) > 2 else kwargs.get("count", -1)
            if is_count(limit) and limit >= 0:
                count = min(count, limit)
            size = len(text) + count * (len(new) - len(old))
    elif name == "join" and args:
        parts = list(items_read(args[0], f"{type(text).__name__}.join()"))
        size = sum(len(p) for p in parts if isinstance(p, TEXT)) + len(text) * max(len(parts) - 1, 0)
        args = (parts, *args[1:])
    elif name == "translate" and args and isinstance(args[0], dict) and isinstance(text, str):
        size = len(text) * max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
    if size > MAX_OUTPUT_CHARS:
        raise too_big(f"{type(text).__name__}.{name}()")
    return args


KEEPING_METHODS = frozenset({"fromkeys", "to_bytes"})


def check_keeper(obj, args: tuple, kwargs: dict) -> None:
    """Calls that keep their arguments in what they make: a class (dict(), namespace(), cycler()),
    a macro's varargs and kwargs; and two methods that make much of little: dict.fromkeys (one
    value under every key) and int.to_bytes(length)."""
    if isinstance(obj, type) or type(obj) is Macro:
        ensure(text_size(args) + text_size(kwargs), "the arguments kept by a call")
    elif getattr(obj, "__name__", None) in KEEPING_METHODS:
        if obj.__name__ == "fromkeys" and args:
            keys = list(items_read(args[0], "dict.fromkeys()"))
            ensure(len(keys) * text_size(args[1] if len(args) > 1 else None), "dict.fromkeys()")
        elif obj.__name__ == "to_bytes":
            length = args[0] if args else kwargs.get("length", 1)
            if is_count(length):
                ensure(length, "int.to_bytes()")


def lipsum(n=5, html=True, min=20, max=100):  # noqa: A002  (Jinja's own argument names)
    ensure(int(n) * int(max) * 12, "lipsum()")
    return generate_lorem_ipsum(n=n, html=html, min=min, max=max)
