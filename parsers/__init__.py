"""Parser registry: one parser per output-format id, each `(raw, ParseContext) -> ParseResult`.

A parser never raises: whatever the model wrote, the result says what was found, which repairs were
applied, and, when parsing failed, the error and the position where it gave up.
"""

from __future__ import annotations

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
class ParseResult:
    content: str | None = None
    inner_thoughts: str | dict | None = None  # MemGPT's noforce wrappers can yield an object here
    tool_calls: list[ToolCall] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    error: ParseError | None = None

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
        }


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


class UnknownParser(KeyError):
    def __str__(self) -> str:
        return f"unknown parser format '{self.args[0]}'; known formats: {', '.join(names())}"


def parse(format_id: str, raw: str, context: ParseContext | None = None) -> ParseResult:
    try:
        parser = _PARSERS[format_id]
    except KeyError:
        raise UnknownParser(format_id) from None
    try:
        return parser(raw, context or ParseContext())
    except Exception as e:  # a parser bug must not take the page down: report it as the result
        return ParseResult(error=ParseError(f"the {format_id} parser failed: {type(e).__name__}: {e}"))


def _load_builtin_parsers() -> None:
    # every module in this package registers its parsers on import
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_load_builtin_parsers()
