"""Filters: those that read a sequence count it (at most MAX_ITEMS items), those that make text
check their arguments before and their result after."""

from __future__ import annotations

import functools

from .operators import format_size
from .sizes import (CONTAINERS, MAX_INDENT, MAX_OUTPUT_CHARS, TEXT, Limit, ensure, ensure_count, is_count, items_read,
                    text_size, too_big)


def _check_fill(count, fill_with, what: str) -> None:
    ensure_count(count, what)
    if fill_with is not None and is_count(count):
        ensure(text_size(fill_with) * count, what)


def _check_batch(linecount, fill_with=None):
    _check_fill(linecount, fill_with, "the batch filter")


def _check_slice(slices, fill_with=None):
    _check_fill(slices, fill_with, "the slice filter")


def _check_join(items: list, d="", attribute=None):
    ensure(sum(len(p) for p in items if isinstance(p, TEXT)) + text_size(d) * max(len(items) - 1, 0), "the join filter")


def _check_center(value, width=80):
    if is_count(width):
        ensure(max(width, text_size(value)), "the center filter")


def _check_indent(s, width=4, first=False, blank=False):
    step = width if is_count(width) else len(width) if isinstance(width, str) else 0
    lines = s.count("\n") + 1 if isinstance(s, str) else 1
    ensure(text_size(s) + lines * step, "the indent filter")


def _check_wordwrap(s, width=79, break_long_words=True, wrapstring=None, break_on_hyphens=True):
    if isinstance(s, str) and is_count(width):
        # lines: at most one per half width (two short neighbours would have been joined), plus one per paragraph
        lines = 2 * len(s) // max(width, 1) + s.count("\n") + 2
        ensure(len(s) + lines * len(wrapstring if isinstance(wrapstring, str) else "\n"), "the wordwrap filter")


def _check_format(value, *args, **kwargs):
    if isinstance(value, str):
        ensure(format_size(value, kwargs or args), "the format filter")


def _check_replace(s, old, new, count=None):
    size = text_size(s)
    old_len, new_len = len(str(old)), len(str(new))
    if new_len > old_len:
        occurrences = s.count(old) if isinstance(s, str) and isinstance(old, str) and old else size + 1
        if is_count(count) and count >= 0:
            occurrences = min(occurrences, count)
        ensure(size + occurrences * (new_len - old_len), "the replace filter")


def _check_tojson(value, *args, **kwargs):
    # lists and dicts are caller data or were counted when built: only the indent can blow the text up
    for option in (*args, *kwargs.values()):
        if (is_count(option) and option > MAX_INDENT) or (isinstance(option, str) and len(option) > MAX_INDENT):
            raise Limit(f"the tojson filter with an indent over {MAX_INDENT} was stopped")


def _check_printed(what: str):
    def check(value, *args, **kwargs):
        if not isinstance(value, (*TEXT, *CONTAINERS)):
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
                return fn(first, items_read(value, what), *args, **kwargs)
        else:
            def bounded(value, *args, **kwargs):
                if check is not None:
                    check(*args, **kwargs)
                return fn(items_read(value, what), *args, **kwargs)
    elif name in _BUILD_FROM_SEQUENCE:
        check = _BUILD_FROM_SEQUENCE[name]

        def bounded(*args, **kwargs):
            skip = 1 if takes_first else 0
            items = list(items_read(args[skip], what))
            check(items, *args[skip + 1:], **kwargs)
            return fn(*args[:skip], items, *args[skip + 1:], **kwargs)
    else:
        check = _MAKE_TEXT[name]
        if takes_first:
            def bounded(first, value, *args, **kwargs):
                if check is not None:
                    check(value, *args, **kwargs)
                result = fn(first, value, *args, **kwargs)
                if isinstance(result, TEXT) and len(result) > MAX_OUTPUT_CHARS:
                    raise too_big(what)
                return result
        else:
            def bounded(value, *args, **kwargs):
                if check is not None:
                    check(value, *args, **kwargs)
                result = fn(value, *args, **kwargs)
                if isinstance(result, TEXT) and len(result) > MAX_OUTPUT_CHARS:
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
