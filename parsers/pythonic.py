"""Python-style call formats, all read with `ast` (never evaluated).

- `pythonic`: `[f(a=1), g(b='x')]` (Llama 3.2, ToolACE, Gemma 3 prompting; ```tool_code fences)
- `llama4_pythonic`: the same list, optionally inside `<|python_start|>…<|python_end|>`, or
  Llama-3 JSON `{"name": …, "parameters": …}` objects (what Llama 4's own template asks for)
- `olmo3`: `<function_calls>` one call per line `</function_calls>` (JSON literals allowed)
- `lfm2`: `<|tool_call_start|>[f(x=1)]<|tool_call_end|>` or a JSON array inside; LFM2.5 glues a
  bare list to the prose
- `gorilla_openfunctions_v2`: `f(a=1)` calls delimited by `<<function>>`
- `nexusraven_v2`: `Call: f(a=1); g(b=2)<bot_end>` then an optional `Thought: …` explanation
"""

from __future__ import annotations

import re

from .result import Format, ParseContext, ParseResult
from .toolkit.json_calls import CANDIDATE_KEYS, JSON_CALL_START, json_body, json_call_starts, json_calls_in_prose
from .toolkit.out import Out
from .toolkit.python_calls import CALL_LIST, PY_LIST_START, add_python_calls, python_list_in_text
from .toolkit.scan import FENCE, Piece, blocks, fence_opener, split_at
from .toolkit.sections import tagged, think_pieces

_FENCE = re.compile(fence_opener(("tool_code", "python", "py", "tool_call"), r"\n"))
PYTHON_START, PYTHON_END = "<|python_start|>", "<|python_end|>"  # Llama 4
OLMO3_CALLS = "<function_calls>"
LFM2_CALL = "<|tool_call_start|>"
GORILLA_CALL = "<<function>>"
NEXUSRAVEN_CALL = "Call:"


def _unfence(out: Out, piece: Piece) -> list[Piece]:
    """Pieces with ```tool_code / ```python fences opened up (the fence lines dropped)."""
    return [Piece(piece.start + b.inner_start, b.inner) for b in blocks(piece.text, _FENCE, FENCE) if b.inner]


def _pythonic(out: Out, pieces: list[Piece]) -> None:
    for piece in pieces:
        for p in _unfence(out, piece):
            python_list_in_text(out, p)


def parse_pythonic(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    _pythonic(out, think_pieces(out))
    return out.result()


PYTHONIC = Format(parse_pythonic, (CALL_LIST, FENCE))


def _llama4_text(out: Out, piece: Piece) -> None:
    """A pythonic list, or Llama-3-style JSON call objects: Llama 4's own chat template asks for
    `{"name": …, "parameters": …}` and writes past calls that way (after `<|python_end|>`), so
    the model answers in either form; whichever comes first in the text is read."""
    py, js = PY_LIST_START.search(piece.text), JSON_CALL_START.search(piece.text)
    if js and (py is None or js.start() < py.start()):
        json_calls_in_prose(out, piece)
    else:
        _pythonic(out, [piece])


def _llama4_section(out: Out, body: str, index: int, block_index: int, closed: bool) -> bool:
    _llama4_text(out, Piece(index, body))
    return True


def parse_llama4_pythonic(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    tagged(out, think_pieces(out), PYTHON_START, PYTHON_END, _llama4_section, close_required=False,
           on_text=_llama4_text)
    return out.result()


LLAMA4_PYTHONIC = Format(parse_llama4_pythonic, (PYTHON_START, CALL_LIST) + json_call_starts(CANDIDATE_KEYS))


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


def parse_olmo3(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    tagged(out, think_pieces(out), OLMO3_CALLS, "</function_calls>", _python_body("call lines"),
           close_required=False)
    return out.result()


OLMO3 = Format(parse_olmo3, (OLMO3_CALLS,))


_lfm2_json = json_body()
_lfm2_python = _python_body("call list")


def _lfm2_body(out: Out, body: str, index: int, block_index: int, closed: bool) -> bool:
    t = body.lstrip()
    if t.startswith("{") or re.match(r"\[\s*[{\]]", t):
        return _lfm2_json(out, body, index, block_index, closed)
    return _lfm2_python(out, body, index, block_index, closed)


def _lfm2_text(out: Out, piece: Piece) -> None:
    python_list_in_text(out, piece, bare_call=False)  # LFM2.5: the list without the wrapper


def parse_lfm2(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    tagged(out, think_pieces(out), LFM2_CALL, "<|tool_call_end|>", _lfm2_body,
           close_required=False, on_text=_lfm2_text)
    return out.result()


LFM2 = Format(parse_lfm2, (LFM2_CALL, CALL_LIST))


def parse_gorilla(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    for piece in think_pieces(out):
        for chunk in split_at(piece.text, GORILLA_CALL, piece.start):
            if chunk.text.strip():
                python_list_in_text(out, chunk)
    return out.result()


GORILLA_OPENFUNCTIONS_V2 = Format(parse_gorilla, (GORILLA_CALL,))


def parse_nexusraven(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    text = out.text
    end = text.find("<bot_end>")
    head, tail = (text, "") if end == -1 else (text[:end], text[end + len("<bot_end>") :])
    if end == -1 and "\nThought:" in head:
        k = head.index("\nThought:")
        head, tail = head[:k], head[k:]
    c = head.find(NEXUSRAVEN_CALL)
    if c == -1:
        out.add_text(head)
    else:
        out.add_text(head[:c])
        body = head[c + len(NEXUSRAVEN_CALL) :]
        lead = len(body) - len(body.lstrip())
        if not add_python_calls(out, body, c + len(NEXUSRAVEN_CALL) + lead, label="Call line") and end == -1:
            out.error = None
            out.fail("truncated call: unfinished Call line", c)
    t = tail.strip()
    if t:
        out.add_thought(t[len("Thought:") :] if t.startswith("Thought:") else t)
    return out.result()


NEXUSRAVEN_V2 = Format(parse_nexusraven, (NEXUSRAVEN_CALL,))
