"""Shared steps for the tool-call parsers.

Every format parser is built from the same few pieces:

- `Out`: collects content / reasoning / calls / repairs / the first error while a parser walks the
  raw text, and turns them into a `ParseResult` (content segments stripped and joined with "\\n").
- `split_reasoning`: separates `<think>…</think>`-style blocks (including a block opened in the
  prompt, i.e. a bare closing tag) into `inner_thoughts` and returns the visible pieces.
- `blocks`: splits a text into prose and `OPEN…CLOSE` blocks (an unclosed block runs to the end).
- `load_json` / `json_calls`: `json.loads` first, then the `json-repair` library with every repair
  named; JSON cut off inside a string / after a key is reported as truncated, never "repaired".
- `cast_value`: types XML-ish text values with the function's JSON schema.
- `python_calls`: reads Python-style calls with `ast` (never `eval`).

Everything here is linear (or bounded) in the input size, so parsers stay fast on huge or
adversarial outputs.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from . import ParseContext, ParseError, ParseResult, ToolCall

try:  # the maintained JSON repair library (PyPI `json-repair`)
    from json_repair import repair_json as _repair_json
except ImportError:  # pragma: no cover - reported as a parse error instead of crashing the app
    _repair_json = None

MAX_REPAIR_CHARS = 100_000  # json-repair is pure Python and super-linear on pathological input
MAX_REPAIR_DEPTH = 64
MAX_PYTHON_CHARS = 1_000_000
MAX_CANDIDATES = 64  # how many "maybe JSON here" starts a prose scan may try

# end-of-turn / wrapper tokens that leak into the visible text and are not content
STOP_TOKENS = (
    "<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<|endoftext|>", "<|end_of_text|>",
    "<｜end▁of▁sentence｜>", "<|return|>", "<|call|>", "<SPECIAL_12>", "<|stop|>", "<|eot|>",
    "<|python_end|>", "<end_of_turn>", "<turn|>", "[e~[", "<seed:eos>", "<bot_end>",
    "<|END_OF_TURN_TOKEN|>", "<|eos|>", "<|message_sep|>", "<|assistant_end|>", "</s>",
)


# --------------------------------------------------------------------------------------------
# result builder


class Out:
    """Accumulates what a parser finds in `text` (= prefix + raw when the prefix was not echoed)."""

    def __init__(self, raw: str, context: ParseContext, *, drop: tuple[str, ...] = (), stop: tuple[str, ...] = ()):
        raw = raw if isinstance(raw, str) else str(raw or "")
        prefix = context.prefix or ""
        if prefix and not raw.startswith(prefix):
            self.text, self.shift = prefix + raw, len(prefix)
        else:
            self.text, self.shift = raw, 0
        self.repairs: list[str] = []
        if stop:  # the turn is over at its end-of-turn token: what follows is runaway generation
            k, token = find_any(self.text, stop)
            if k != -1 and self.text[k + len(token) :].strip():
                self.repairs.append(f"ignored {len(self.text) - k - len(token)} characters generated after {token}")
            if k != -1:
                self.text = self.text[:k]
        self.context = context
        self.functions = list(context.functions or [])
        self.drop = STOP_TOKENS + tuple(drop)
        self.content: list[str] = []
        self.thoughts: list[str] = []
        self.calls: list[ToolCall] = []
        self.error: ParseError | None = None

    # positions reported to the user are offsets in the raw text, not in prefix + raw
    def pos(self, index: int | None) -> int | None:
        return None if index is None else max(0, index - self.shift)

    def clean(self, s: str) -> str:
        for token in self.drop:
            if token in s:
                s = s.replace(token, "")
        return s.strip()

    def add_text(self, s: str) -> None:
        s = self.clean(s)
        if s:
            self.content.append(s)

    def add_thought(self, s: str) -> None:
        s = self.clean(s)
        if s:
            self.thoughts.append(s)

    def add_call(self, name: str, arguments: dict) -> None:
        self.calls.append(ToolCall(name=name, arguments=arguments))

    def note(self, message: str) -> None:
        self.repairs.append(message)

    def fail(self, message: str, index: int | None = None) -> None:
        if self.error is None:  # the first problem is the one reported
            self.error = ParseError(message, self.pos(index))

    @property
    def next_call(self) -> int:
        return len(self.calls) + 1

    def result(self) -> ParseResult:
        return ParseResult(
            content="\n".join(self.content) or None,
            inner_thoughts="\n".join(self.thoughts) or None,
            tool_calls=self.calls,
            repairs=self.repairs,
            error=self.error,
        )


@dataclass
class Piece:
    """A slice of `Out.text`: `start` is its offset there."""

    start: int
    text: str


# --------------------------------------------------------------------------------------------
# finding markers


_nocase_cache: dict[str, re.Pattern] = {}


def find(text: str, needle: str, start: int = 0, *, nocase: bool = False) -> int:
    if not nocase:
        return text.find(needle, start)
    pattern = _nocase_cache.get(needle)
    if pattern is None:
        pattern = _nocase_cache[needle] = re.compile(re.escape(needle), re.IGNORECASE)
    m = pattern.search(text, start)
    return m.start() if m else -1


def find_any(text: str, needles: tuple[str, ...], start: int = 0) -> tuple[int, str]:
    """Earliest occurrence of any needle: (index, needle) or (-1, "").

    For repeated searches over one text use `Markers`, which stays linear."""
    best, which = -1, ""
    for needle in needles:
        i = text.find(needle, start, best + len(needle) if best != -1 else len(text))
        if i != -1 and (best == -1 or i < best):
            best, which = i, needle
    return best, which


class Markers:
    """Repeated "next marker from here" searches over one text, amortized linear: each needle's
    next occurrence is remembered and only searched again once the walk has passed it."""

    def __init__(self, text: str, needles: tuple[str, ...]):
        self.text, self.needles = text, needles
        self.next = {n: -2 for n in needles}  # -2: not searched yet; -1: none left

    def find(self, start: int) -> tuple[int, str]:
        best, which = -1, ""
        for n in self.needles:
            p = self.next[n]
            if p == -2 or (p != -1 and p < start):
                p = self.next[n] = self.text.find(n, start)
            if p != -1 and (best == -1 or p < best):
                best, which = p, n
        return best, which


@dataclass
class Block:
    kind: str  # "text" | "block" (closed) | "open" (no closing marker before the end)
    start: int  # offset of the block (of its opening marker) in the searched text
    inner_start: int
    inner: str


def blocks(text: str, open_tag: str, close_tag: str, *, nocase: bool = False) -> Iterator[Block]:
    """Split `text` into prose and OPEN…CLOSE blocks, in order (offsets relative to `text`)."""
    i = 0
    while i <= len(text):
        o = find(text, open_tag, i, nocase=nocase)
        if o == -1:
            if i < len(text):
                yield Block("text", i, i, text[i:])
            return
        if o > i:
            yield Block("text", i, i, text[i:o])
        s = o + len(open_tag)
        c = find(text, close_tag, s, nocase=nocase)
        if c == -1:
            yield Block("open", o, s, text[s:])
            return
        yield Block("block", o, s, text[s:c])
        i = c + len(close_tag)


def split_reasoning(
    out: Out,
    open_tag: str = "<think>",
    close_tag: str = "</think>",
    *,
    pieces: list[Piece] | None = None,
    calls_in_unclosed: tuple[str, ...] = (),
) -> list[Piece]:
    """Move reasoning blocks into `out.thoughts`; return the visible pieces.

    A closing tag with no opening tag before it means the prompt opened the block: everything
    before it is reasoning. An unclosed block runs to the end, unless one of `calls_in_unclosed`
    occurs in it (Kimi-K2-Thinking, DeepSeek-V3.1): then the calls from that marker on are real.
    """
    if pieces is None:
        pieces = [Piece(0, out.text)]
    visible: list[Piece] = []
    for piece in pieces:
        text, base, i = piece.text, piece.start, 0
        first_close, first_open = text.find(close_tag), text.find(open_tag)
        if first_close != -1 and (first_open == -1 or first_close < first_open):
            out.add_thought(text[:first_close])
            i = first_close + len(close_tag)
        while True:
            o = text.find(open_tag, i)
            if o == -1:
                visible.append(Piece(base + i, text[i:]))
                break
            visible.append(Piece(base + i, text[i:o]))
            s = o + len(open_tag)
            c = text.find(close_tag, s)
            if c == -1:
                m, _ = find_any(text, calls_in_unclosed, s) if calls_in_unclosed else (-1, "")
                if m == -1:
                    out.add_thought(text[s:])
                else:
                    out.add_thought(text[s:m])
                    visible.append(Piece(base + m, text[m:]))
                break
            out.add_thought(text[s:c])
            i = c + len(close_tag)
    return [p for p in visible if p.text]


# --------------------------------------------------------------------------------------------
# JSON

_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(")?|[{}\[\]:,]|[^\s"{}\[\]:,]+', re.S)
_BRACKET_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[{}\[\]]', re.S)
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


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
            last_token in ("true", "false", "null") or _NUMBER.fullmatch(last_token)
        ):
            scan.truncated = "it ends inside a literal"
    return scan


MAX_BRACKET_DEPTH = 512  # deeper than any real call: give up instead of walking a huge text


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
        return Loaded(False, error=f"invalid JSON ({len(t)} characters, too large to repair)")
    scan = scan_json(t)
    if scan.truncated:
        return Loaded(False, error=f"the JSON is cut off: {scan.truncated}", truncated=True, scan=scan)
    if scan.max_depth > MAX_REPAIR_DEPTH:
        return Loaded(False, error=f"invalid JSON (nested {scan.max_depth} deep, not repaired)")
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


def repair_note(out: Out, loaded: Loaded, what: str | None = None) -> None:
    if loaded.repairs:
        where = what or f"call {out.next_call}"
        out.note(f"repaired invalid JSON in {where} with json-repair: " + "; ".join(loaded.repairs))


NAME_KEYS = ("name",)
ARG_KEYS = ("arguments", "parameters")


def call_from_obj(obj: Any, name_keys=NAME_KEYS, arg_keys=ARG_KEYS) -> tuple[str, dict] | str:
    """(name, arguments) from a JSON call object, or a string saying why it is not one."""
    if not isinstance(obj, dict):
        return f"expected a call object, got {type(obj).__name__}"
    if isinstance(obj.get("function"), dict) and not any(k in obj for k in name_keys):
        obj = obj["function"]  # OpenAI shape {"type": "function", "function": {...}}
    name = next((obj[k] for k in name_keys if k in obj), None)
    if not isinstance(name, str) or not name.strip():
        return "the call has no function name"
    name = name.strip().replace("\\_", "_")
    key = next((k for k in arg_keys if k in obj), None)
    if key is None:
        return f"call '{name}' has no arguments object"
    args = decode_arguments(obj[key])
    if args is None:
        return f"the arguments of '{name}' are not an object"
    return name, args


def decode_arguments(args: Any) -> dict | None:
    """Arguments object; a JSON-encoded string (double encoding) is decoded; None means {}."""
    if args is None:
        return {}
    if isinstance(args, dict):
        return args
    if isinstance(args, str):
        s = args.strip()
        if not s:
            return {}
        try:
            value = json.loads(s)
        except (ValueError, RecursionError):
            return None
        return value if isinstance(value, dict) else None
    return None


def json_calls(
    out: Out,
    segment: str,
    index: int,
    *,
    shape: str = "any",  # "any" | "array" | "object"
    name_keys=NAME_KEYS,
    arg_keys=ARG_KEYS,
    convert=None,  # optional obj -> (name, args) | str, replaces call_from_obj
    call_index: int | None = None,  # where the call starts (its marker), for truncation errors
) -> bool | None:
    """Add the call(s) encoded as JSON in `segment` (found at `out.text[index]`).

    Returns True when calls (or an explicit empty list) were found, False (recording why as the
    error) when the segment is not a call, and None when it is a truncated call: then nothing is
    added for it (a truncated array keeps its complete leading calls) and the error gives where
    the unfinished call starts.
    """
    loaded = load_json(segment)
    lead = len(segment) - len(segment.lstrip())
    if not loaded.ok and loaded.truncated and loaded.scan and loaded.scan.elements:
        elements = loaded.scan.elements
        cut = elements[-1]
        stripped = segment.strip()
        head = stripped[:cut].rstrip().rstrip(",") + "]"
        if len(elements) > 1:
            json_calls(out, head, index + lead, shape=shape, name_keys=name_keys,
                               arg_keys=arg_keys, convert=convert)
        out.fail(f"truncated call: {loaded.error}", index + lead + cut)
        return None
    if not loaded.ok:
        if loaded.truncated:
            out.fail("truncated call: " + loaded.error, index + lead if call_index is None else call_index)
            return None
        out.fail("no call: " + loaded.error, index + lead)
        return False
    value = loaded.value
    if shape == "array" and not isinstance(value, list):
        out.fail("no call: expected a JSON array of calls", index + lead)
        return False
    if shape == "object" and not isinstance(value, dict):
        out.fail("no call: expected a JSON call object", index + lead)
        return False
    items = value if isinstance(value, list) else [value]
    parsed = []
    for item in items:
        got = convert(item) if convert else call_from_obj(item, name_keys, arg_keys)
        if isinstance(got, str):
            out.fail(f"no call: {got}", index + lead)
            continue
        parsed.append(got)
    if not parsed:
        if not items:
            return True  # an explicit empty list: "no call", and not an error
        return False
    repair_note(out, loaded, f"call {out.next_call}" if len(parsed) == 1
                else f"calls {out.next_call}-{out.next_call + len(parsed) - 1}")
    for name, args in parsed:
        out.add_call(name, args)
    return True


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


# --------------------------------------------------------------------------------------------
# schema typing for text-encoded (XML-ish) values


def find_function(functions: list[dict], name: str) -> dict | None:
    for f in functions or []:
        if not isinstance(f, dict):
            continue
        g = f.get("function") if isinstance(f.get("function"), dict) else f
        if g.get("name") == name:
            return g
    return None


def param_schema(functions: list[dict], fname: str, pname: str) -> dict | None:
    f = find_function(functions, fname)
    if f is None:
        return None
    props = (f.get("parameters") or {}).get("properties") or {}
    schema = props.get(pname)
    return schema if isinstance(schema, dict) else None


def schema_types(schema: dict) -> list[str]:
    t = schema.get("type")
    types = [t] if isinstance(t, str) else [x for x in t if isinstance(x, str)] if isinstance(t, list) else []
    for key in ("anyOf", "oneOf"):
        for sub in schema.get(key) or []:
            if isinstance(sub, dict):
                types += [x for x in schema_types(sub) if x not in types]
    if not types and "enum" in schema:
        types = sorted({_json_type(v) for v in schema["enum"]})
    if not types and "properties" in schema:
        types = ["object"]
    return types


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if v is None:
        return "null"
    return "array" if isinstance(v, list) else "object"


_MISSING = object()


def _cast_as(t: str, s: str) -> Any:
    v = s.strip()
    if t == "null":
        return None if v.lower() in ("null", "none") else _MISSING
    if t == "boolean":
        low = v.lower()
        return True if low == "true" else False if low == "false" else _MISSING
    if t == "integer":
        try:
            return int(v)
        except ValueError:
            try:
                f = float(v)
                return int(f) if f.is_integer() else _MISSING
            except (ValueError, OverflowError):
                return _MISSING
    if t == "number":
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return _MISSING
    if t in ("object", "array"):
        want = dict if t == "object" else list
        try:
            value = json.loads(v)
        except (ValueError, RecursionError):
            try:
                value = ast.literal_eval(v) if len(v) < MAX_PYTHON_CHARS else _MISSING
            except Exception:  # noqa: BLE001 - not a Python literal either
                return _MISSING
        return value if isinstance(value, want) else _MISSING
    return _MISSING


def cast_value(functions: list[dict], fname: str, pname: str, text: str) -> Any:
    """Type a text value with the parameter's schema; strings stay verbatim.

    Unknown function / parameter / type: best effort, JSON if it parses, else the string.
    """
    schema = param_schema(functions, fname, pname)
    types = schema_types(schema) if schema else []
    if types == ["string"]:
        return text
    for t in ("null", "boolean", "integer", "number", "object", "array"):
        if t in types:
            value = _cast_as(t, text)
            if value is not _MISSING:
                return value
    if "string" in types:
        return text
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def strip_one_newline(s: str) -> str:
    """Remove exactly one wrapping newline on each side (values written on their own lines)."""
    if s.startswith("\r\n"):
        s = s[2:]
    elif s.startswith("\n"):
        s = s[1:]
    if s.endswith("\r\n"):
        s = s[:-2]
    elif s.endswith("\n"):
        s = s[:-1]
    return s


_ATTR = re.compile(r"""([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")


def attributes(tag_text: str) -> dict[str, str]:
    """Attributes of an XML-ish start tag body (`name="x" string="true"`)."""
    return {m.group(1): next(g for g in m.groups()[1:] if g is not None) for m in _ATTR.finditer(tag_text)}


def xml_invokes(out: Out, body: str, base: int, invoke: str, param: str, *, typed_attr: str | None = None) -> None:
    """Calls written as `<INVOKE name="f"><PARAM name="k">v</PARAM>…</INVOKE>` (MiniMax-M2,
    DeepSeek-V3.2 DSML, Step-3). `invoke`/`param` are tag names including any prefix. An invoke
    without its closing tag is a truncated call."""
    open_inv, close_inv = "<" + invoke, "</" + invoke + ">"
    open_par, close_par = "<" + param, "</" + param + ">"
    i = 0
    while True:
        o = body.find(open_inv, i)
        if o == -1:
            return
        gt = body.find(">", o)
        if gt == -1:
            out.fail(f"truncated call: unfinished <{invoke}> tag", base + o)
            return
        attrs = attributes(body[o + len(open_inv) : gt])
        name = attrs.get("name", "").strip()
        c = body.find(close_inv, gt)
        if c == -1:
            out.fail(f"truncated call: <{invoke}> without {close_inv}", base + o)
            return
        i = c + len(close_inv)
        if not name:
            out.fail(f"no call: <{invoke}> without a name", base + o)
            continue
        args: dict = {}
        inner = body[gt + 1 : c]
        j = 0
        while True:
            p = inner.find(open_par, j)
            if p == -1:
                break
            pgt = inner.find(">", p)
            if pgt == -1:
                break
            pattrs = attributes(inner[p + len(open_par) : pgt])
            pc = inner.find(close_par, pgt)
            nxt = inner.find(open_par, pgt)
            if pc == -1 or (nxt != -1 and nxt < pc):  # missing closing tag: up to the next one
                pc = nxt if nxt != -1 else len(inner)
                j = pc
            else:
                j = pc + len(close_par)
            key = pattrs.get("name", "").strip()
            if not key:
                continue
            value = strip_one_newline(inner[pgt + 1 : pc])
            if typed_attr and pattrs.get(typed_attr, "").lower() == "true":
                args[key] = value
            elif typed_attr and pattrs.get(typed_attr, "").lower() == "false":
                loaded = load_json(value)
                args[key] = loaded.value if loaded.ok else cast_value(out.functions, name, key, value)
            else:
                args[key] = cast_value(out.functions, name, key, value)
        out.add_call(name, args)


def function_eq_params(out: Out, body: str, base: int, call_index: int | None = None) -> int:
    """Qwen3-Coder / Seed-OSS bodies: `<function=NAME><parameter=K>V</parameter>…</function>`.

    Returns where the last function ends in `body` (-1 when it holds no `<function=`). A function
    without `</function>` is a truncated call. A value runs to the last `</parameter>` before the
    next `<parameter=`.
    """
    i, end = 0, -1
    while True:
        o = body.find("<function=", i)
        if o == -1:
            return end
        gt = body.find(">", o)
        c = body.find("</function>", o)
        if gt == -1 or c == -1 or c < gt:
            out.fail("truncated call: <function=…> without </function>",
                     base + o if call_index is None else call_index)
            return len(body)
        end = c + len("</function>")
        name = body[o + len("<function=") : gt].strip()
        inner = body[gt + 1 : c]
        i = c + len("</function>")
        args: dict = {}
        starts = [m.start() for m in re.finditer(r"<parameter=", inner)]
        for k, p in enumerate(starts):
            pgt = inner.find(">", p)
            limit = starts[k + 1] if k + 1 < len(starts) else len(inner)
            if pgt == -1 or pgt > limit:
                continue
            key = inner[p + len("<parameter=") : pgt].strip()
            region = inner[pgt + 1 : limit]
            close = region.rfind("</parameter>")
            value = region[:close] if close != -1 else region.rstrip()
            args[key] = cast_value(out.functions, name, key, strip_one_newline(value))
        if name:
            out.add_call(name, args)
        else:
            out.fail("no call: <function=> without a name", base + o)


# --------------------------------------------------------------------------------------------
# Python-style calls (read with ast, never evaluated)


class PyCallError(ValueError):
    pass


_JSON_NAMES = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}


def dotted_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        left = dotted_name(node.value)
        return f"{left}.{node.attr}" if left else None
    return None


def py_value(node: ast.AST, notes: list[str]) -> Any:
    """A literal from the AST; nested calls become their source text (noted)."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (bytes, complex)) or node.value is Ellipsis:
            raise PyCallError(f"unsupported literal {ast.unparse(node)}")
        return node.value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [py_value(e, notes) for e in node.elts]
    if isinstance(node, ast.Dict):
        result = {}
        for k, v in zip(node.keys, node.values, strict=False):
            if k is None:
                raise PyCallError("'**' inside a dict literal")
            key = py_value(k, notes)
            result[key if isinstance(key, str) else json.dumps(key)] = py_value(v, notes)
        return result
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = py_value(node.operand, notes)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.Name) and node.id in _JSON_NAMES:
        return _JSON_NAMES[node.id]
    if isinstance(node, ast.Call) and dotted_name(node.func):
        src = ast.unparse(node)
        notes.append(f"nested call {src} kept as text (it cannot be flattened)")
        return src
    if isinstance(node, ast.JoinedStr):
        raise PyCallError("f-strings are not literals")
    raise PyCallError(f"argument value {ast.unparse(node)!r} is not a literal")


def _call(node: ast.Call, functions: list[dict], notes: list[str]) -> tuple[str, dict]:
    name = dotted_name(node.func)
    if not name:
        raise PyCallError(f"{ast.unparse(node.func)!r} is not a function name")
    args: dict = {}
    if node.args:
        f = find_function(functions, name)
        order = list(((f or {}).get("parameters") or {}).get("properties") or {})
        for k, a in enumerate(node.args):
            if isinstance(a, ast.Starred):
                raise PyCallError("'*args' in a call")
            key = order[k] if k < len(order) else f"arg{k + 1}"
            args[key] = py_value(a, notes)
        notes.append(f"positional argument(s) of {name} mapped to " + ", ".join(list(args)))
    for kw in node.keywords:
        if kw.arg is None:
            raise PyCallError("'**kwargs' in a call")
        args[kw.arg] = py_value(kw.value, notes)
    return name, args


def python_calls(src: str, functions: list[dict] | None = None) -> tuple[list[tuple[str, dict]], list[str]]:
    """Calls from `[f(a=1), g(b='x')]`, a bare `f(a=1)`, or one call per line / `;`-separated.

    Raises PyCallError (with `.offset` where known) when the text is not such calls.
    """
    s = src.strip()
    if not s:
        raise PyCallError("empty")
    if len(s) > MAX_PYTHON_CHARS:
        raise PyCallError(f"{len(s)} characters of Python is too much to read")
    notes: list[str] = []
    try:
        tree = ast.parse(s, mode="exec")
    except SyntaxError as e:
        err = PyCallError(f"not valid Python calls: {e.msg}")
        err.offset = _offset(s, e.lineno, e.offset)
        raise err from None
    except (ValueError, RecursionError, MemoryError) as e:
        raise PyCallError(f"not valid Python calls: {type(e).__name__}") from None
    calls: list[tuple[str, dict]] = []
    for stmt in tree.body:
        if not isinstance(stmt, ast.Expr):
            raise PyCallError(f"a {type(stmt).__name__} statement is not a call")
        node = stmt.value
        elts = node.elts if isinstance(node, (ast.List, ast.Tuple)) else [node]
        for e in elts:
            if not isinstance(e, ast.Call):
                raise PyCallError(f"{ast.unparse(e)[:60]!r} is not a call")
            calls.append(_call(e, functions or [], notes))
    return calls, notes


def _offset(s: str, lineno: int | None, col: int | None) -> int | None:
    if not lineno:
        return None
    lines = s.split("\n")
    return sum(len(line) + 1 for line in lines[: lineno - 1]) + max(0, (col or 1) - 1)


def add_python_calls(out: Out, src: str, index: int, *, label: str = "call list") -> bool:
    """Read `src` (found at out.text[index]) as Python calls and add them; False if it is not."""
    try:
        calls, notes = python_calls(src, out.functions)
    except PyCallError as e:
        out.fail(f"no call: the {label} is not valid: {e}", index)
        return False
    for n in notes:
        out.note(n)
    for name, args in calls:
        out.add_call(name, args)
    return True


def unfence(text: str, langs: tuple[str, ...] = ("json", "")) -> str | None:
    """Inside of a markdown fence (```lang … ```) filling the whole text, or None."""
    t = text.strip()
    if not t.startswith("```"):
        return None
    nl = t.find("\n")
    if nl == -1:
        return None
    lang = t[3:nl].strip().lower()
    if lang not in langs:
        return None
    body = t[nl + 1 :]
    end = body.rfind("```")
    return body[:end] if end != -1 else body


# --------------------------------------------------------------------------------------------
# the common "OPEN body CLOSE" walk


def tagged(
    out: Out,
    pieces: list[Piece],
    open_tag: str,
    close_tag: str,
    on_body,
    *,
    close_required: bool = True,
    nocase: bool = False,
    on_text=None,
) -> None:
    """Walk the visible pieces: prose goes to content (or `on_text(out, Piece)`), each block's body
    to `on_body(out, body, body_index, block_index, closed) -> bool`. A body for which `on_body`
    returns False is not a call and stays in the content verbatim. A block without its closing
    marker is a truncated call when `close_required`."""
    for piece in pieces:
        for b in blocks(piece.text, open_tag, close_tag, nocase=nocase):
            start = piece.start + b.start
            if b.kind == "text":
                (on_text or _add_text)(out, Piece(start, b.inner))
            elif b.kind == "open" and close_required:
                out.fail(f"truncated call: {open_tag} without {close_tag}", start)
            else:
                closed = b.kind == "block"
                if not on_body(out, b.inner, piece.start + b.inner_start, start, closed):
                    raw_block = piece.text[b.start : b.inner_start] + b.inner + (close_tag if closed else "")
                    out.add_text(raw_block)


def _add_text(out: Out, piece: Piece) -> None:
    out.add_text(piece.text)


def json_body(shape: str = "any", name_keys=NAME_KEYS, arg_keys=ARG_KEYS, convert=None):
    """`on_body` for blocks holding JSON call(s): a body that is not JSON-like stays text; text
    after the JSON value inside the block is content."""

    def on_body(out: Out, body: str, index: int, block_index: int, closed: bool) -> bool:
        t = body.strip()
        if not t or t[0] not in "{[":
            if not closed and not t:
                out.fail("truncated call: the block is empty", block_index)
                return True
            return False
        lead = len(body) - len(body.lstrip())
        seg, end = json_extent(body, lead)
        found = json_calls(out, seg, index + lead, shape=shape, name_keys=name_keys,
                           arg_keys=arg_keys, convert=convert, call_index=block_index)
        if found is False:
            return False  # not a call: the block stays text
        rest = body[end:]
        if rest.strip():
            out.add_text(rest)
        return True

    return on_body


def think_pieces(out: Out) -> list[Piece]:
    """Visible pieces once `<think>…</think>` reasoning is set apart (the usual case)."""
    return split_reasoning(out, "<think>", "</think>")


def quiet_json_calls(out: Out, segment: str, index: int, **kw) -> bool | None:
    """`json_calls` for fallbacks (bare JSON, fences): a non-call is just text, not an error."""
    saved = out.error
    found = json_calls(out, segment, index, **kw)
    if found is False:
        out.error = saved
    return found


def bare_json(out: Out, piece: Piece, **kw) -> bool:
    """Text whose stripped form starts with a JSON value: calls from it, prose around it.
    Returns False (adding nothing) when it holds no call."""
    t = piece.text
    lead = len(t) - len(t.lstrip())
    if lead >= len(t) or t[lead] not in "{[":
        return False
    seg, end = json_extent(t, lead)
    found = quiet_json_calls(out, seg, piece.start + lead, call_index=piece.start + lead, **kw)
    if found is False:
        return False
    out.add_text(t[end:])
    return True


def json_sequence(out: Out, body: str, index: int, block_index: int, **kw) -> None:
    """Several JSON call values one after another (JSON Lines, `;`/`,` separated, pretty-printed
    objects). A line that is not JSON is skipped with an error; one cut off at the end is a
    truncated call."""
    i, n = 0, len(body)
    while i < n:
        while i < n and body[i] in " \t\r\n;,":
            i += 1
        if i >= n:
            return
        if body[i] in "{[":
            seg, end = json_extent(body, i)
            json_calls(out, seg, index + i, call_index=index + i, **kw)
            i = end
        else:
            nl = body.find("\n", i)
            nl = n if nl == -1 else nl
            out.fail(f"no call: {body[i:nl].strip()[:40]!r} is not a JSON call", index + i)
            i = nl


def after_marker(out: Out, pieces: list[Piece], markers: tuple[str, ...], **kw) -> None:
    """Formats with an opening marker and no closing one: `MARKER {json}` / `MARKER [json]`, the
    JSON value bracket-matched (text after it is content). A marker not followed by JSON stays
    text; a marker at the very end is a truncated call."""
    for piece in pieces:
        text, i = piece.text, 0
        finder = Markers(text, markers)
        while True:
            m, which = finder.find(i)
            if m == -1:
                out.add_text(text[i:])
                break
            out.add_text(text[i:m])
            j = k = m + len(which)
            while k < len(text) and text[k].isspace():
                k += 1
            if k >= len(text):
                out.fail(f"truncated call: {which.strip()} at the end of the output", piece.start + m)
                break
            if text[k] not in "{[":
                out.add_text(text[m:j])
                i = j
                continue
            seg, end = json_extent(text, k)
            found = json_calls(out, seg, piece.start + k, call_index=piece.start + m, **kw)
            if found is False:
                out.add_text(text[m:end])
            i = end


def named_json_call(out: Out, name: str, text: str, index: int, call_index: int) -> int:
    """`text` (at out.text[index]) starts with the JSON arguments of a call to `name`: add the call
    and return where the JSON ends in `text` (the rest is for the caller). Missing or cut-off JSON
    is a truncated call; a JSON-encoded string is decoded."""
    lead = len(text) - len(text.lstrip())
    if lead >= len(text):
        out.fail(f"truncated call: no arguments for {name}", call_index)
        return len(text)
    if text[lead] in "{[":
        seg, end = json_extent(text, lead)
    elif text[lead] == '"':
        dec = loose_json_at(text, lead)
        if dec is None:
            out.fail(f"truncated call: the arguments of {name} are cut off", call_index)
            return len(text)
        seg, end = text[lead : dec[1]], dec[1]
    else:
        out.fail(f"no call: the arguments of {name} are not JSON", index + lead)
        return lead
    loaded = load_json(seg)
    if not loaded.ok:
        if loaded.truncated:
            out.fail(f"truncated call: {loaded.error}", call_index)
        else:
            out.fail(f"no call: invalid arguments for {name}: {loaded.error}", index + lead)
        return end
    args = decode_arguments(loaded.value)
    if args is None:
        out.fail(f"no call: the arguments of {name} are not an object", index + lead)
        return end
    if isinstance(loaded.value, str):
        out.note(f"decoded the JSON-encoded arguments string of call {out.next_call}")
    repair_note(out, loaded)
    out.add_call(name, args)
    return end


_PY_TOKEN = re.compile(r"""'[^'\\\n]*(?:\\.[^'\\\n]*)*(?P<sq>')?|"[^"\\\n]*(?:\\.[^"\\\n]*)*(?P<dq>")?|[\[\](){}]""")


def match_py_bracket(text: str, i: int) -> int:
    """Index of the bracket closing text[i] in Python source (quoted strings skipped), or -1."""
    depth = 0
    for m in _PY_TOKEN.finditer(text, i):
        c = m.group()[0]
        if c in "[({":
            depth += 1
            if depth > MAX_BRACKET_DEPTH:
                return -1
        elif c in "])}":
            depth -= 1
            if depth == 0:
                return m.start()
    return -1


_PY_LIST_START = re.compile(r"\[\s*[A-Za-z_][\w.]*\s*\(")
_CLOSERS = {"[": "]", "(": ")", "{": "}"}


def python_prefix(src: str) -> bool:
    """Is `src` the beginning of valid Python calls, cut off (rather than something else)?
    Checked by closing its open string and brackets (with a placeholder value) and parsing."""
    if len(src) > MAX_PYTHON_CHARS:
        return False
    stack: list[str] = []
    quote = ""
    for m in _PY_TOKEN.finditer(src):
        tok = m.group()
        c = tok[0]
        if c in "'\"":
            if m.group("sq" if c == "'" else "dq") is None and m.end() == len(src):
                quote = c  # the text ends inside this string
        elif c in "[({":
            stack.append(c)
        elif stack and _CLOSERS[stack[-1]] == c:
            stack.pop()
    closers = "".join(_CLOSERS[c] for c in reversed(stack))
    for fill in ("", "None", "=None"):
        try:
            ast.parse(src + quote + fill + closers)
            return True
        except Exception:  # noqa: BLE001 - SyntaxError, RecursionError, MemoryError…
            continue
    return False


def python_list_in_text(out: Out, piece: Piece, *, bare_call: bool = True) -> None:
    """Python call list(s) `[f(a=1), …]` in the text (the whole text, or glued to prose), or the
    whole text as a bare call `f(a=1)`. Prose is content; an unclosed list is a truncated call."""
    text = piece.text
    t = text.strip()
    lead = len(text) - len(text.lstrip())
    if bare_call and t and not t.startswith("[") and re.match(r"[A-Za-z_][\w.]*\s*\(", t):
        saved = out.error
        try:
            calls, notes = python_calls(t, out.functions)
        except PyCallError:
            calls = None
            if match_py_bracket(t, t.index("(")) == -1 and python_prefix(t):
                out.fail("truncated call: the call is not closed", piece.start + lead)
                return
        if calls is not None:
            out.error = saved
            out.repairs.extend(notes)
            for name, args in calls:
                out.add_call(name, args)
            return
    i, pending, tries = 0, 0, 0
    while tries < MAX_CANDIDATES:
        m = _PY_LIST_START.search(text, i)
        if m is None:
            break
        k = m.start()
        j = match_py_bracket(text, k)
        if j == -1:
            if python_prefix(text[k:]):
                out.add_text(text[pending:k])
                out.fail("truncated call: the call list is not closed", piece.start + k)
                return
            break  # not calls: the rest is text
        try:
            calls, notes = python_calls(text[k : j + 1], out.functions)
        except PyCallError:
            tries += 1
            i = k + 1
            continue
        out.add_text(text[pending:k])
        out.repairs.extend(notes)
        for name, args in calls:
            out.add_call(name, args)
        pending = i = j + 1
    out.add_text(text[pending:])
