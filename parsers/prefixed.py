"""Formats where a marker (or nothing at all) introduces JSON that runs to the end of the turn.

- `granite3`: `<|tool_call|>[…]` (Granite 3.0) / `<tool_call>[…]` (3.1+), a JSON array
- `granite_20b_fc`: `<function_call> {json}` once per call; `no_function` means no call
- `gigachat3`: `function call<|role_sep|>{json}` (`function call{json}` without special tokens)
- `functools`: `functools[…]` (Phi-4-mini, FireFunction v2)
- `xlam`: a bare JSON array (optionally fenced, after `[TOOL_CALLS]` or in `<tool_call>`)
- `command_r_plus`: `Action:` + a fenced JSON list of `{"tool_name", "parameters"}`
- `llamacpp_generic`: llama.cpp's grammar-constrained `{"tool_call"|"tool_calls"|"response"}`
"""

from __future__ import annotations

import json
import re

from . import ParseContext, ParseResult, register
from .common import (
    Out, Piece, after_marker, bare_json, call_from_obj, json_body, load_json,
    quiet_json_calls, repair_note, tagged, think_pieces,
)


def _drop_sentinels(out: Out, names: tuple[str, ...]) -> None:
    out.calls = [c for c in out.calls if c.name not in names]


@register("granite3")
def parse_granite3(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context, drop=("<response>", "</response>"))
    after_marker(out, think_pieces(out), ("<|tool_call|>", "<tool_call>"), shape="array")
    return out.result()


@register("granite_20b_fc")
def parse_granite_20b_fc(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    after_marker(out, [Piece(0, out.text)], ("<function_call>",), shape="object")
    _drop_sentinels(out, ("no_function",))
    return out.result()


@register("gigachat3")
def parse_gigachat3(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context, drop=("<|role_sep|>",))
    after_marker(out, [Piece(0, out.text)], ("function call<|role_sep|>", "function call"), shape="object")
    return out.result()


@register("functools")
def parse_functools(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    after_marker(out, [Piece(0, out.text)], ("functools",), shape="array")
    return out.result()


_FENCE = re.compile(r"```[ \t]*(?:json)?[ \t]*\n?")


def _fenced_json(out: Out, piece: Piece, **kw) -> bool:
    """```json fences in the piece: calls from them, prose around. False if there is no fence."""
    text = piece.text
    m = _FENCE.search(text)
    if m is None:
        return False
    i = 0
    while m is not None:
        close = text.find("```", m.end())
        end = close if close != -1 else len(text)
        body = text[m.end() : end]
        t = body.lstrip()
        nxt = close + 3 if close != -1 else len(text)
        out.add_text(text[i : m.start()])
        if t[:1] in ("{", "[") and quiet_json_calls(out, t, piece.start + m.end() + len(body) - len(t),
                                                    call_index=piece.start + m.start(), **kw) is not False:
            pass
        else:
            out.add_text(text[m.start() : nxt])
        i = nxt
        m = _FENCE.search(text, i) if i < len(text) else None
    out.add_text(text[i:])
    return True


@register("xlam")
def parse_xlam(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    for piece in think_pieces(out):
        if "[TOOL_CALLS]" in piece.text:
            after_marker(out, [piece], ("[TOOL_CALLS]",))
        elif "<tool_call>" in piece.text:
            tagged(out, [piece], "<tool_call>", "</tool_call>", json_body(), close_required=False)
        elif not _fenced_json(out, piece) and not bare_json(out, piece):
            out.add_text(piece.text)
    return out.result()


@register("command_r_plus")
def parse_command_r_plus(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    keys = {"name_keys": ("tool_name", "name"), "arg_keys": ("parameters", "arguments")}
    for piece in [Piece(0, out.text)]:
        k = piece.text.find("Action:")
        if k == -1:
            out.add_text(piece.text)
            continue
        out.add_text(piece.text[:k])
        rest = Piece(piece.start + k + len("Action:"), piece.text[k + len("Action:") :])
        if not _fenced_json(out, rest, **keys) and not bare_json(out, rest, **keys):
            out.add_text(piece.text[k:])
    _drop_sentinels(out, ("directly_answer",))
    return out.result()


@register("llamacpp_generic")
def parse_llamacpp_generic(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    text = out.text
    t = text.strip()
    lead = len(text) - len(text.lstrip())
    if not t.startswith("{"):
        out.add_text(text)
        return out.result()
    loaded = load_json(t)
    if not loaded.ok or not isinstance(loaded.value, dict):
        if loaded.truncated:
            out.fail(f"truncated call: {loaded.error}", lead)
        else:
            out.add_text(text)
        return out.result()
    obj = loaded.value
    if "tool_call" in obj or "tool_calls" in obj:
        items = obj.get("tool_calls") if "tool_calls" in obj else [obj.get("tool_call")]
        items = items if isinstance(items, list) else [items]
        repair_note(out, loaded)
        for item in items:
            got = call_from_obj(item)
            if isinstance(got, str):
                out.fail(f"no call: {got}", lead)
            else:
                out.add_call(*got)
    if isinstance(obj.get("response"), str):
        out.add_text(obj["response"])
    elif "response" in obj:
        out.add_text(json.dumps(obj["response"], ensure_ascii=False))
    if isinstance(obj.get("content"), str):
        out.add_text(obj["content"])
    if not any(k in obj for k in ("tool_call", "tool_calls", "response", "content")):
        out.add_text(text)  # some other JSON answer
    return out.result()
