"""Llama 3.x formats.

- `llama3_json`: `{"name": …, "parameters": {…}}` (optionally after `<|python_tag|>`), possibly
  several separated by `;`, possibly inside prose; invalid JSON stays text.
- `llama3_builtin`: `<|python_tag|>tool.call(k=v)` for built-in tools (read with `ast`); raw
  Python after the tag is a `code_interpreter` call; JSON custom calls as in `llama3_json`.
"""

from __future__ import annotations

import re

from .result import Format, ParseContext, ParseResult
from .toolkit.json_calls import json_call_starts, quiet_json_calls
from .toolkit.json_text import json_extent
from .toolkit.limits import MAX_CANDIDATES
from .toolkit.out import Out
from .toolkit.scan import Piece
from .toolkit.python_calls import PyCallError, python_calls

PYTHON_TAG = "<|python_tag|>"
CANDIDATE_KEYS = ("name", "function", "type")  # what a call object in prose may start with
_CANDIDATE = re.compile(r'\{\s*"(?:' + "|".join(CANDIDATE_KEYS) + ')"')
_SEPARATORS = " \t\r\n;"


def json_calls_in_prose(out: Out, piece: Piece) -> None:
    """Every `{"name": …}` call object in the text, prose between them kept as content."""
    text, i, failures = piece.text, 0, 0
    pending = 0  # start of text not yet given to content
    budget = 2 * len(text) + 100_000  # characters the bracket matching may scan in all
    while failures < MAX_CANDIDATES and budget > 0:
        m = _CANDIDATE.search(text, i)
        if m is None:
            break
        k = m.start()
        seg, end = json_extent(text, k)
        budget -= end - k
        found = quiet_json_calls(out, seg, piece.start + k, call_index=piece.start + k)
        if found is False:
            if end == len(text):
                break  # unclosed up to the end: later candidates are inside it
            failures += 1
            i = k + 1
            continue
        out.add_text(text[pending:k].strip(_SEPARATORS))
        pending = i = end
    else:
        gave_up_at = _CANDIDATE.search(text, i)
        if gave_up_at:  # a limit stopped the scan: later calls are not read, so say where
            out.fail(f"no call: stopped looking for calls here, after {failures} places that looked like one "
                     f"(at most {MAX_CANDIDATES} are tried)", piece.start + gave_up_at.start())
    out.add_text(text[pending:].strip(_SEPARATORS))


def parse_llama3_json(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context, stop=("<|eot_id|>", "<|eom_id|>"))
    json_calls_in_prose(out, Piece(0, out.text.replace(PYTHON_TAG, " ")))
    return out.result()


LLAMA3_JSON = Format(parse_llama3_json, (PYTHON_TAG,) + json_call_starts(CANDIDATE_KEYS))


def parse_llama3_builtin(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    text = out.text
    tag = text.find(PYTHON_TAG)
    if tag == -1:
        json_calls_in_prose(out, Piece(0, text))
        return out.result()
    out.add_text(text[:tag])
    start = tag + len(PYTHON_TAG)
    body = text[start:]
    for stop in ("<|eom_id|>", "<|eot_id|>"):
        body = body.split(stop, 1)[0]
    t = body.strip()
    if t.startswith("{"):
        json_calls_in_prose(out, Piece(start, body))
        return out.result()
    try:
        calls, notes = python_calls(t, out.functions)
        if not calls or not all(name.endswith(".call") for name, _ in calls):
            raise PyCallError("not tool.call(...)")
    except PyCallError:
        if re.match(r"[A-Za-z_][\w.]*\.call\(", t):  # a tool.call(...) cut off or broken
            out.fail("truncated call: unfinished tool.call(...) after <|python_tag|>", tag)
        elif t:
            out.note("raw code after <|python_tag|> read as a code_interpreter call")
            out.add_call("code_interpreter", {"code": t})
        else:
            out.fail("truncated call: <|python_tag|> at the end of the output", tag)
        return out.result()
    for n in notes:
        out.note(n)
    for name, args in calls:
        out.add_call(name[: -len(".call")], args)
    return out.result()


LLAMA3_BUILTIN = Format(parse_llama3_builtin, (PYTHON_TAG,) + json_call_starts(CANDIDATE_KEYS))
