"""Python-style call formats, all read with `ast` (never evaluated).

- `pythonic`: `[f(a=1), g(b='x')]` (Llama 3.2, ToolACE, Gemma 3 prompting; ```tool_code fences)
- `llama4_pythonic`: the same list, optionally inside `<|python_start|>…<|python_end|>`
- `olmo3`: `<function_calls>` one call per line `</function_calls>` (JSON literals allowed)
- `lfm2`: `<|tool_call_start|>[f(x=1)]<|tool_call_end|>` or a JSON array inside; LFM2.5 glues a
  bare list to the prose
- `gorilla_openfunctions_v2`: `f(a=1)` calls delimited by `<<function>>`
- `nexusraven_v2`: `Call: f(a=1); g(b=2)<bot_end>` then an optional `Thought: …` explanation
"""

from __future__ import annotations

import re

from . import ParseContext, ParseResult, register
from .common import Out, Piece, add_python_calls, json_body, python_list_in_text, tagged, think_pieces

_FENCE = re.compile(r"```[ \t]*(tool_code|python|py|tool_call)?[ \t]*\n")


def _unfence(out: Out, piece: Piece) -> list[Piece]:
    """Pieces with ```tool_code / ```python fences opened up (the fence lines dropped)."""
    text, result, i = piece.text, [], 0
    for m in _FENCE.finditer(text):
        if m.start() < i:
            continue
        close = text.find("```", m.end())
        result.append(Piece(piece.start + i, text[i : m.start()]))
        end = close if close != -1 else len(text)
        result.append(Piece(piece.start + m.end(), text[m.end() : end]))
        i = close + 3 if close != -1 else len(text)
    result.append(Piece(piece.start + i, text[i:]))
    return [p for p in result if p.text]


def _pythonic(out: Out, pieces: list[Piece]) -> None:
    for piece in pieces:
        for p in _unfence(out, piece):
            python_list_in_text(out, p)


@register("pythonic")
def parse_pythonic(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    _pythonic(out, think_pieces(out))
    return out.result()


@register("llama4_pythonic")
def parse_llama4_pythonic(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    text = out.text
    pieces = [Piece(0, text)]
    if "<|python_start|>" in text:
        s = text.index("<|python_start|>")
        e = text.find("<|python_end|>", s)
        e = len(text) if e == -1 else e
        out.add_text(text[:s])
        pieces = [Piece(s + len("<|python_start|>"), text[s + len("<|python_start|>") : e])]
        rest = text[e:]
        _pythonic(out, pieces)
        out.add_text(rest)
        return out.result()
    _pythonic(out, pieces)
    return out.result()


def _python_body(label: str):
    def on_body(out: Out, body: str, index: int, block_index: int, closed: bool) -> bool:
        lead = len(body) - len(body.lstrip())
        if not body.strip():
            if not closed:
                out.fail(f"truncated call: empty {label}", block_index)
            return closed
        if add_python_calls(out, body, index + lead, label=label):
            return True
        if not closed:  # no closing tag and not readable: the call was cut off
            out.error = None
            out.fail(f"truncated call: unfinished {label}", block_index)
            return True
        return False

    return on_body


@register("olmo3")
def parse_olmo3(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    tagged(out, think_pieces(out), "<function_calls>", "</function_calls>", _python_body("call lines"),
           close_required=False)
    return out.result()


_lfm2_json = json_body()
_lfm2_python = _python_body("call list")


def _lfm2_body(out: Out, body: str, index: int, block_index: int, closed: bool) -> bool:
    t = body.lstrip()
    if t.startswith("{") or re.match(r"\[\s*[{\]]", t):
        return _lfm2_json(out, body, index, block_index, closed)
    return _lfm2_python(out, body, index, block_index, closed)


def _lfm2_text(out: Out, piece: Piece) -> None:
    python_list_in_text(out, piece, bare_call=False)  # LFM2.5: the list without the wrapper


@register("lfm2")
def parse_lfm2(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    tagged(out, think_pieces(out), "<|tool_call_start|>", "<|tool_call_end|>", _lfm2_body,
           close_required=False, on_text=_lfm2_text)
    return out.result()


@register("gorilla_openfunctions_v2")
def parse_gorilla(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    text = out.text
    at = 0
    for chunk in text.split("<<function>>"):
        if chunk.strip():
            python_list_in_text(out, Piece(at, chunk))
        at += len(chunk) + len("<<function>>")
    return out.result()


@register("nexusraven_v2")
def parse_nexusraven(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    text = out.text
    end = text.find("<bot_end>")
    head, tail = (text, "") if end == -1 else (text[:end], text[end + len("<bot_end>") :])
    if end == -1 and "\nThought:" in head:
        k = head.index("\nThought:")
        head, tail = head[:k], head[k:]
    c = head.find("Call:")
    if c == -1:
        out.add_text(head)
    else:
        out.add_text(head[:c])
        body = head[c + len("Call:") :]
        lead = len(body) - len(body.lstrip())
        if not add_python_calls(out, body, c + len("Call:") + lead, label="Call line") and end == -1:
            out.error = None
            out.fail("truncated call: unfinished Call line", c)
    t = tail.strip()
    if t:
        out.add_thought(t[len("Thought:") :] if t.startswith("Thought:") else t)
    return out.result()
