"""Grammar-constrained mode: a GBNF grammar (and, where the output is pure JSON, a JSON schema)
derived from a case's function schemas and the wrapper's output format, so the model can only
write a well-formed call.

The grammar matches what the model writes *after* the prompt: for MemGPT's wrappers that is the
continuation of the forced assistant prefix (`\\n{\\n  "function":` -> ` "send_message", "params":
{...}}`), for Hermes/Qwen one or more `<tool_call>{json}</tool_call>` blocks, for the others a bare
JSON call object or list, a `[TOOL_CALLS]` list, or llama.cpp's generic `{"tool_calls": [...]}`.

A format is only used for a wrapper when a sample call in that format, parsed by the wrapper's own
parser, gives back the same call: `derive()` tries the formats in order and keeps the first that
round-trips, or says why none fits.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import wrappers
from core.conversation import Conversation

MAX_STRING = 200  # characters per JSON string: bounds a looping small model
MAX_PARALLEL = 4  # tool calls per answer in the multi-call formats

PRIMITIVES = r"""
ws ::= [ \t\n]{0,20}
string ::= "\"" char{0,MAXSTR} "\""
char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})
integer ::= "-"? ([0-9] | [1-9] [0-9]{1,15})
number ::= integer ("." [0-9]{1,15})? ([eE] [-+]? [0-9]{1,3})?
boolean ::= "true" | "false"
null ::= "null"
value ::= object | array | string | number | boolean | null
object ::= "{" ws ( string ws ":" ws value ( "," ws string ws ":" ws value )* )? ws "}"
array ::= "[" ws ( value ( "," ws value )* )? ws "]"
"""


class GrammarUnsupported(ValueError):
    """No grammar fits this wrapper's output format; the message says why."""


@dataclass
class Constraint:
    format: str  # memgpt, hermes, json_object, json_list, mistral_list, tool_calls_object
    gbnf: str
    json_schema: dict | None = None  # the same constraint as a JSON schema, when the output is pure JSON
    sample: str = ""  # a text the grammar accepts, that the wrapper's parser reads back as a call
    notes: list[str] = field(default_factory=list)

    def params(self, kind: str = "gbnf") -> dict:
        """The request parameters: {"grammar": gbnf} or {"json_schema": schema} (gbnf when no schema fits)."""
        if kind == "json_schema" and self.json_schema is not None:
            return {"json_schema": self.json_schema}
        return {"grammar": self.gbnf}


def literal(text: str) -> str:
    """A GBNF string literal for `text`."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _json_lit(value) -> str:
    return literal(json.dumps(value, ensure_ascii=False))


class _Rules:
    """Collects named rules; names are unique and GBNF-safe."""

    def __init__(self):
        self.rules: dict[str, str] = {}

    def name(self, hint: str) -> str:
        base = re.sub(r"[^a-zA-Z0-9]+", "-", hint).strip("-").lower() or "r"
        name, n = base, 2
        while name in self.rules or name in {"root", "ws", "string", "char", "integer", "number", "boolean",
                                              "null", "value", "object", "array"}:
            name, n = f"{base}-{n}", n + 1
        self.rules[name] = ""
        return name

    def add(self, hint: str, body: str) -> str:
        name = self.name(hint)
        self.rules[name] = body
        return name

    def text(self, root: str, max_string: int) -> str:
        lines = [f"root ::= {root}"] + [f"{k} ::= {v}" for k, v in self.rules.items()]
        return "\n".join(lines) + PRIMITIVES.replace("MAXSTR", str(max_string))


def _value(rules: _Rules, schema, hint: str, depth: int = 0) -> str:
    """A GBNF expression for a JSON value valid against `schema` (the common subset)."""
    if not isinstance(schema, dict) or depth > 6:
        return "value"
    if "const" in schema:
        return _json_lit(schema["const"])
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return "(" + " | ".join(_json_lit(v) for v in schema["enum"]) + ")"
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return "(" + " | ".join(_value(rules, s, hint, depth + 1) for s in schema[key]) + ")"
    kind = schema.get("type")
    if isinstance(kind, list):
        return "(" + " | ".join(_value(rules, {**schema, "type": k}, hint, depth + 1) for k in kind) + ")"
    if kind == "string":
        return "string"
    if kind == "integer":
        return "integer"
    if kind == "number":
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "null":
        return "null"
    if kind == "array":
        item = _value(rules, schema.get("items"), hint + "-item", depth + 1)
        return rules.add(hint + "-list", f'"[" ws ( {item} ( "," ws {item} )* )? ws "]"')
    if kind == "object" or "properties" in schema:
        if not isinstance(schema.get("properties"), dict) or not schema["properties"]:
            return "object"
        return _object(rules, schema, hint, depth)
    return "value"


def _member(rules: _Rules, key: str, schema, hint: str, depth: int) -> str:
    return f'{literal(json.dumps(key))} ws ":" ws {_value(rules, schema, hint + "-" + key, depth + 1)}'


def _object(rules: _Rules, schema: dict, hint: str, depth: int = 0, first: list[tuple[str, dict]] = ()) -> str:
    """An object rule: `first` members (e.g. inner_thoughts), then the required properties in order,
    then each optional one, optionally."""
    props = schema.get("properties") or {}
    required = [k for k in props if k in (schema.get("required") or [])]
    optional = [k for k in props if k not in required]
    mandatory = [_member(rules, k, s, hint, depth) for k, s in first] + [_member(rules, k, props[k], hint, depth) for k in required]
    opts = [_member(rules, k, props[k], hint, depth) for k in optional]
    if mandatory:
        body = ' "," ws '.join(mandatory) + "".join(f' ( "," ws {m} )?' for m in opts)
    elif opts:
        any_opt = rules.add(hint + "-opt", " | ".join(opts))
        body = f"( {any_opt} ( ws \",\" ws {any_opt} ){{0,{len(opts) - 1}}} )?"
    else:
        body = ""
    return rules.add(hint + "-obj", f'"{{" ws {body} ws "}}"')


def _schema_of(f: dict) -> dict:
    params = f.get("parameters")
    return params if isinstance(params, dict) else {"type": "object", "properties": {}}


def _sample_value(schema):
    """A value valid against `schema`, for the round-trip check."""
    if not isinstance(schema, dict):
        return "x"
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return _sample_value(schema[key][0])
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    return {"string": "sample text", "integer": 1, "number": 1.5, "boolean": True, "null": None,
            "array": [], "object": {k: _sample_value(s) for k, s in (schema.get("properties") or {}).items()
                                    if k in (schema.get("required") or [])}}.get(kind, "x")


def _sample_args(f: dict) -> dict:
    schema = _schema_of(f)
    required = schema.get("required") or []
    return {k: _sample_value(s) for k, s in (schema.get("properties") or {}).items() if k in required}


# ------------------------------------------------------------------------------------------------
# formats


def _call_objects(rules: _Rules, functions: list[dict], name_key: str = "name", args_key: str = "arguments") -> str:
    """A rule: one `{"name": "f", "arguments": {...}}` object, for any of the functions."""
    alternatives = []
    for f in functions:
        args = _value(rules, {"type": "object", **_schema_of(f)}, f"{f['name']}-args")
        alternatives.append(rules.add(f"call-{f['name']}",
                                      f'"{{" ws {literal(json.dumps(name_key))} ws ":" ws {_json_lit(f["name"])} "," ws '
                                      f'{literal(json.dumps(args_key))} ws ":" ws {args} ws "}}"'))
    return rules.add("call", " | ".join(alternatives))


def _call_schema(functions: list[dict]) -> dict:
    return {"oneOf": [{"type": "object", "properties": {"name": {"const": f["name"]}, "arguments": {"type": "object", **_schema_of(f)}},
                       "required": ["name", "arguments"]} for f in functions]}


NEWLINE, COMMA = '"\\n"', '"," ws'


def _more(separator: str, item: str, max_calls: int) -> str:
    """Up to max_calls - 1 further items."""
    return f" ( {separator} {item} ){{0,{max_calls - 1}}}" if max_calls > 1 else ""


def _hermes(functions, max_string, max_calls=MAX_PARALLEL):
    rules = _Rules()
    call = _call_objects(rules, functions)
    block = rules.add("tool-call", f'"<tool_call>\\n" {call} "\\n</tool_call>"')
    gbnf = rules.text(block + _more(NEWLINE, block, max_calls), max_string)
    f = functions[0]
    sample = "<tool_call>\n" + json.dumps({"name": f["name"], "arguments": _sample_args(f)}) + "\n</tool_call>"
    return Constraint("hermes", gbnf, None, sample)


def _json_object(functions, max_string, max_calls=MAX_PARALLEL):
    rules = _Rules()
    call = _call_objects(rules, functions)
    f = functions[0]
    sample = json.dumps({"name": f["name"], "arguments": _sample_args(f)})
    return Constraint("json_object", rules.text(call, max_string), _call_schema(functions), sample)


def _json_list(functions, max_string, max_calls=MAX_PARALLEL, lead: str = "", fmt: str = "json_list"):
    rules = _Rules()
    call = _call_objects(rules, functions)
    body = '"[" ws ' + call + _more(COMMA, call, max_calls) + ' ws "]"'
    root = f"{literal(lead)} {body}" if lead else body
    f = functions[0]
    sample = lead + json.dumps([{"name": f["name"], "arguments": _sample_args(f)}])
    schema = None if lead else {"type": "array", "minItems": 1, "maxItems": max_calls, "items": _call_schema(functions)}
    return Constraint(fmt, rules.text(root, max_string), schema, sample)


def _tool_calls_object(functions, max_string, max_calls=MAX_PARALLEL):
    rules = _Rules()
    call = _call_objects(rules, functions)
    root = '"{" ws "\\"tool_calls\\"" ws ":" ws "[" ws ' + call + _more(COMMA, call, max_calls) + ' ws "]" ws "}"'
    f = functions[0]
    sample = json.dumps({"tool_calls": [{"name": f["name"], "arguments": _sample_args(f)}]})
    schema = {"type": "object", "properties": {"tool_calls": {"type": "array", "minItems": 1, "items": _call_schema(functions)}},
              "required": ["tool_calls"]}
    return Constraint("tool_calls_object", rules.text(root, max_string), schema, sample)


def _memgpt(wrapper: wrappers.Wrapper, conversation: Conversation, functions, max_string):
    """MemGPT's `{"function": name, "params": {"inner_thoughts": ..., args}}`, continuing the prefix."""
    variables = {**wrapper.variables, **conversation.template_variables}
    prefix = wrapper.prefix_for(variables)
    placement = wrapper.parser_options.get("inner_thoughts", "params")
    squashed = re.sub(r"\s+", "", prefix)  # the prefixes differ only in whitespace outside strings
    thoughts = [("inner_thoughts", {"type": "string"})]
    rules = _Rules()

    def params_rule(f, with_thoughts: bool) -> str:
        return _object(rules, {"type": "object", **_schema_of(f)}, f"{f['name']}-params", 0,
                       first=thoughts if with_thoughts else [])

    def call_tail(f, with_thoughts: bool, close: bool = True) -> str:
        # the call after `"function":` : `"name", "params": {...} }`
        end = ' ws "}"' if close else ""
        return rules.add(f"call-{f['name']}", f'{_json_lit(f["name"])} "," ws "\\"params\\"" ws ":" ws {params_rule(f, with_thoughts)}{end}')

    lead = '"\\n"?'
    if placement == "top_level":  # noforce: {"inner_thoughts": "...", "function": name, "params": {...}} or no call
        calls = rules.add("calls", " | ".join(call_tail(f, False, close=False) for f in functions))
        rest = f'ws string ( "," ws "\\"function\\"" ws ":" ws {calls} )? ws "}}"'
        stages = {"": f'{lead} "{{" ws "\\"inner_thoughts\\"" ws ":" {rest}', "{": f'ws "\\"inner_thoughts\\"" ws ":" {rest}',
                  '{"inner_thoughts":': rest}
        f = functions[0]
        full = {"inner_thoughts": "sample thought", "function": f["name"], "params": _sample_args(f)}
    else:
        with_thoughts = placement != "none"
        calls = rules.add("calls", " | ".join(call_tail(f, with_thoughts) for f in functions))
        stages = {"": f'{lead} "{{" ws "\\"function\\"" ws ":" ws {calls}', "{": f'ws "\\"function\\"" ws ":" ws {calls}',
                  '{"function":': f"ws {calls}"}
        named = re.fullmatch(r'\{"function":"([^"]+)",', squashed)
        if named:
            f = next((g for g in functions if g["name"] == named.group(1)), None)
            if f is None:
                raise GrammarUnsupported(f"the wrapper's prefix forces a call to '{named.group(1)}', which is not among the functions")
            stages[squashed] = f'ws "\\"params\\"" ws ":" ws {params_rule(f, with_thoughts)} ws "}}"'
        else:
            f = functions[0]
        args = _sample_args(f)
        full = {"function": f["name"], "params": {"inner_thoughts": "sample thought", **args} if with_thoughts else args}
    if squashed not in stages:
        raise GrammarUnsupported(f"the wrapper's assistant prefix {prefix!r} is not one of the MemGPT shapes a grammar can continue")
    text = "\n" + json.dumps(full, indent=2, ensure_ascii=False)
    if prefix and not text.startswith(prefix):
        text = text.lstrip("\n")
    sample = text[len(prefix):] if prefix and text.startswith(prefix) else text
    schema = None
    if not prefix and placement != "top_level":
        with_thoughts = placement != "none"
        schema = {"oneOf": [{"type": "object", "properties": {
            "function": {"const": g["name"]},
            "params": _params_schema(g, with_thoughts)}, "required": ["function", "params"]} for g in functions]}
    return Constraint("memgpt", rules.text(stages[squashed], max_string), schema, sample,
                      [f"continues the prefix {prefix!r}"] if prefix else [])


def _params_schema(f: dict, with_thoughts: bool) -> dict:
    schema = {"type": "object", **_schema_of(f)}
    if with_thoughts:
        schema = {**schema, "properties": {"inner_thoughts": {"type": "string"}, **(schema.get("properties") or {})},
                  "required": ["inner_thoughts", *(schema.get("required") or [])]}
    return schema


def _mistral_list(functions, max_string, max_calls=MAX_PARALLEL):
    return _json_list(functions, max_string, max_calls, "[TOOL_CALLS]", "mistral_list")


_GENERIC = (_json_object, _json_list, _mistral_list, _tool_calls_object, _hermes)
# a parser's native format first, where the generic order would pick a fallback it also reads
_NATIVE = {"hermes": _hermes, "xlam": _json_list, "mistral_v3": _mistral_list, "llamacpp_generic": _tool_calls_object}


def _round_trips(wrapper: wrappers.Wrapper, conversation: Conversation, c: Constraint) -> bool:
    parsed = wrapper.parse(c.sample, conversation)
    return parsed.error is None and bool(parsed.tool_calls) and isinstance(parsed.tool_calls[0].arguments, dict) \
        and parsed.tool_calls[0].name in {f["name"] for f in conversation.functions}


def derive(wrapper: str | wrappers.Wrapper, conversation: Conversation, max_string: int = MAX_STRING,
           max_calls: int = MAX_PARALLEL) -> Constraint:
    """The constraint for `wrapper` given the conversation's functions; GrammarUnsupported if none fits.
    `max_string` bounds every JSON string, `max_calls` the calls per answer (formats that allow several;
    MemGPT's allows one)."""
    if max_string < 1 or max_calls < 1:
        raise ValueError("max_string and max_calls must be at least 1")
    w = wrappers.get(wrapper) if isinstance(wrapper, str) else wrapper
    functions = [f for f in conversation.functions if isinstance(f, dict) and f.get("name")]
    if not functions:
        raise GrammarUnsupported("the conversation has no functions to constrain the output to")
    if w.parser == "memgpt_inner_monologue":
        candidates = [lambda: _memgpt(w, conversation, functions, max_string)]
    else:
        order = sorted(_GENERIC, key=lambda g: g is not _NATIVE.get(w.parser))
        candidates = [lambda g=g: g(functions, max_string, max_calls) for g in order]
    for make in candidates:
        c = make()
        if _round_trips(w, conversation, c):
            return c
    raise GrammarUnsupported(f"no grammar format fits the '{w.parser}' parser of wrapper '{w.name}' "
                             "(tried MemGPT JSON, <tool_call> tags, JSON object/list, [TOOL_CALLS], {\"tool_calls\": [...]})")
