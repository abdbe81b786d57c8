"""JSON in model output: where a value ends (`json_extent`, brackets matched with strings
skipped), what a linear scan says about broken JSON (`scan_json`: truncated? unclosed?), and
loading it (`load_json`: `json.loads` first, then the `json-repair` library with every repair
named; JSON cut off inside a string or after a key is reported as truncated, never "repaired")."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .limits import MAX_BRACKET_DEPTH, MAX_REPAIR_CHARS, MAX_REPAIR_DEPTH

try:  # the maintained JSON repair library (PyPI `json-repair`)
    from json_repair import repair_json as _repair_json
except ImportError:  # pragma: no cover - reported as a parse error instead of crashing the app
    _repair_json = None

_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(")?|[{}\[\]:,]|[^\s"{}\[\]:,]+', re.S)
_BRACKET_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[{}\[\]]', re.S)
NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


@dataclass
class JsonScan:
    """What a single linear pass says about a (possibly broken) JSON text."""

    truncated: str | None = None  # why the text stops in the middle of a value, or None
    unclosed: int = 0  # containers still open at the end
    mismatched: int = 0  # closers that also closed containers left open before them
    trailing_commas: int = 0
    max_depth: int = 0
    elements: list[int] = field(default_factory=list)  # starts of top-level array elements


def scan_json(s: str) -> JsonScan:
    scan = JsonScan()
    stack: list[str] = []  # "{" or "["
    expect_key = False  # inside an object, at a key position
    last = "start"  # start|open|key|colon|value|comma|word
    last_token = ""
    for m in _JSON_TOKEN.finditer(s):
        tok = m.group()
        c = tok[0]
        if c == '"':
            if m.group(1) is None:  # no closing quote: the text ends inside a string
                scan.truncated = "it ends inside a string"
                scan.unclosed = len(stack)
                return scan
            if stack and stack[-1] == "[" and len(stack) == 1 and last in ("open", "comma"):
                scan.elements.append(m.start())
            if expect_key:
                last, expect_key = "key", False
            else:
                last = "value"
        elif c in "{[":
            if len(stack) == 1 and stack[0] == "[" and last in ("open", "comma"):
                scan.elements.append(m.start())
            stack.append(c)
            scan.max_depth = max(scan.max_depth, len(stack))
            expect_key = c == "{"
            last = "open"
        elif c in "}]":
            if last == "comma":
                scan.trailing_commas += 1
            want = "{" if c == "}" else "["
            if want in stack:
                while stack and stack[-1] != want:
                    stack.pop()
                    scan.mismatched += 1
                stack.pop()
            expect_key = False
            last = "value"
        elif c == ":":
            last = "colon"
        elif c == ",":
            last = "comma"
            expect_key = bool(stack) and stack[-1] == "{"
        else:
            if len(stack) == 1 and stack[0] == "[" and last in ("open", "comma"):
                scan.elements.append(m.start())
            last = "word"
            expect_key = False
        last_token = tok
    scan.unclosed = len(stack)
    if stack:
        if last == "key":
            scan.truncated = "it ends after a key"
        elif last == "colon":
            scan.truncated = "it ends before a value"
        elif last == "open":
            scan.truncated = "it ends right after an opening bracket"
        elif last == "word" and not (
            last_token in ("true", "false", "null") or NUMBER.fullmatch(last_token)
        ):
            scan.truncated = "it ends inside a literal"
    return scan


def match_bracket(text: str, i: int) -> int:
    """Index of the bracket closing the one at text[i] (strings skipped), or -1 if none."""
    depth = 0
    for m in _BRACKET_TOKEN.finditer(text, i):
        c = m.group()[0]
        if c in "{[":
            depth += 1
            if depth > MAX_BRACKET_DEPTH:
                return -1
        elif c in "}]":
            depth -= 1
            if depth == 0:
                return m.start()
    return -1


TOO_LARGE = "too large to repair"  # in the error of invalid JSON past the limits: it may have been a call


@dataclass
class Loaded:
    ok: bool
    value: Any = None
    repairs: list[str] = field(default_factory=list)  # empty when the JSON was valid
    error: str | None = None
    truncated: bool = False
    scan: JsonScan | None = None


def load_json(s: str) -> Loaded:
    """json.loads, else json-repair (naming what it fixed); truncation is an error, not a repair."""
    t = s.strip()
    if not t:
        return Loaded(False, error="empty JSON")
    try:
        return Loaded(True, json.loads(t))
    except (ValueError, RecursionError):
        pass
    try:  # raw control characters (newlines) inside strings: valid for a lenient reader
        value = json.loads(t, strict=False)
        return Loaded(True, value, ["raw control characters inside strings accepted"])
    except (ValueError, RecursionError):
        pass
    if len(t) > MAX_REPAIR_CHARS:
        return Loaded(False, error=f"invalid JSON {TOO_LARGE} ({len(t):,} characters; at most {MAX_REPAIR_CHARS:,} are repaired)")
    scan = scan_json(t)
    if scan.truncated:
        return Loaded(False, error=f"the JSON is cut off: {scan.truncated}", truncated=True, scan=scan)
    if scan.max_depth > MAX_REPAIR_DEPTH:
        return Loaded(False, error=f"invalid JSON {TOO_LARGE} (nested {scan.max_depth} deep; at most {MAX_REPAIR_DEPTH} is repaired)")
    if _repair_json is None:
        return Loaded(False, error="invalid JSON (json-repair is not installed)")
    try:
        value, log = _repair_json(t, return_objects=True, logging=True)
    except Exception as e:  # noqa: BLE001 - the library may raise on hopeless input
        return Loaded(False, error=f"invalid JSON that json-repair could not fix: {e}")
    if value == "" or (value is None and t != "null"):
        return Loaded(False, error="not JSON")
    items: list[str] = []
    if scan.unclosed:
        items.append(f"closed {scan.unclosed} unclosed bracket(s)")
    if scan.mismatched:
        items.append(f"inserted {scan.mismatched} missing closing bracket(s)")
    if scan.trailing_commas:
        items.append(f"removed {scan.trailing_commas} trailing comma(s)")
    for entry in log or []:
        text = entry.get("text") if isinstance(entry, dict) else str(entry)
        if text and text not in items:
            items.append(text)
    return Loaded(True, value, items or ["normalized the JSON syntax"], scan=scan)


def json_extent(text: str, i: int) -> tuple[str, int]:
    """The JSON value starting at text[i] ('{' or '['): (segment, end). Unclosed: to the end."""
    j = match_bracket(text, i)
    if j == -1:
        return text[i:], len(text)
    return text[i : j + 1], j + 1


def loose_json_at(text: str, i: int) -> tuple[Any, int] | None:
    """A valid JSON value at text[i] and where it ends (no repair)."""
    try:
        value, end = json.JSONDecoder().raw_decode(text, i)
        return value, end
    except (ValueError, RecursionError):
        return None
