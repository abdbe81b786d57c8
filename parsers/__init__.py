"""Parser registry: one parser per output-format id, each `(raw, ParseContext) -> ParseResult`.

A parser never raises: whatever the model wrote, the result says what was found, which repairs were
applied, and, when parsing failed, the error and the position where it gave up.

`parse()` then checks every call against the functions of the context (`parsers.validate`: unknown
function names, missing required arguments, type mismatches) and lists what it found in
`ParseResult.checks`; wrappers may add their own checks (MemGPT's first-message verification and
heartbeat correction, `parsers.memgpt_checks`).

Where things are: `result` (the data in and out), `toolkit/` (the shared steps, its own table of
contents), one module per family of formats (below), `validate` (schema checks). To add a
format: write its parser from the toolkit in the family's module (or a new one) and add its id
to `FORMATS`.
"""

from __future__ import annotations

from core.errors import UserError

from . import deepseek, functionary, gemma, harmony, hermes, jsontags, llama, memgpt, mistral, plain, prefixed, pythonic, xmlish
from .result import Check, Format, ParseContext, ParseError, ParseResult, Parser, ToolCall

__all__ = ["Check", "Format", "ParseContext", "ParseError", "ParseResult", "Parser", "ToolCall",
           "FORMATS", "call_markers", "names", "parse", "schema_checks"]

# format id -> its parser and call-start markers, by module (fc_formats.md's ids)
FORMATS: dict[str, Format] = {
    # JSON inside <tool_call> and its small-model fallbacks
    "hermes": hermes.HERMES,
    # XML-ish bodies with text values, typed by the schema
    "qwen3_coder_xml": xmlish.QWEN3_CODER_XML,
    "seed_oss": xmlish.SEED_OSS,
    "glm45": xmlish.GLM45,
    "minimax_m2": xmlish.MINIMAX_M2,
    "deepseek_v32_dsml": xmlish.DEEPSEEK_V32_DSML,
    "step3": xmlish.STEP3,
    # JSON between an opening and a closing marker
    "minimax_m1": jsontags.MINIMAX_M1,
    "longcat": jsontags.LONGCAT,
    "phi4_mini_tags": jsontags.PHI4_MINI_TAGS,
    "internlm2": jsontags.INTERNLM2,
    "jamba": jsontags.JAMBA,
    "hunyuan_a13b": jsontags.HUNYUAN_A13B,
    "nemotron_v2": jsontags.NEMOTRON_V2,
    "apertus": jsontags.APERTUS,
    "command_r7b": jsontags.COMMAND_R7B,
    "apriel": jsontags.APRIEL,
    # special-token sections
    "kimi_k2": deepseek.KIMI_K2,
    "deepseek_v3": deepseek.DEEPSEEK_V3,
    "deepseek_v31": deepseek.DEEPSEEK_V31,
    "mistral_v3": mistral.MISTRAL_V3,
    "mistral_v11": mistral.MISTRAL_V11,
    "mistral_v13": mistral.MISTRAL_V13,
    # JSON after a marker (or none) to the end of the turn
    "granite3": prefixed.GRANITE3,
    "granite_20b_fc": prefixed.GRANITE_20B_FC,
    "gigachat3": prefixed.GIGACHAT3,
    "functools": prefixed.FUNCTOOLS_FORMAT,
    "xlam": prefixed.XLAM,
    "command_r_plus": prefixed.COMMAND_R_PLUS,
    "llamacpp_generic": prefixed.LLAMACPP_GENERIC,
    # Llama 3.x JSON and built-in tools
    "llama3_json": llama.LLAMA3_JSON,
    "llama3_builtin": llama.LLAMA3_BUILTIN,
    # Python-style calls
    "pythonic": pythonic.PYTHONIC,
    "llama4_pythonic": pythonic.LLAMA4_PYTHONIC,
    "olmo3": pythonic.OLMO3,
    "lfm2": pythonic.LFM2,
    "gorilla_openfunctions_v2": pythonic.GORILLA_OPENFUNCTIONS_V2,
    "nexusraven_v2": pythonic.NEXUSRAVEN_V2,
    # message headers
    "gpt_oss_harmony": harmony.GPT_OSS_HARMONY,
    "functionary_v2": functionary.FUNCTIONARY_V2,
    "functionary_v3_1": functionary.FUNCTIONARY_V3_1,
    "functionary_v3_2": functionary.FUNCTIONARY_V3_2,
    # Google's call:NAME{…} syntax
    "gemma4": gemma.GEMMA4,
    "functiongemma": gemma.FUNCTIONGEMMA,
    # MemGPT's forced-prefix JSON, ported record for record
    "memgpt_inner_monologue": memgpt.MEMGPT_INNER_MONOLOGUE,
    # no calls at all
    "plain": plain.PLAIN,
}


def names() -> list[str]:
    return sorted(FORMATS)


def call_markers(format_id: str) -> list[str]:
    """The strings a call of this format starts with (`<tool_call>`, `[TOOL_CALLS]`, `{"name"`…),
    the same ones its parser looks for; [] for a format without calls."""
    try:
        return list(FORMATS[format_id].call_markers)
    except KeyError:
        raise UnknownParser(format_id) from None


class UnknownParser(UserError, KeyError):
    def __str__(self) -> str:
        return f"unknown parser format '{self.args[0]}'; known formats: {', '.join(names())}"


def parse(format_id: str, raw: str, context: ParseContext | None = None) -> ParseResult:
    """Parse `raw` with the `format_id` parser, then validate the calls against `context.functions`
    (no functions given: no schema checks, since every name would be "unknown")."""
    try:
        parser = FORMATS[format_id].parse
    except KeyError:
        raise UnknownParser(format_id) from None
    context = context or ParseContext()
    try:
        result = parser(raw, context)
    except Exception as e:  # a parser bug must not take the page down: report it as the result
        return ParseResult(error=ParseError(f"the {format_id} parser failed: {type(e).__name__}: {e}"))
    result.checks.extend(schema_checks(result.tool_calls, context.functions))
    return result


def schema_checks(calls: list[ToolCall], functions: list[dict]) -> list[Check]:
    """One Check per problem `parsers.validate` finds; none when no functions are known."""
    if not functions or not calls:
        return []
    from .validate import validate_calls  # lazy: jsonschema costs 0.1 s of start-up, Gradio does not load it

    try:
        problems = validate_calls(calls, functions)
    except Exception as e:  # a validator bug (an odd schema) must not hide the parse result
        return [Check("schema", f"the calls could not be validated: {type(e).__name__}: {e}")]
    return [Check("schema", message, call=i) for i, messages in enumerate(problems) for message in messages]
