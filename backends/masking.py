"""Masking the API key wherever the server or the app might show it.

A key can come back in many spellings: as sent, JSON-escaped, backslash-escaped by a repr, URL-encoded,
and cut short where a message was truncated. `mask` replaces every one of them; call it before
truncating anything, so no cut can split a key past recognition.
"""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_PREFIX = 4  # the shortest cut-off start of a key that is still masked
TRUNCATION_MARKS = ("…", "...")


def _forms(secret: str) -> list[str]:
    """Every spelling of `secret` a message can hold, longest first (so a longer form is masked whole)."""
    escaped = {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], repr(secret)[1:-1],
               secret.encode("unicode_escape").decode("ascii")}
    twice = {repr(f)[1:-1] for f in escaped} | {json.dumps(f)[1:-1] for f in escaped}  # an escaped form escaped again
    forms = {secret, quote(secret, safe=""), quote_plus(secret)} | escaped | twice
    return sorted(forms, key=len, reverse=True)


def _mask_cut(text: str, form: str) -> str:
    """`text` with a start of `form` masked where it ends the text or runs into an ellipsis (a truncation)."""
    head = form[:MIN_PREFIX]
    at = text.find(head)
    while at >= 0:
        n = MIN_PREFIX
        while n < len(form) and at + n < len(text) and text[at + n] == form[n]:
            n += 1
        rest = text[at + n:]
        if not rest or rest.startswith(TRUNCATION_MARKS):
            text = text[:at] + MASK + rest
            at += len(MASK)
        else:
            at += 1
        at = text.find(head, at)
    return text


def mask(value, secret: str):
    """`value` (text, or JSON-like data: dicts, lists) with every form of `secret` replaced by ***."""
    return _masked(value, _forms(secret), len(secret) > MIN_PREFIX) if secret else value


def _masked(value, forms: list[str], cuts: bool):
    if isinstance(value, str):
        for form in forms:
            value = value.replace(form, MASK)
        for form in forms if cuts else ():
            value = _mask_cut(value, form)
        return value
    if isinstance(value, dict):
        return {_masked(k, forms, cuts): _masked(v, forms, cuts) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_masked(v, forms, cuts) for v in value)
    return value
