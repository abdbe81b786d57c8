"""Formats whose calls are JSON between an opening and a closing marker.

- `longcat`: `<longcat_tool_call>{json}</longcat_tool_call>` (consecutive pairs)
- `phi4_mini_tags`: `<|tool_call|>{json}<|/tool_call|>` (llama.cpp's Phi-4-mini template)
- `internlm2`: `<|action_start|><|plugin|>{"name", "parameters"}<|action_end|>`
- `minimax_m1`: `<tool_calls>` one JSON object per line `</tool_calls>`
- `jamba`, `hunyuan_a13b`, `apriel`: `<tool_calls>[…]</tool_calls>`
- `nemotron_v2`: `<TOOLCALL>[…]</TOOLCALL>`
- `apertus`: `<|tools_prefix|>[{"NAME": {args}}]<|tools_suffix|>`
- `command_r7b`: `<|START_ACTION|>[{"tool_name", "parameters"}]<|END_ACTION|>`

A missing closing marker is tolerated when the JSON inside is complete; JSON cut off is a
truncated call.
"""

from __future__ import annotations

from .result import Format, ParseContext, ParseResult
from .toolkit.json_calls import call_from_obj, json_body, json_sequence
from .toolkit.out import Out
from .toolkit.scan import Piece
from .toolkit.sections import split_reasoning, tagged, think_pieces


def _simple(open_tag: str, close_tag: str, *, shape: str = "any", reasoning: bool = True, drop=(), **kw) -> Format:
    body = json_body(shape, **kw)

    def parse(raw: str, context: ParseContext) -> ParseResult:
        out = Out(raw, context, drop=drop)
        pieces = think_pieces(out) if reasoning else [Piece(0, out.text)]
        tagged(out, pieces, open_tag, close_tag, body, close_required=False)
        return out.result()

    return Format(parse, (open_tag,))


LONGCAT = _simple("<longcat_tool_call>", "</longcat_tool_call>", shape="object")
PHI4_MINI_TAGS = _simple("<|tool_call|>", "<|/tool_call|>")
INTERNLM2 = _simple("<|action_start|><|plugin|>", "<|action_end|>", shape="object")
TOOL_CALLS, TOOL_CALLS_END = "<tool_calls>", "</tool_calls>"  # also MiniMax-M1 and Apriel
JAMBA = _simple(TOOL_CALLS, TOOL_CALLS_END)
HUNYUAN_A13B = _simple(TOOL_CALLS, TOOL_CALLS_END, drop=("<answer>", "</answer>"))
NEMOTRON_V2 = _simple("<TOOLCALL>", "</TOOLCALL>")


def _minimax_m1_body(out: Out, body: str, index: int, block_index: int, closed: bool) -> bool:
    if not body.strip():
        return closed  # `<tool_calls></tool_calls>`: nothing
    json_sequence(out, body, index, block_index)
    return True


def parse_minimax_m1(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    tagged(out, think_pieces(out), TOOL_CALLS, TOOL_CALLS_END, _minimax_m1_body, close_required=False)
    return out.result()


MINIMAX_M1 = Format(parse_minimax_m1, (TOOL_CALLS,))


def _apertus_call(obj):
    if isinstance(obj, dict) and len(obj) == 1:
        (name, args), = obj.items()
        if isinstance(args, dict) and name not in ("name", "function"):
            return name, args
    return call_from_obj(obj)


APERTUS_CALLS = "<|tools_prefix|>"


def parse_apertus(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    pieces = split_reasoning(out, "<|inner_prefix|>", "<|inner_suffix|>")
    tagged(out, pieces, APERTUS_CALLS, "<|tools_suffix|>", json_body(convert=_apertus_call), close_required=False)
    return out.result()


APERTUS = Format(parse_apertus, (APERTUS_CALLS,))

ACTION = "<|START_ACTION|>"


def parse_command_r7b(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context, drop=("<|START_RESPONSE|>", "<|END_RESPONSE|>", "<|START_TEXT|>", "<|END_TEXT|>"))
    pieces = split_reasoning(out, "<|START_THINKING|>", "<|END_THINKING|>")
    body = json_body(name_keys=("tool_name", "name"), arg_keys=("parameters", "arguments"))
    tagged(out, pieces, ACTION, "<|END_ACTION|>", body, close_required=False)
    return out.result()


COMMAND_R7B = Format(parse_command_r7b, (ACTION,))

_APRIEL_FINAL = "[BEGIN FINAL RESPONSE]"


def parse_apriel(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context, drop=("[END FINAL RESPONSE]", "<|end|>"))
    pieces = think_pieces(out)
    visible: list[Piece] = []
    for p in pieces:  # Apriel-Thinker: the reasoning is plain text ended by a marker line
        k = p.text.find(_APRIEL_FINAL)
        if k == -1:
            visible.append(p)
        else:
            out.add_thought(p.text[:k].replace("Here are my reasoning steps:", "", 1))
            visible.append(Piece(p.start + k + len(_APRIEL_FINAL), p.text[k + len(_APRIEL_FINAL):]))
    tagged(out, visible, TOOL_CALLS, TOOL_CALLS_END, json_body(), close_required=False)
    return out.result()


APRIEL = Format(parse_apriel, (TOOL_CALLS,))
