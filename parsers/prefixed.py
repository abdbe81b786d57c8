"""Formats where a marker (or nothing at all) introduces JSON that runs to the end of the turn.

- `granite3`: `<|tool_call|>[…]` (Granite 3.0) / `<tool_call>[…]` (3.1+), a JSON array
- `granite_20b_fc`: `<function_call> {json}` once per call; `no_function` means no call
- `gigachat3`: `function call<|role_sep|>{json}` (`function call{json}` without special tokens)
- `functools`: `functools[…]` (Phi-4-mini, FireFunction v2)
- `xlam`: a bare JSON array (optionally fenced, after `[TOOL_CALLS]` or in `<tool_call>`)
- `command_r_plus`: `Action:` + a fenced JSON list of `{"tool_name", "parameters"}`
- `llamacpp_generic`: llama.cpp's grammar-constrained `{"tool_call"|"tool_calls"|"response"}`
In all of them a `<think>…</think>` block (or everything before a lone `</think>`) is reasoning: a
call mentioned there is not a call.
"""

from __future__ import annotations

import json
import re

from .result import Format, ParseContext, ParseResult
from .toolkit.json_calls import after_marker, bare_json, call_from_obj, json_body, json_call_starts, quiet_json_calls, repair_note
from .toolkit.json_text import load_json
from .toolkit.out import Out
from .toolkit.scan import FENCE, Piece, blocks, fence_opener
from .toolkit.sections import tagged, think_pieces

GRANITE3_MARKERS = ("<|tool_call|>", "<tool_call>")
GRANITE_20B_CALL = "<function_call>"
GIGACHAT3_MARKERS = ("function call<|role_sep|>", "function call")
FUNCTOOLS = "functools"
XLAM_MARK, XLAM_TAG = "[TOOL_CALLS]", "<tool_call>"
ACTION = "Action:"  # Command R+
GENERIC_CALL_KEYS = ("tool_call", "tool_calls")  # llama.cpp's generic {"tool_call": …} / {"tool_calls": […]}


def _drop_sentinels(out: Out, names: tuple[str, ...]) -> None:
    out.calls = [c for c in out.calls if c.name not in names]


def parse_granite3(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context, drop=("<response>", "</response>"))
    after_marker(out, think_pieces(out), GRANITE3_MARKERS, shape="array")
    return out.result()


GRANITE3 = Format(parse_granite3, GRANITE3_MARKERS)


def parse_granite_20b_fc(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    after_marker(out, think_pieces(out), (GRANITE_20B_CALL,), shape="object")
    _drop_sentinels(out, ("no_function",))
    return out.result()


GRANITE_20B_FC = Format(parse_granite_20b_fc, (GRANITE_20B_CALL,))


def parse_gigachat3(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context, drop=("<|role_sep|>",))
    after_marker(out, think_pieces(out), GIGACHAT3_MARKERS, shape="object")
    return out.result()


GIGACHAT3 = Format(parse_gigachat3, GIGACHAT3_MARKERS)


def parse_functools(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    after_marker(out, think_pieces(out), (FUNCTOOLS,), shape="array")
    return out.result()


FUNCTOOLS_FORMAT = Format(parse_functools, (FUNCTOOLS,))


_FENCE = re.compile(fence_opener(("json",), r"\n?"))


def _fenced_json(out: Out, piece: Piece, **kw) -> bool:
    """```json fences in the piece: calls from them, prose around. False if there is no fence."""
    text = piece.text
    if _FENCE.search(text) is None:
        return False
    for b in blocks(text, _FENCE, FENCE):
        if b.kind == "text":
            out.add_text(b.inner)
            continue
        t = b.inner.lstrip()
        at = piece.start + b.inner_start + len(b.inner) - len(t)
        if t[:1] not in ("{", "[") or quiet_json_calls(out, t, at, call_index=piece.start + b.start, **kw) is False:
            out.add_text(text[b.start : b.inner_start + len(b.inner) + (len(FENCE) if b.kind == "block" else 0)])
    return True


def parse_xlam(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    for piece in think_pieces(out):
        if XLAM_MARK in piece.text:
            after_marker(out, [piece], (XLAM_MARK,))
        elif XLAM_TAG in piece.text:
            tagged(out, [piece], XLAM_TAG, "</tool_call>", json_body(), close_required=False)
        elif not _fenced_json(out, piece) and not bare_json(out, piece):
            out.add_text(piece.text)
    return out.result()


XLAM = Format(parse_xlam, (XLAM_MARK, XLAM_TAG, FENCE) + json_call_starts())


def parse_command_r_plus(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    # after `Action:` a call object is a call: one without "parameters" (directly_answer) has none
    keys = {"name_keys": ("tool_name", "name"), "arg_keys": ("parameters", "arguments"), "args_required": False}
    for piece in think_pieces(out):
        k = piece.text.find(ACTION)
        if k == -1:
            out.add_text(piece.text)
            continue
        out.add_text(piece.text[:k])
        rest = Piece(piece.start + k + len(ACTION), piece.text[k + len(ACTION) :])
        if not _fenced_json(out, rest, **keys) and not bare_json(out, rest, **keys):
            out.add_text(piece.text[k:])
    _drop_sentinels(out, ("directly_answer",))
    return out.result()


COMMAND_R_PLUS = Format(parse_command_r_plus, (ACTION,))


def parse_llamacpp_generic(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    for piece in think_pieces(out):
        _generic_piece(out, piece)
    return out.result()


def _generic_piece(out: Out, piece: Piece) -> None:
    text = piece.text
    t = text.strip()
    lead = piece.start + len(text) - len(text.lstrip())
    if not t.startswith("{"):
        out.add_text(text)
        return
    loaded = load_json(t)
    if not loaded.ok or not isinstance(loaded.value, dict):
        if loaded.truncated:
            out.fail(f"truncated call: {loaded.error}", lead)
        else:
            out.add_text(text)
        return
    obj = loaded.value
    if any(k in obj for k in GENERIC_CALL_KEYS):
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
    if not any(k in obj for k in (*GENERIC_CALL_KEYS, "response", "content")):
        out.add_text(text)  # some other JSON answer


LLAMACPP_GENERIC = Format(parse_llamacpp_generic, json_call_starts(GENERIC_CALL_KEYS))
