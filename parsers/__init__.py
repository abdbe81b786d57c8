"""Parser registry: one parser per output-format id, each `(raw, ParseContext) -> ParseResult`.

A parser never raises: whatever the model wrote, the result says what was found, which repairs were
applied, and, when parsing failed, the error and the position where it gave up.

`parse()` then checks every call against the functions of the context (`parsers.validate`: unknown
function names, missing required arguments, type mismatches) and lists what it found in
`ParseResult.checks`; wrappers may add their own checks (MemGPT's first-message verification and
heartbeat correction, `parsers.memgpt_checks`).
"""

from __future__ import annotations

from core.errors import UserError
from dataclasses import asdict, dataclass, field
from typing import Callable


@dataclass
class ToolCall:
    # faithful ports keep what the model wrote: MemGPT passes through a null name or string arguments
    name: str | None
    arguments: dict | str | None


@dataclass
class ParseError:
    message: str
    position: int | None = None


@dataclass
class Check:
    """Something a check found about the parsed output; the output itself is left as parsed.

    `source`: "schema" (the call against its function's JSON schema), "memgpt_first_message" (MemGPT's
    first-message verification would reject the reply), "memgpt_heartbeat" (MemGPT would change the
    call). `call`: the index of the tool call concerned, or None for the whole reply. `change`: what
    the checker would do to the call's arguments (e.g. {"request_heartbeat": true}), when it would.
    """

    source: str
    message: str
    call: int | None = None
    change: dict | None = None


@dataclass
class ParseResult:
    content: str | None = None
    inner_thoughts: str | dict | None = None  # MemGPT's noforce wrappers can yield an object here
    tool_calls: list[ToolCall] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    error: ParseError | None = None
    checks: list[Check] = field(default_factory=list)

    @property
    def function_call(self) -> ToolCall | None:
        return self.tool_calls[0] if self.tool_calls else None

    def to_dict(self) -> dict:
        fc = self.function_call
        return {
            "content": self.content,
            "inner_thoughts": self.inner_thoughts,
            "tool_calls": [asdict(c) for c in self.tool_calls],
            "function_call": asdict(fc) if fc else None,
            "repairs": list(self.repairs),
            "error": asdict(self.error) if self.error else None,
            "checks": [asdict(c) for c in self.checks],
        }

    def problems(self, call: int) -> list[str]:
        """The check messages about tool call number `call` (0-based)."""
        return [c.message for c in self.checks if c.call == call]


@dataclass
class ParseContext:
    """What a parser may know besides the raw text."""

    prefix: str = ""  # the forced assistant prefix the prompt ended with (MemGPT's trick)
    options: dict = field(default_factory=dict)  # the wrapper's parser options
    functions: list[dict] = field(default_factory=list)  # JSON-schema functions, for typing values


Parser = Callable[[str, ParseContext], ParseResult]
_PARSERS: dict[str, Parser] = {}


def register(format_id: str) -> Callable[[Parser], Parser]:
    def add(fn: Parser) -> Parser:
        _PARSERS[format_id] = fn
        return fn

    return add


def names() -> list[str]:
    return sorted(_PARSERS)


class UnknownParser(UserError, KeyError):
    def __str__(self) -> str:
        return f"unknown parser format '{self.args[0]}'; known formats: {', '.join(names())}"


def parse(format_id: str, raw: str, context: ParseContext | None = None) -> ParseResult:
    """Parse `raw` with the `format_id` parser, then validate the calls against `context.functions`
    (no functions given: no schema checks, since every name would be "unknown")."""
    try:
        parser = _PARSERS[format_id]
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
    from .validate import validate_calls

    try:
        problems = validate_calls(calls, functions)
    except Exception as e:  # a validator bug (an odd schema) must not hide the parse result
        return [Check("schema", f"the calls could not be validated: {type(e).__name__}: {e}")]
    return [Check("schema", message, call=i) for i, messages in enumerate(problems) for message in messages]


def _load_builtin_parsers() -> None:
    # every module in this package registers its parsers on import
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_load_builtin_parsers()
