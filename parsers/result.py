"""What a parser takes and returns: `ParseContext` in, `ParseResult` (content, reasoning, calls,
repairs, the first error and where, checks) out; `Format` pairs a parser with its call-start markers.

Imports nothing of the package, so the registry, the toolkit and the validator can all use it.
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


@dataclass(frozen=True)
class Format:
    """One output format: its parser, and the markers a call starts with (the strings the parser
    itself looks for, shown in the token view to tell "the model chose text" from "missed call")."""

    parse: Parser
    call_markers: tuple[str, ...]
