"""`hermes`: Hermes-2-Pro / Qwen `<tool_call>{json}</tool_call>` (also ERNIE-4.5, Granite 4,
Llama-3-Groq), with the fallbacks small models fall into (llama.cpp accepts them too): ```json
fences, `<function_call>`, `<tools>`, `<response>`, `<JSON>` wrappers, `<function=NAME>{args}` /
`<function name="NAME">{args}`, and a bare JSON call object."""

from __future__ import annotations

import re

from . import ParseContext, ParseResult, register
from .common import Out, Piece, bare_json, find, json_body, json_extent, load_json, quiet_json_calls, repair_note, think_pieces

_OPENER = re.compile(
    r"<(tool_call|function_call|tools|response|json)\s*>"
    r"|<function=([^>\s]+)\s*>"
    r"|<function\s+name\s*=\s*[\"']([^\"'>]+)[\"']\s*>"
    r"|```[ \t]*(?:json|tool_call|xml)?[ \t]*(?=\n|\{|\[|<)",
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
        fence = m.group(0).startswith("```")
        fname = m.group(2) or m.group(3)
        close = "```" if fence else "</function>" if fname else f"</{m.group(1)}>"
        c = find(text, close, m.end(), nocase=True)
        inner = text[m.end() : c] if c != -1 else text[m.end() :]
        nxt = c + len(close) if c != -1 else len(text)
        at, block_at = piece.start + m.end(), piece.start + m.start()
        t = inner.strip()
        if fname:
            handled = _named_args(out, fname.strip(), inner, at, block_at)
        elif t[:1] == "<" or t[:3] == "```":
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


@register("hermes")
def parse_hermes(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context, stop=("<|im_end|>", "<|endoftext|>"))
    for piece in think_pieces(out):
        _walk(out, piece)
    return out.result()
