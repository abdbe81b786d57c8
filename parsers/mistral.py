"""Mistral `[TOOL_CALLS]` formats.

- `mistral_v3`: `[TOOL_CALLS] [{"name", "arguments", "id"}, …]` (pre-v11 tokenizers); without
  special tokens the marker vanishes and a bare JSON array remains.
- `mistral_v11`: `[TOOL_CALLS]NAME[ARGS]{json}` repeated per call (`[ARGS]` may vanish:
  `[TOOL_CALLS]NAME{json}`); `[THINK]…[/THINK]` reasoning.
- `mistral_v13`: `[TOOL_CALLS]NAME[CALL_ID]ID[ARGS]{json}`.
The v11/v13 parser accepts all three shapes, so a model that mixes them still parses.
"""

from __future__ import annotations

import re

from .result import Format, ParseContext, ParseResult
from .toolkit.json_calls import after_marker, bare_json, json_calls, named_json_call
from .toolkit.json_text import json_extent
from .toolkit.out import Out
from .toolkit.scan import split_at
from .toolkit.sections import split_reasoning

MARK = "[TOOL_CALLS]"
BARE_ARRAY = "[{"  # v3's call array as it is left when the server does not show special tokens


def parse_mistral_v3(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    pieces = split_reasoning(out, "[THINK]", "[/THINK]")
    if any(MARK in p.text for p in pieces):
        after_marker(out, pieces, (MARK,))
    else:
        for p in pieces:
            if not (p.text.lstrip().startswith(BARE_ARRAY) and bare_json(out, p)):
                out.add_text(p.text)
    return out.result()


MISTRAL_V3 = Format(parse_mistral_v3, (MARK, BARE_ARRAY))

_NAME = re.compile(r"\s*([A-Za-z_][\w.\-]*)\s*")


def _segment(out: Out, seg: str, base: int, marker_at: int) -> None:
    lead = len(seg) - len(seg.lstrip())
    if lead >= len(seg):
        out.fail("truncated call: [TOOL_CALLS] at the end of the output", marker_at)
        return
    if seg[lead] in "[{":  # v3 style JSON after the marker
        body, end = json_extent(seg, lead)
        if json_calls(out, body, base + lead, call_index=marker_at) is False:
            out.add_text(MARK + seg[: end])
        out.add_text(seg[end:])
        return
    m = _NAME.match(seg)
    if m is None:
        out.add_text(MARK + seg)
        return
    name, i = m.group(1), m.end()
    if seg.startswith("[CALL_ID]", i):
        a = seg.find("[ARGS]", i)
        if a == -1:
            out.fail(f"truncated call: {name} has no [ARGS]", marker_at)
            return
        i = a
    if seg.startswith("[ARGS]", i):
        i += len("[ARGS]")
    end = named_json_call(out, name, seg[i:], base + i, marker_at)
    out.add_text(seg[i + end :])


def parse_mistral_v11(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    for piece in split_reasoning(out, "[THINK]", "[/THINK]"):
        first, *segments = split_at(piece.text, MARK, piece.start)
        out.add_text(first.text)
        for seg in segments:
            _segment(out, seg.text, seg.start, seg.start - len(MARK))
    return out.result()


MISTRAL_V11 = MISTRAL_V13 = Format(parse_mistral_v11, (MARK,))
