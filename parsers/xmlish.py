"""XML-ish formats whose argument values are untyped text (typed here with the JSON schema).

- `qwen3_coder_xml`: `<tool_call><function=NAME><parameter=K>⏎V⏎</parameter></function></tool_call>`
  (Qwen3-Coder, Qwen3.5, Nemotron-3-Nano, StepFun-3.5); the wrapper may be missing
- `seed_oss`: the same body in `<seed:tool_call>…</seed:tool_call>`, `<seed:think>` reasoning
- `glm45`: `<tool_call>NAME<arg_key>K</arg_key><arg_value>V</arg_value>…</tool_call>`
- `minimax_m2`: `<minimax:tool_call><invoke name="N"><parameter name="K">V</parameter></invoke>…`
- `deepseek_v32_dsml`: `<｜DSML｜function_calls><｜DSML｜invoke name=…><｜DSML｜parameter name=…
  string="true|false">V</｜DSML｜parameter>…` (`string="false"` values are JSON)
- `step3`: `<｜tool_calls_begin｜>…<steptml:invoke name=…><steptml:parameter name=…>V…`
"""

from __future__ import annotations

from .result import Format, ParseContext, ParseResult
from .toolkit.json_calls import json_body
from .toolkit.out import Out
from .toolkit.scan import Piece
from .toolkit.schema import cast_value
from .toolkit.sections import split_reasoning, tagged, think_pieces
from .toolkit.xml_values import FUNCTION_EQ, function_eq_params, strip_one_newline, xml_invokes

TOOL_CALL = "<tool_call>"  # Qwen3-Coder, GLM-4.5
SEED_CALL = "<seed:tool_call>"
MINIMAX_CALL = "<minimax:tool_call>"
DSML_CALLS = "<｜DSML｜function_calls>"
STEP3_CALLS = "<｜tool_calls_begin｜>"

_json_fallback = json_body()


def _function_body(out: Out, body: str, index: int, block_index: int, closed: bool) -> bool:
    end = function_eq_params(out, body, index, call_index=block_index)
    if end == -1:  # `<tool_call>` holding Hermes-style JSON instead
        return _json_fallback(out, body, index, block_index, closed)
    out.add_text(body[end:])
    return True


def _function_text(out: Out, piece: Piece) -> None:
    """Prose that may hold `<function=…>` calls without the `<tool_call>` wrapper."""
    k = piece.text.find(FUNCTION_EQ)
    if k == -1:
        out.add_text(piece.text)
        return
    out.add_text(piece.text[:k])
    end = function_eq_params(out, piece.text[k:], piece.start + k)
    out.add_text(piece.text[k + end :])


def parse_qwen3_coder_xml(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context, stop=("<|im_end|>", "<|endoftext|>"))
    tagged(out, think_pieces(out), TOOL_CALL, "</tool_call>", _function_body, close_required=False,
           on_text=_function_text)
    return out.result()


QWEN3_CODER_XML = Format(parse_qwen3_coder_xml, (TOOL_CALL, FUNCTION_EQ))


def parse_seed_oss(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context, drop=("<seed:cot_budget_reflect>", "</seed:cot_budget_reflect>"), stop=("<seed:eos>",))
    pieces = split_reasoning(out, "<seed:think>", "</seed:think>")
    tagged(out, pieces, SEED_CALL, "</seed:tool_call>", _function_body, close_required=False)
    return out.result()


SEED_OSS = Format(parse_seed_oss, (SEED_CALL,))


def _glm_body(out: Out, body: str, index: int, block_index: int, closed: bool) -> bool:
    k = body.find("<arg_key>")
    name = (body if k == -1 else body[:k]).strip()
    if not name or "\n" in name or "<" in name:
        return False
    args: dict = {}
    i = 0 if k == -1 else k
    while k != -1:
        ke = body.find("</arg_key>", k)
        vs = body.find("<arg_value>", ke) if ke != -1 else -1
        ve = body.find("</arg_value>", vs) if vs != -1 else -1
        if ve == -1:
            out.fail(f"no call: unfinished <arg_key>/<arg_value> pair in call to {name}", index + k)
            return True
        key = body[k + len("<arg_key>") : ke].strip()
        value = strip_one_newline(body[vs + len("<arg_value>") : ve])
        args[key] = cast_value(out.functions, name, key, value)
        i = ve + len("</arg_value>")
        k = body.find("<arg_key>", i)
    out.add_call(name, args)
    return True


def parse_glm45(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context, stop=("<|user|>", "<|observation|>", "<|endoftext|>"))
    tagged(out, think_pieces(out), TOOL_CALL, "</tool_call>", _glm_body)
    return out.result()


GLM45 = Format(parse_glm45, (TOOL_CALL,))


def _invoke_body(invoke: str, param: str, typed_attr: str | None = None):
    def on_body(out: Out, body: str, index: int, block_index: int, closed: bool) -> bool:
        before = len(out.calls)
        xml_invokes(out, body, index, invoke, param, typed_attr=typed_attr)
        if len(out.calls) == before and out.error is None and "<" + invoke not in body:
            if not closed:
                out.fail("truncated call: the call block has no complete call", block_index)
                return True
            return False
        return True

    return on_body


def parse_minimax_m2(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context, stop=("[e~[",))
    tagged(out, think_pieces(out), MINIMAX_CALL, "</minimax:tool_call>",
           _invoke_body("invoke", "parameter"), close_required=False)
    return out.result()


MINIMAX_M2 = Format(parse_minimax_m2, (MINIMAX_CALL,))


def parse_deepseek_v32_dsml(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    tagged(out, think_pieces(out), DSML_CALLS, "</｜DSML｜function_calls>",
           _invoke_body("｜DSML｜invoke", "｜DSML｜parameter", typed_attr="string"), close_required=False)
    return out.result()


DEEPSEEK_V32_DSML = Format(parse_deepseek_v32_dsml, (DSML_CALLS,))


def parse_step3(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    tagged(out, think_pieces(out), STEP3_CALLS, "<｜tool_calls_end｜>",
           _invoke_body("steptml:invoke", "steptml:parameter"), close_required=False)
    return out.result()


STEP3 = Format(parse_step3, (STEP3_CALLS,))
