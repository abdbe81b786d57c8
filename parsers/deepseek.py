"""DeepSeek and Kimi special-token formats (name and JSON arguments between marker tokens).

- `deepseek_v3`: `<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME⏎```json⏎{…}⏎```
  <｜tool▁call▁end｜>…<｜tool▁calls▁end｜>`; the section may also open with the degenerate
  `<｜tool▁calls｜>` or the spellings some builds emit (`_`, spaces, `\\_` for `▁`)
- `deepseek_v31`: `<｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{json}<｜tool▁call▁end｜>`; calls emitted in a
  reasoning block that is never closed are real
- `kimi_k2`: `<|tool_calls_section_begin|><|tool_call_begin|>functions.NAME:IDX
  <|tool_call_argument_begin|>{json}<|tool_call_end|>…<|tool_calls_section_end|>`; K2-Thinking
  emits calls inside an unclosed `<think>` without section or end markers (real calls)
The markers use FULLWIDTH `｜` and `▁` and are matched exactly.
"""

from __future__ import annotations

import re

from .result import Format, ParseContext, ParseResult
from .toolkit.json_calls import named_json_call
from .toolkit.out import Out
from .toolkit.scan import Markers, Piece, fence_opener, split_at, strip_fence
from .toolkit.sections import split_reasoning

# the opener as the tokenizer has it, then the ones llama.cpp also accepts from DeepSeek-R1 builds
DS_BEGINS = ("<｜tool▁calls▁begin｜>", "<｜tool▁calls｜>", "<｜tool_calls_begin｜>", "<｜tool calls begin｜>",
             "<｜tool\\_calls\\_begin｜>")
DS_END = "<｜tool▁calls▁end｜>"
END_OF_SENTENCE = "<｜end▁of▁sentence｜>"
DS_CALL, DS_CALL_END, DS_SEP = "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"


def _section_walk(out: Out, piece: Piece, begins: tuple[str, ...], end_marker: str, call_marker: str, on_call) -> None:
    """Prose / call-section walk shared by DeepSeek and Kimi: calls are the `call_marker` chunks of
    each section (a section may also start directly with a call marker)."""
    text, i = piece.text, 0
    finder = Markers(text, begins + (call_marker,))
    while i < len(text):
        k, which = finder.find(i)
        if k == -1:
            break
        out.add_text(text[i:k])
        body_start = k if which == call_marker else k + len(which)
        e = text.find(end_marker, body_start)
        body_end = len(text) if e == -1 else e
        first, *calls = split_at(text[body_start:body_end], call_marker, piece.start + body_start)
        if first.text.strip():
            out.add_text(first.text)
        for chunk in calls:
            on_call(out, chunk.text, chunk.start, chunk.start - len(call_marker))
        if not calls and e == -1:
            out.fail("truncated call: the call section has no call", piece.start + k)
        i = body_end + len(end_marker) if e != -1 else len(text)
    out.add_text(text[i:])


_ARGS_FENCE = re.compile(fence_opener(None, r"\n?"))  # ```json⏎{…}⏎``` around V3's arguments


def _ds_call(out: Out, chunk: str, index: int, call_index: int) -> None:
    e = chunk.find(DS_CALL_END)
    chunk = chunk if e == -1 else chunk[:e]
    s = chunk.find(DS_SEP)
    if s == -1:
        out.fail("truncated call: no <｜tool▁sep｜> in the call", call_index)
        return
    kind, after = chunk[:s].strip(), chunk[s + len(DS_SEP) :]
    after_at = index + s + len(DS_SEP)
    if kind in ("function", ""):  # V3: type, then NAME on the line after the separator
        nl = after.find("\n")
        fence = after.find("```")
        cut = min(x for x in (nl, fence, after.find("{"), len(after)) if x != -1)
        name, args, args_at = after[:cut].strip(), after[cut:], after_at + cut
    else:  # V3.1: NAME<｜tool▁sep｜>{json}
        name, args, args_at = kind, after, after_at
    if not name:
        out.fail("truncated call: the call has no function name", call_index)
        return
    inner, off = strip_fence(args, _ARGS_FENCE)
    named_json_call(out, name, inner, args_at + off, call_index)


def parse_deepseek_v3(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context, stop=(END_OF_SENTENCE,))
    for piece in split_reasoning(out):
        _section_walk(out, piece, DS_BEGINS, DS_END, DS_CALL, _ds_call)
    return out.result()


def parse_deepseek_v31(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context, stop=(END_OF_SENTENCE,))
    for piece in split_reasoning(out, calls_in_unclosed=DS_BEGINS + (DS_CALL,)):
        _section_walk(out, piece, DS_BEGINS, DS_END, DS_CALL, _ds_call)
    return out.result()


DEEPSEEK_V3 = Format(parse_deepseek_v3, DS_BEGINS + (DS_CALL,))
DEEPSEEK_V31 = Format(parse_deepseek_v31, DS_BEGINS + (DS_CALL,))

KIMI_BEGIN, KIMI_END = "<|tool_calls_section_begin|>", "<|tool_calls_section_end|>"
KIMI_CALL, KIMI_CALL_END, KIMI_ARGS = "<|tool_call_begin|>", "<|tool_call_end|>", "<|tool_call_argument_begin|>"
_KIMI_ID = re.compile(r"(?:functions\.)?([^\s:<>]+):(\d+)")


def _kimi_call(out: Out, chunk: str, index: int, call_index: int) -> None:
    e = chunk.find(KIMI_CALL_END)
    chunk = chunk if e == -1 else chunk[:e]
    a = chunk.find(KIMI_ARGS)
    if a == -1:
        out.fail("truncated call: no <|tool_call_argument_begin|> in the call", call_index)
        return
    call_id = chunk[:a].strip()
    m = _KIMI_ID.fullmatch(call_id)
    if m is None:
        out.fail(f"no call: malformed call id {call_id!r} (expected functions.NAME:INDEX)", index)
        return
    named_json_call(out, m.group(1), chunk[a + len(KIMI_ARGS) :], index + a + len(KIMI_ARGS), call_index)


def parse_kimi_k2(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    for piece in split_reasoning(out, calls_in_unclosed=(KIMI_BEGIN, KIMI_CALL)):
        _section_walk(out, piece, (KIMI_BEGIN,), KIMI_END, KIMI_CALL, _kimi_call)
    return out.result()


KIMI_K2 = Format(parse_kimi_k2, (KIMI_BEGIN, KIMI_CALL))
