"""Llama 3.x formats.

- `llama3_json`: `{"name": …, "parameters": {…}}` (optionally after `<|python_tag|>`), possibly
  several separated by `;`, possibly inside prose; invalid JSON stays text.
- `llama3_builtin`: `<|python_tag|>tool.call(k=v)` for built-in tools (read with `ast`); raw
  Python after the tag is a `code_interpreter` call; JSON custom calls as in `llama3_json`.
Reasoning-tuned Llamas think in `<think>…</think>` first: a call mentioned there is not a call.
"""

from __future__ import annotations

import re

from .result import Format, ParseContext, ParseResult
from .toolkit.json_calls import CANDIDATE_KEYS, json_call_starts, json_calls_in_prose
from .toolkit.out import Out
from .toolkit.scan import Piece
from .toolkit.python_calls import PyCallError, python_calls
from .toolkit.sections import think_pieces

PYTHON_TAG = "<|python_tag|>"


def parse_llama3_json(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context, stop=("<|eot_id|>", "<|eom_id|>"))
    for piece in think_pieces(out):
        json_calls_in_prose(out, Piece(piece.start, piece.text.replace(PYTHON_TAG, " ")))
    return out.result()


LLAMA3_JSON = Format(parse_llama3_json, (PYTHON_TAG,) + json_call_starts(CANDIDATE_KEYS))


def parse_llama3_builtin(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    for piece in think_pieces(out):
        _builtin_piece(out, piece)
    return out.result()


def _builtin_piece(out: Out, piece: Piece) -> None:
    text = piece.text
    tag = text.find(PYTHON_TAG)
    if tag == -1:
        json_calls_in_prose(out, piece)
        return
    out.add_text(text[:tag])
    start = tag + len(PYTHON_TAG)
    body = text[start:]
    for stop in ("<|eom_id|>", "<|eot_id|>"):
        body = body.split(stop, 1)[0]
    t = body.strip()
    at = piece.start + tag  # where the tag is in out.text, for errors
    if t.startswith("{"):
        json_calls_in_prose(out, Piece(piece.start + start, body))
        return
    try:
        calls, notes = python_calls(t, out.functions)
        if not calls or not all(name.endswith(".call") for name, _ in calls):
            raise PyCallError("not tool.call(...)")
    except PyCallError:
        if re.match(r"[A-Za-z_][\w.]*\.call\(", t):  # a tool.call(...) cut off or broken
            out.fail("truncated call: unfinished tool.call(...) after <|python_tag|>", at)
        elif t:
            out.note("raw code after <|python_tag|> read as a code_interpreter call")
            out.add_call("code_interpreter", {"code": t})
        else:
            out.fail("truncated call: <|python_tag|> at the end of the output", at)
        return
    for n in notes:
        out.note(n)
    for name, args in calls:
        out.add_call(name[: -len(".call")], args)


LLAMA3_BUILTIN = Format(parse_llama3_builtin, (PYTHON_TAG,) + json_call_starts(CANDIDATE_KEYS))
