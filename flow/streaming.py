"""The incremental parse: the answer (content and calls) built while the output streams.

`Answer` is what a finished parse says, in the shape chat clients take: the text, and each call's
name with its arguments as one JSON string. `IncrementalParse` re-parses the output so far after
each chunk and hands out only what can no longer change, as `Delta`s:

- content, while no call has started and the text so far begins the raw output, up to the
  last whole word before anything that could open a call (`<`, `[`, `{`, a fence...);
- a call, name then arguments, once a later call follows it (a call still being written, or the
  last one, may yet change or vanish: a parser can read the whole output as a failure once more
  text arrives, e.g. MemGPT's with a second JSON object after the first).

`finish()` hands out the remainder from the final parse, so the deltas joined always give the
answer the whole output parses to; when an earlier delta does not fit the final answer (a parser
that reads an earlier part differently once later text arrives), `diverged` says how.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

from parsers import ParseResult

CALL_OPENERS = "<[{`|>✿"  # characters a call's marker can begin with, in the formats of parsers/


@dataclass
class Call:
    name: str
    arguments: str  # JSON text


@dataclass
class Answer:
    content: str | None = None
    calls: list[Call] = field(default_factory=list)
    error: str | None = None  # the parse failed: `content` is then the raw output (blank ends trimmed)


@dataclass
class Delta:
    kind: str  # "content" | "call" (text = the name) | "arguments" (text = a fragment)
    text: str
    index: int = 0  # the call's position


def arguments_json(arguments) -> str:
    if isinstance(arguments, str):
        return arguments  # a faithful port may keep what the model wrote
    return json.dumps({} if arguments is None else arguments, ensure_ascii=False)


def _content(parsed: ParseResult) -> str | None:
    if isinstance(parsed.content, str) and parsed.content:
        return parsed.content
    thoughts = parsed.inner_thoughts  # MemGPT's inner monologue is the assistant's text
    if isinstance(thoughts, dict):
        return json.dumps(thoughts, ensure_ascii=False)
    return thoughts or None


def _named(parsed: ParseResult, max_calls: int | None):
    calls = [c for c in parsed.tool_calls if isinstance(c.name, str) and c.name]
    return calls if max_calls is None else calls[:max_calls]


def answer(parsed: ParseResult, raw: str, max_calls: int | None = None) -> Answer:
    """The answer a finished parse gives; a failed parse gives the raw text and says why."""
    calls = _named(parsed, max_calls)
    if parsed.error is not None and not calls:
        return Answer(content=raw.strip() or None, error=parsed.error.message)
    return Answer(content=_content(parsed), calls=[Call(c.name, arguments_json(c.arguments)) for c in calls])


def _settled_content(text: str, raw: str) -> str:
    cut = min((i for i in (text.find(c) for c in CALL_OPENERS) if i >= 0), default=len(text))
    safe = text[:cut]
    safe = safe[:max(safe.rfind(" "), safe.rfind("\n"), 0)]  # a last word may still grow into a marker
    return safe if raw.lstrip().startswith(safe) else ""


class IncrementalParse:
    def __init__(self, parse: Callable[[str], ParseResult], max_calls: int | None = None):
        self.parse = parse
        self.max_calls = max_calls
        self.content = ""  # handed out so far
        self.names: list[str] = []
        self.arguments: list[str] = []
        self.diverged: str | None = None

    def _grow(self, current: str, target: str, make) -> list[Delta]:
        return [make(target[len(current):])] if len(target) > len(current) and target.startswith(current) else []

    def feed(self, raw: str) -> list[Delta]:
        """The deltas the output so far settles."""
        parsed = self.parse(raw)
        calls = _named(parsed, self.max_calls)
        out: list[Delta] = []
        if not calls and not self.names:
            if parsed.error is None and isinstance(parsed.content, str):
                safe = _settled_content(parsed.content, raw)
                out += self._grow(self.content, safe, lambda t: Delta("content", t))
                self.content += "".join(d.text for d in out)
            return out
        for i, call in enumerate(calls[:-1]):  # a call with a later one after it is complete
            if i == len(self.names):
                self.names.append(call.name)
                self.arguments.append("")
                out.append(Delta("call", call.name, i))
            if self.names[i] != call.name:
                break
            grown = self._grow(self.arguments[i], arguments_json(call.arguments), lambda t, i=i: Delta("arguments", t, i))
            self.arguments[i] += "".join(d.text for d in grown)
            out += grown
        return out

    def finish(self, final: Answer) -> list[Delta]:
        """The rest of `final` after what was handed out (and `diverged` set if something does not fit)."""
        problems = []
        out: list[Delta] = []
        content = final.content or ""
        if content.startswith(self.content):
            out += self._grow(self.content, content, lambda t: Delta("content", t))
        else:
            problems.append(f"the streamed text {self.content!r} does not begin the final text")
        for i, call in enumerate(final.calls):
            if i >= len(self.names):
                out.append(Delta("call", call.name, i))
                out += self._grow("", call.arguments, lambda t, i=i: Delta("arguments", t, i))
                continue
            if self.names[i] != call.name:
                problems.append(f"call {i} was streamed as {self.names[i]} but is {call.name}")
            if call.arguments.startswith(self.arguments[i]):
                out += self._grow(self.arguments[i], call.arguments, lambda t, i=i: Delta("arguments", t, i))
            else:
                problems.append(f"call {i}'s streamed arguments do not begin its final arguments")
        if len(self.names) > len(final.calls):
            problems.append(f"{len(self.names)} calls were streamed but the final parse has {len(final.calls)}")
        if problems:
            self.diverged = "; ".join(problems)
        return out


def reassemble(deltas: list[Delta]) -> Answer:
    """The answer a client builds from the deltas (what tests compare with the whole output's answer)."""
    result = Answer()
    for d in deltas:
        if d.kind == "content":
            result.content = (result.content or "") + d.text
        elif d.kind == "call":
            result.calls.append(Call(d.text, ""))
        else:
            result.calls[d.index].arguments += d.text
    return result
