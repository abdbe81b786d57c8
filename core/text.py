"""Text on its way out of the app. JSON may hold an escaped lone surrogate (`"\\ud800"`, which broken
tokenizers and hostile callers write); Python decodes it into a str that no UTF-8 output can carry,
so printing, serializing or sending it fails far from the cause. The faces pass what they send
through `replace_surrogates` and show `surrogates_note` beside it."""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # a str holds a surrogate only unpaired


def replace_surrogates(value):
    """(value, how many were replaced): `value` (a str, or dicts, lists and tuples holding strs, keys
    included) with every lone surrogate replaced by U+FFFD. Values without one come back as they are."""
    if isinstance(value, str):
        return _LONE_SURROGATE.subn(REPLACEMENT, value)
    if isinstance(value, dict):
        count, out = 0, {}
        for key, item in value.items():
            key, k = replace_surrogates(key)
            out[key], n = replace_surrogates(item)
            count += k + n
        return (out, count) if count else (value, 0)
    if isinstance(value, (list, tuple)):
        cleaned = [replace_surrogates(item) for item in value]
        count = sum(n for _, n in cleaned)
        return (type(value)(item for item, _ in cleaned), count) if count else (value, 0)
    return value, 0


def surrogates_note(count: int) -> str:
    """The sentence shown beside text in which `count` characters were replaced ('' for none)."""
    if not count:
        return ""
    return (f"{count} invalid character{'s' if count > 1 else ''} (a lone UTF-16 surrogate such as \\ud800: half of a "
            f"pair, which no UTF-8 text can hold) shown as U+FFFD {REPLACEMENT}")
