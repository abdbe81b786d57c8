"""`hermes`: Hermes-2-Pro / Qwen `<tool_call>{json}</tool_call>` (also ERNIE-4.5, Granite 4,
Llama-3-Groq), with the fallbacks small models fall into (llama.cpp accepts them too): ```json
fences, `<function_call>`, `<tools>`, `<response>`, `<JSON>` wrappers, `<function=NAME>{args}` /
`<function name="NAME">{args}`, and a bare JSON call object."""

from __future__ import annotations

import re

from .result import Format, ParseContext, ParseResult
from .toolkit.json_calls import bare_json, json_body, json_call_starts, quiet_json_calls, repair_note
from .toolkit.json_text import json_extent, load_json
from .toolkit.out import Out
from .toolkit.scan import FENCE, Piece, fence_opener, find
from .toolkit.sections import think_pieces

TAGS = ("tool_call", "function_call", "tools", "response", "JSON")  # <TAG>{json}</TAG>, any case
FUNCTION_EQ, FUNCTION_NAME = "<function=", "<function name="  # <function=NAME>{args}, <function name="NAME">{args}
FENCE_LANGS = ("json", "tool_call", "xml")
_FENCE_OPENER = fence_opener(FENCE_LANGS, r"(?=\n|\{|\[|<)")  # a fence around a call or a tag
_OPENER = re.compile(
    rf"<({'|'.join(TAGS)})\s*>"
    rf"|{FUNCTION_EQ}([^>\s]+)\s*>"
    r"|<function\s+name\s*=\s*[\"']([^\"'>]+)[\"']\s*>"
    rf"|{_FENCE_OPENER}",
    re.IGNORECASE,
)
_tag_body = json_body()


def _named_args(out: Out, name: str, body: str, index: int, block_index: int) -> bool:
    t = body.strip()
    if not t:
        out.add_call(name, {})
        return True
    if t[0] != "{":
        return False
    lead = len(body) - len(body.lstrip())
    seg, end = json_extent(body, lead)
    loaded = load_json(seg)
    if not loaded.ok:
        out.fail(("truncated call: " if loaded.truncated else f"no call to {name}: ") + loaded.error,
                 block_index)
        return loaded.truncated  # a cut-off call is dropped (error set); bad JSON stays text
    if not isinstance(loaded.value, dict):
        return False
    repair_note(out, loaded)
    out.add_call(name, loaded.value)
    out.add_text(body[end:])
    return True


def _walk(out: Out, piece: Piece, depth: int = 0) -> None:
    text, i = piece.text, 0
    while True:
        m = _OPENER.search(text, i)
        if m is None:
            rest = Piece(piece.start + i, text[i:])
            if not bare_json(out, rest):
                out.add_text(rest.text)
            return
        out.add_text(text[i : m.start()])
        fence = m.group(0).startswith(FENCE)
        fname = m.group(2) or m.group(3)
        close = FENCE if fence else "</function>" if fname else f"</{m.group(1)}>"
        c = find(text, close, m.end(), nocase=True)
        inner = text[m.end() : c] if c != -1 else text[m.end() :]
        nxt = c + len(close) if c != -1 else len(text)
        at, block_at = piece.start + m.end(), piece.start + m.start()
        t = inner.strip()
        if fname:
            handled = _named_args(out, fname.strip(), inner, at, block_at)
        elif t[:1] == "<" or t[:3] == FENCE:
            if depth < 3:
                _walk(out, Piece(at, inner), depth + 1)
                handled = True
            else:
                handled = False
        elif fence:
            lead = len(inner) - len(inner.lstrip())
            handled = bool(t) and t[0] in "{[" and quiet_json_calls(
                out, inner, at + lead, call_index=block_at) is not False
        else:
            handled = _tag_body(out, inner, at, block_at, c != -1)
        if not handled:
            out.add_text(text[m.start() : nxt])
        i = nxt


def parse_hermes(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context, stop=("<|im_end|>", "<|endoftext|>"))
    for piece in think_pieces(out):
        _walk(out, piece)
    return out.result()


HERMES = Format(parse_hermes, tuple(f"<{t}>" for t in TAGS) + (FUNCTION_EQ, FUNCTION_NAME, FENCE) + json_call_starts())
