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

from . import ParseContext, ParseResult, register
from .common import Out, Piece, call_from_obj, json_body, json_sequence, split_reasoning, tagged, think_pieces


def _simple(open_tag: str, close_tag: str, *, shape: str = "any", reasoning: bool = True, drop=(), **kw):
    body = json_body(shape, **kw)

    def parse(raw: str, context: ParseContext) -> ParseResult:
        out = Out(raw, context, drop=drop)
        pieces = think_pieces(out) if reasoning else [Piece(0, out.text)]
        tagged(out, pieces, open_tag, close_tag, body, close_required=False)
        return out.result()

    return parse


register("longcat")(_simple("<longcat_tool_call>", "</longcat_tool_call>", shape="object"))
register("phi4_mini_tags")(_simple("<|tool_call|>", "<|/tool_call|>"))
register("internlm2")(_simple("<|action_start|><|plugin|>", "<|action_end|>", shape="object"))
register("jamba")(_simple("<tool_calls>", "</tool_calls>"))
register("hunyuan_a13b")(_simple("<tool_calls>", "</tool_calls>", drop=("<answer>", "</answer>")))
register("nemotron_v2")(_simple("<TOOLCALL>", "</TOOLCALL>"))


def _minimax_m1_body(out: Out, body: str, index: int, block_index: int, closed: bool) -> bool:
    if not body.strip():
        return closed  # `<tool_calls></tool_calls>`: nothing
    json_sequence(out, body, index, block_index)
    return True


@register("minimax_m1")
def parse_minimax_m1(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    tagged(out, think_pieces(out), "<tool_calls>", "</tool_calls>", _minimax_m1_body, close_required=False)
    return out.result()


def _apertus_call(obj):
    if isinstance(obj, dict) and len(obj) == 1:
        (name, args), = obj.items()
        if isinstance(args, dict) and name not in ("name", "function"):
            return name, args
    return call_from_obj(obj)


@register("apertus")
def parse_apertus(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    pieces = split_reasoning(out, "<|inner_prefix|>", "<|inner_suffix|>")
    tagged(out, pieces, "<|tools_prefix|>", "<|tools_suffix|>", json_body(convert=_apertus_call),
           close_required=False)
    return out.result()


@register("command_r7b")
def parse_command_r7b(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context, drop=("<|START_RESPONSE|>", "<|END_RESPONSE|>", "<|START_TEXT|>", "<|END_TEXT|>"))
    pieces = split_reasoning(out, "<|START_THINKING|>", "<|END_THINKING|>")
    body = json_body(name_keys=("tool_name", "name"), arg_keys=("parameters", "arguments"))
    tagged(out, pieces, "<|START_ACTION|>", "<|END_ACTION|>", body, close_required=False)
    return out.result()


_APRIEL_FINAL = "[BEGIN FINAL RESPONSE]"


@register("apriel")
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
    tagged(out, visible, "<tool_calls>", "</tool_calls>", json_body(), close_required=False)
    return out.result()
