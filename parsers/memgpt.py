"""`memgpt_inner_monologue`: MemGPT's local-LLM output parser, ported to give the same results.

Every MemGPT wrapper asks the model for one JSON object `{"function": name, "params": {...}}`,
with the inner monologue as `params.inner_thoughts` (or at the top level for the "noforce"
wrappers). The prompt ends with a forced prefix such as `\\n{\\n  "function":`, so the raw output
is only the continuation; the parser puts the prefix back, repairs the JSON with MemGPT's
`clean_json` cascade, and reads the call. The outcome matches MemGPT (cpacker/MemGPT f0bc6487)
record for record, including its quirks: where MemGPT raised, the result carries an error with
the same cause; where MemGPT returned something odd (a function named null, a string as
arguments, a whole object as the monologue), the result holds that same value.

Parser options (the wrapper's `parser_options`):

- `inner_thoughts`: where the monologue lives.
    - `params` (default): inside the call's params; moved out into `inner_thoughts`
      (needs `clean_function_args`).
    - `top_level`: a required top-level `inner_thoughts` key; `function` may be missing, null
      or "none", which means no call (MemGPT's chatml-noforce wrappers).
    - `top_level_or_params`: the top-level key, else a copy of `params.inner_thoughts` that stays
      in the arguments, else "" (MemGPT's configurable wrapper).
    - `none`: no monologue; `inner_thoughts` is None (dolphin).
- `clean_function_args` (default true): MemGPT's argument cleaning: drop `request_heartbeat` from
  `send_message` and move `inner_thoughts` out of the params. When false the params are passed on
  as the model wrote them.
- `unwrap_nested_function` (default true): when `function` is itself an object (the model
  repeated the forced prefix), read the call from inside it. Dolphin and zephyr never did this.
- `strip_eot` (default false): strip trailing whitespace and one trailing `<|eot_id|>` first,
  as MemGPT's llama3 wrapper does for llama.cpp, which leaks that stop token.

Error positions are offsets into the raw output (0 when the problem is in the forced prefix).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from .result import Format, ParseContext, ParseError, ParseResult, ToolCall
from .toolkit.out import with_prefix
from .toolkit.schema import json_type_name

EOT = "<|eot_id|>"
# MemGPT's forced prefixes (assistant_prefix_extra): the prompt ends inside the JSON object
# the keys MemGPT's forced prefixes end with ('\n{\n  "function":'; chatml-noforce: inner_thoughts)
FUNCTION_KEY, THOUGHTS_KEY = '"function":', '"inner_thoughts":'


class CleanJSONError(ValueError):
    """No strategy in the cascade decoded the text. `reason` and `position` say where the text,
    unrepaired, stops being JSON."""

    def __init__(self, reason: str, position: int):
        super().__init__(f"{reason} (at character {position})")
        self.reason = reason
        self.position = position


class _Failed(Exception):
    """One repair strategy did not work (MemGPT's LLMJSONParsingError inside the cascade)."""


_DECODER = json.JSONDecoder(strict=False)  # what json.loads(text, strict=False) builds on every call


def _loads(text: str) -> Any:
    # MemGPT decodes with strict=False, so raw line breaks and tabs inside strings are accepted
    return _DECODER.decode(text)


def _escape_newlines_in_strings(text: str) -> str:
    """Line breaks inside string literals become `\\n` (MemGPT's repair_json_string)."""
    out = []
    in_string = escaped = False
    for ch in text:
        if ch == '"' and not escaped:
            in_string = not in_string
        escaped = ch == "\\" and not escaped
        out.append("\\n" if ch == "\n" and in_string else ch)
    return "".join(out)


def _rebuild_message_value(text: str) -> str:
    """Rebuild a broken `"message":` value as one string, up to the next `}` (MemGPT's
    repair_even_worse_json): quotes are dropped, and only letters, digits, whitespace and
    `.',;:!` (or anything inside a quoted stretch) are kept."""
    out: list[str] = []
    message: list[str] = []
    in_message = in_string = escaped = False
    for ch in text:
        if ch == '"' and not escaped:
            in_string = not in_string
            if not in_message:
                out.append(ch)
        elif ch == "\\" and not escaped:
            escaped = True
            out.append(ch)
        else:
            escaped = False
            if in_message:
                if ch == "}":
                    out.append('"' + "".join(message).replace("\n", " ") + '"')
                    out.append(ch)
                    in_message = False
                elif in_string or ch.isalnum() or ch.isspace() or ch in ".',;:!":
                    message.append(ch)
            else:
                out.append(ch)
                if ch == ":" and '"message":' in "".join(out[-10:]):  # the key can only complete on its colon
                    in_message = True
                    message = []
    return "".join(out)


def _first_object(text: str) -> Any:
    """Decode the first `{...}` found by counting braces (string contents are not skipped)."""
    depth = 0
    start = None
    for i, ch in enumerate(text):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0 and start is not None:
                try:
                    return _loads(text[start : i + 1])
                except json.JSONDecodeError:
                    raise _Failed from None
    raise _Failed


def _send_message_by_pattern(text: str) -> dict:
    """Last resort for send_message: pick the three fields out with regular expressions, after
    dropping every non-ASCII character."""
    ascii_text = re.sub(r"[^\x00-\x7F]+", "", text)
    function = re.search(r'"function":\s*"send_message"', ascii_text)
    thoughts = re.search(r'"inner_thoughts":\s*"([^"]+)"', ascii_text)
    message = re.search(r'"message":\s*"([^"]+)"', ascii_text)
    if not (function and thoughts and message):
        raise _Failed
    return {"function": "send_message", "params": {"inner_thoughts": thoughts.group(1), "message": message.group(1)}}


def _strip_comma(text: str) -> str:
    return text.strip().rstrip(",")


def _unescape_underscores(text: str) -> str:
    return text.replace("\\_", "_")


# MemGPT's clean_json order; the first strategy that decodes wins. None = no repair needed.
_CASCADE: list[tuple[str | None, Callable[[str], Any]]] = [
    (None, _loads),
    ("appended '}' to close a truncated object", lambda s: _loads(s + "}")),
    ("appended '}}' to close a truncated object", lambda s: _loads(s + "}}")),
    ("appended '\"}}' to close a truncated string and object", lambda s: _loads(s + '"}}')),
    ("removed a trailing comma and appended '}'", lambda s: _loads(_strip_comma(s) + "}")),
    ("removed a trailing comma and appended '}}'", lambda s: _loads(_strip_comma(s) + "}}")),
    ("removed a trailing comma and appended '\"}}'", lambda s: _loads(_strip_comma(s) + '"}}')),
    ("escaped line breaks inside strings", lambda s: _loads(_escape_newlines_in_strings(s))),
    ('rebuilt a broken "message" value as one string', lambda s: _loads(_rebuild_message_value(s))),
    ("kept only the first {...} object found by counting braces (after appending '}}'); "
     "text around it was dropped", lambda s: _first_object(s + "}}")),
    ("extracted send_message, inner_thoughts and message with text patterns", _send_message_by_pattern),
    ("removed markdown-escaped underscores", lambda s: _loads(_unescape_underscores(s))),
    ("removed markdown-escaped underscores and kept only the first {...} object (after appending '}}')",
     lambda s: _first_object(_unescape_underscores(s) + "}}")),
]


def clean_json(text: str) -> tuple[Any, list[str]]:
    """MemGPT's JSON repair cascade alone: the decoded value and the repair that was needed
    (an empty list when the text was valid JSON). Raises CleanJSONError when nothing works."""
    unrepaired_error = None
    for repair, strategy in _CASCADE:
        try:
            value = strategy(text)
        except json.JSONDecodeError as e:
            unrepaired_error = unrepaired_error or e  # the first strategy is plain decoding
            continue
        except _Failed:
            continue
        return value, [repair] if repair else []
    raise CleanJSONError(unrepaired_error.msg, unrepaired_error.pos)


_PLACEMENTS = ("params", "top_level", "top_level_or_params", "none")


@dataclass
class _Options:
    inner_thoughts: str = "params"  # one of _PLACEMENTS
    clean_function_args: bool = True
    unwrap_nested_function: bool = True
    strip_eot: bool = False

    @classmethod
    def of(cls, options: dict) -> "_Options":
        known = {k: v for k, v in (options or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)


class _Reject(Exception):
    """The JSON decoded but cannot be read as a call (where MemGPT raised after clean_json)."""


_KINDS = {"object": "an object", "array": "a list", "string": "a string", "boolean": "a boolean", "null": "null"}


def _kind(value: Any) -> str:
    return _KINDS.get(json_type_name(value), "a number")


def _field(obj: dict, key: str) -> Any:
    if key not in obj:
        raise _Reject(f'Received valid JSON, but it is missing the "{key}" field.')
    return obj[key]


def _cleaned_args(name: Any, params: Any, opts: _Options) -> tuple[Any, dict]:
    """MemGPT's _clean_function_args: (inner thoughts popped from params or None, arguments)."""
    if params is None and opts.inner_thoughts == "none":
        return None, {}  # dolphin turns null params into {}
    if not isinstance(params, dict):
        raise _Reject(f'The "params" field is {_kind(params)}, not an object of arguments.')
    args = dict(params)
    if name == "send_message":
        args.pop("request_heartbeat", None)  # send_message always ends the turn
    thoughts = args.pop("inner_thoughts", None) if opts.inner_thoughts != "none" else None
    return thoughts, args


def _read_call(obj: Any, opts: _Options) -> tuple[Any, list[ToolCall]]:
    """(inner thoughts, tool calls) from the decoded JSON, following the wrapper's options."""
    if not isinstance(obj, dict):
        raise _Reject(f'Received valid JSON, but it is {_kind(obj)}, not an object with "function" and "params".')

    if opts.inner_thoughts == "top_level":
        thoughts = _field(obj, "inner_thoughts")
        name = obj.get("function")
        if name is not None and not isinstance(name, str):
            raise _Reject(f'The "function" field is {_kind(name)}; it must be a function name, null or "none".')
        if name is None or name.strip().lower() == "none":
            return thoughts, []  # noforce: a monologue without a call is allowed
        params = _field(obj, "params")
        if opts.clean_function_args:
            _, params = _cleaned_args(name, params, opts)  # noforce ignores thoughts inside params
        return thoughts, [ToolCall(name, params)]

    if opts.unwrap_nested_function and isinstance(_field(obj, "function"), dict):
        obj = obj["function"]
    name = _field(obj, "function")
    params = _field(obj, "params")
    thoughts = None
    if opts.inner_thoughts == "top_level_or_params":
        if "inner_thoughts" in obj:
            thoughts = obj["inner_thoughts"]
        elif isinstance(params, dict):
            thoughts = params.get("inner_thoughts", "")
        elif isinstance(params, (str, list)):
            thoughts = ""  # MemGPT passes a string or list on as the arguments, without a monologue
        else:
            raise _Reject(f'The "params" field is {_kind(params)}, not an object of arguments.')
    if opts.clean_function_args:
        popped, params = _cleaned_args(name, params, opts)
        if opts.inner_thoughts == "params":
            thoughts = popped
    return thoughts, [ToolCall(name, params)]


def parse_memgpt(raw: str, context: ParseContext) -> ParseResult:
    opts = _Options.of(context.options)
    if opts.inner_thoughts not in _PLACEMENTS:
        return ParseResult(error=ParseError(f"parser option inner_thoughts is '{opts.inner_thoughts}'; "
                                            f"it must be one of {', '.join(_PLACEMENTS)}"))
    repairs = []
    text, shift = with_prefix(raw, context.prefix)  # the model may have written only the continuation
    if opts.strip_eot:
        stripped = text.rstrip()
        if stripped.endswith(EOT):
            stripped = stripped[: -len(EOT)]
            repairs.append(f"removed a trailing {EOT} stop token")
        text = stripped

    try:
        value, cascade_repairs = clean_json(text)
    except CleanJSONError as e:
        position = max(e.position - shift, 0)  # an offset into raw, not into prefix + raw
        line = raw.count("\n", 0, position) + 1
        column = position - (raw.rfind("\n", 0, position) + 1) + 1
        message = (f"No valid JSON in the output, even after MemGPT's repairs (closing braces, escaping "
                   f"line breaks, keeping the first object...). It stops being JSON at line {line}, column {column}: "
                   f"{e.reason}.")
        return ParseResult(repairs=repairs, error=ParseError(message, position))
    repairs += cascade_repairs

    try:
        thoughts, calls = _read_call(value, opts)
    except _Reject as e:
        return ParseResult(repairs=repairs, error=ParseError(str(e)))
    # MemGPT's message puts the monologue in `content` (the corpus convention follows it); the
    # page also shows it as inner thoughts
    content = thoughts if isinstance(thoughts, str) else None
    return ParseResult(content=content, inner_thoughts=thoughts, tool_calls=calls, repairs=repairs)


MEMGPT_INNER_MONOLOGUE = Format(parse_memgpt, (FUNCTION_KEY, THOUGHTS_KEY))
