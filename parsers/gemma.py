"""Google's non-JSON call syntax: `call:NAME{key:value,…}` with bare keys and a special string
delimiter (no escaping inside strings).

- `gemma4`: `<|tool_call>call:NAME{city:<|"|>Paris<|"|>}<tool_call|>`; reasoning
  `<|channel>thought⏎…<channel|>`
- `functiongemma`: `<start_function_call>call:NAME{city:<escape>Paris<escape>}<end_function_call>`
"""

from __future__ import annotations

import re

from .result import Format, ParseContext, ParseResult
from .toolkit.json_text import NUMBER
from .toolkit.limits import MAX_NESTING
from .toolkit.out import Out
from .toolkit.scan import Piece
from .toolkit.sections import split_reasoning

GEMMA4_CALL, GEMMA4_END, GEMMA4_STRING = "<|tool_call>", "<tool_call|>", '<|"|>'
FG_CALL, FG_END, FG_STRING = "<start_function_call>", "<end_function_call>", "<escape>"


class _Cut(Exception):
    """The text ended inside the value."""


class _Bad(Exception):
    pass


def _scalar(token: str):
    t = token.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none"):
        return None
    if NUMBER.fullmatch(t):
        return float(t) if any(c in t for c in ".eE") else int(t)
    return t


class _Reader:
    def __init__(self, text: str, delim: str):
        self.s, self.d = text, delim

    def ws(self, i: int) -> int:
        while i < len(self.s) and self.s[i].isspace():
            i += 1
        if i >= len(self.s):
            raise _Cut()
        return i

    def string(self, i: int) -> tuple[str, int]:
        j = self.s.find(self.d, i + len(self.d))
        if j == -1:
            raise _Cut()
        return self.s[i + len(self.d) : j], j + len(self.d)

    def value(self, i: int, depth: int = 0):
        if depth > MAX_NESTING:
            raise _Bad("nested too deep")
        i = self.ws(i)
        s = self.s
        if s.startswith(self.d, i):
            return self.string(i)
        if s[i] == "{":
            return self.obj(i, depth)
        if s[i] == "[":
            items, i = [], self.ws(i + 1)
            if s[i] == "]":
                return items, i + 1
            while True:
                v, i = self.value(i, depth + 1)
                items.append(v)
                i = self.ws(i)
                if s[i] == ",":
                    i += 1
                elif s[i] == "]":
                    return items, i + 1
                else:
                    raise _Bad(f"unexpected {s[i]!r} in a list")
        j = i
        while j < len(s) and s[j] not in ",}]" and not s.startswith(self.d, j) and s[j] != "<":
            j += 1
        if j >= len(s):
            raise _Cut()
        return _scalar(s[i:j]), j

    def obj(self, i: int, depth: int = 0):
        s, result = self.s, {}
        i = self.ws(i + 1)
        if s[i] == "}":
            return result, i + 1
        while True:
            i = self.ws(i)
            if s.startswith(self.d, i):
                key, i = self.string(i)
            else:
                c = s.find(":", i)
                if c == -1:
                    raise _Cut()
                key, i = s[i:c].strip(), c
            i = self.ws(i)
            if s[i] != ":":
                raise _Bad(f"expected ':' after key {key!r}")
            v, i = self.value(i + 1, depth + 1)
            result[key] = v
            i = self.ws(i)
            if s[i] == ",":
                i += 1
            elif s[i] == "}":
                return result, i + 1
            else:
                raise _Bad(f"unexpected {s[i]!r} in an object")


def _calls(out: Out, piece: Piece, open_tag: str, close_tag: str, delim: str) -> None:
    text, i = piece.text, 0
    reader = _Reader(text, delim)
    while True:
        k = text.find(open_tag, i)
        if k == -1:
            break
        out.add_text(text[i:k])
        at = k + len(open_tag)
        m = re.compile(r"\s*call:([\w.\-]+)\s*").match(text, at)
        if m is None or m.end() >= len(text) or text[m.end()] != "{":
            if m is not None and m.end() >= len(text) or not text[at:].strip():
                out.fail(f"truncated call: {open_tag} at the end of the output", piece.start + k)
                return
            out.fail(f"no call: {open_tag} not followed by call:NAME{{…}}", piece.start + k)
            c = text.find(close_tag, at)
            i = len(text) if c == -1 else c + len(close_tag)
            continue
        try:
            args, end = reader.obj(m.end())
        except _Cut:
            out.fail("truncated call: the arguments are cut off", piece.start + k)
            return
        except _Bad as e:
            out.fail(f"no call: invalid arguments for {m.group(1)}: {e}", piece.start + m.end())
            c = text.find(close_tag, at)
            i = len(text) if c == -1 else c + len(close_tag)
            continue
        out.add_call(m.group(1), args)
        rest = text[end:]
        stripped = rest.lstrip()
        i = end + (len(rest) - len(stripped) + len(close_tag) if stripped.startswith(close_tag) else 0)
    out.add_text(text[i:])


def parse_gemma4(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context, drop=("<|turn>", "<turn|>"))
    pieces = split_reasoning(out, "<|channel>", "<channel|>")
    out.thoughts = [t[len("thought"):].strip() if t.startswith("thought") else t for t in out.thoughts]
    out.thoughts = [t for t in out.thoughts if t]
    for piece in pieces:
        _calls(out, piece, GEMMA4_CALL, GEMMA4_END, GEMMA4_STRING)
    return out.result()


GEMMA4 = Format(parse_gemma4, (GEMMA4_CALL,))


def parse_functiongemma(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context, drop=("<end_of_turn>", "<start_function_response>"))
    _calls(out, Piece(0, out.text), FG_CALL, FG_END, FG_STRING)
    return out.result()


FUNCTIONGEMMA = Format(parse_functiongemma, (FG_CALL,))
