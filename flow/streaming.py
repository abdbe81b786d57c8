"""The incremental parse: the answer (content and calls) built while the output streams.

`Answer` is what a finished parse says, in the shape chat clients take: the text, and each call's
name with its arguments as one JSON string. `IncrementalParse` takes the output chunk by chunk and
hands out, as `Delta`s, only what the rest of the output is not expected to change:

- content while the output is prose, up to the last whole word before anything that could open a
  call (a character such as `<`, `[`, `{`, or the start of one of the format's call markers);
- a call's index and name once the name is complete, then its arguments (the JSON string of the
  final answer) in fragments that only grow, and MemGPT's inner thoughts as content, while the
  call is still being written.

Any parser works: no format is parsed twice. A call being written is read by *probing*: the output
so far is closed (its open JSON string, brackets and parentheses, tracked by `_Scan`) and parsed;
what is certain is what the probe and a second probe with one more character inside the open
string agree on. Parsing is amortized: at most once every 1/32 of the output so far, and not at
all while a string whose place in the answer is known grows (its characters are appended as they
come), so the cost per chunk stays small however long the output.

`finish()` hands out the rest from the final parse, so the deltas joined always give the answer the
whole output parses to; when something handed out does not fit it (the output stopped inside a
call, or a later part made the parser read an earlier one differently), `diverged` says how.
`replay()` runs a finished output through all this at several chunk sizes and names the first
difference from the whole output's answer (the endpoint's tests and the page's streaming check).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Callable

import parsers
import wrappers
from core.conversation import Conversation
from parsers import ParseContext, ParseResult

CALL_OPENERS = "<[{`|>✿"  # characters a call's marker can begin with, in the formats of parsers/
REPARSE_FRACTION = 32  # parse again once the output grew by 1/32 (amortized linear cost)
CHUNK_SIZES = (1, 2, 7, None)  # None: the whole output as one chunk
_CLOSING = {"{": "}", "[": "]", "(": ")"}
_PROBE = "x"  # the extra character of the second probe


@dataclass
class Call:
    name: str
    arguments: str  # JSON text


@dataclass
class Answer:
    content: str | None = None
    calls: list[Call] = field(default_factory=list)
    error: str | None = None  # the parse failed: `content` is then the raw output (blank ends trimmed)
    notes: list[str] = field(default_factory=list)  # calls the request's policy turned away, and why


@dataclass
class Delta:
    kind: str  # "content" | "call" (text = the name) | "arguments" (text = a fragment)
    text: str
    index: int = 0  # the call's position


@dataclass(frozen=True)
class Policy:
    """Which parsed calls an answer may hold; each `*_why` is the request's reason, for the note."""

    no_calls_why: str | None = None  # calls are not allowed ("tool_choice is none"): they come back as text
    only: str | None = None  # the one function calls may name; calls to others are dropped
    only_why: str = ""
    max_calls: int | None = None  # keep the first N calls
    max_why: str = ""

    def calls(self, calls: list) -> list:
        if self.no_calls_why is not None:
            return []
        kept = [c for c in calls if self.only is None or c.name == self.only]
        return kept if self.max_calls is None else kept[:self.max_calls]


ANY = Policy()


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


def _named(parsed: ParseResult) -> list:
    return [c for c in parsed.tool_calls if isinstance(c.name, str) and c.name]


def _names(calls: list) -> str:
    return ", ".join(c.name for c in calls)


def answer(parsed: ParseResult, raw: str, policy: Policy = ANY) -> Answer:
    """The answer a finished parse gives; a failed parse gives the raw text and says why."""
    found = _named(parsed)
    if parsed.error is not None and not found:
        return Answer(content=raw.strip() or None, error=parsed.error.message)
    if policy.no_calls_why is not None and found:
        return Answer(content=raw.strip() or None, notes=[
            f"the output holds {len(found)} call(s) ({_names(found)}) but {policy.no_calls_why}: returned as text"])
    notes = []
    kept = [c for c in found if policy.only is None or c.name == policy.only]
    if len(kept) < len(found):
        others = [c for c in found if c.name != policy.only]
        notes.append(f"dropped {len(others)} call(s) to other functions ({_names(others)}): {policy.only_why}")
    if policy.max_calls is not None and len(kept) > policy.max_calls:
        notes.append(f"kept the first {policy.max_calls} of {len(kept)} calls ({_names(kept)}): {policy.max_why}")
        kept = kept[:policy.max_calls]
    return Answer(content=_content(parsed), calls=[Call(c.name, arguments_json(c.arguments)) for c in kept], notes=notes)


def _common(a: str, b: str) -> str:
    return os.path.commonprefix([a, b])


class _Scan:
    """The JSON-ish state at the end of the output so far (open strings and brackets), one character at a time.

    Quotes count only inside brackets (prose has apostrophes and quotations); `'` strings only inside
    parentheses (Python-style calls). `last` is the last thing outside strings: "open", "close",
    "value" (a string value ended), "key", "colon", "comma" or "bare" (a number, a literal, a name).
    """

    def __init__(self):
        self.stack: list[str] = []
        self.quote = ""  # the open string's quote, "" outside strings
        self.key = False  # the open string is an object key
        self.escape = -1  # where an unfinished escape inside the open string starts
        self.strings = 0  # strings opened so far: tells one string from the next
        self.brackets = 0  # brackets opened or closed so far
        self.outside = 0  # characters other than blanks written outside brackets so far
        self.last = ""
        self.pos = 0

    def advance(self, text: str) -> None:
        for i in range(self.pos, len(text)):
            c = text[i]
            if self.quote:
                if self.escape >= 0:
                    if i - self.escape >= (5 if text[self.escape + 1] == "u" else 1):
                        self.escape = -1
                elif c == "\\":
                    self.escape = i
                elif c == self.quote:
                    self.quote, self.last = "", "key" if self.key else "value"
            elif not self.stack:
                if c in _CLOSING:
                    self.stack.append(c)
                    self.last, self.brackets = "open", self.brackets + 1
                elif not c.isspace():
                    self.outside += 1
            elif c == '"' or (c == "'" and "(" in self.stack):
                self.quote, self.strings = c, self.strings + 1
                self.key = self.stack[-1] == "{" and self.last in ("open", "comma")
            elif c in _CLOSING:
                self.stack.append(c)
                self.last, self.brackets = "open", self.brackets + 1
            elif c in "}])":
                if _CLOSING[self.stack[-1]] == c:
                    self.stack.pop()
                    self.last, self.brackets = "close", self.brackets + 1
            elif c in ":=":
                self.last = "colon"
            elif c == ",":
                self.last = "comma"
            elif not c.isspace():
                self.last = "bare"
        self.pos = len(text)

    def cut(self, text: str) -> int:
        """Where the certain part of the open string ends: before an unfinished escape or half a surrogate pair."""
        if self.escape >= 0:
            return self.escape
        tail = text[-6:]
        if self.quote and len(tail) == 6 and tail[:2] == "\\u" and "d800" <= tail[2:].lower() < "dc00":
            return len(text) - 6
        return len(text)

    def closer(self) -> str:
        return self.quote + "".join(_CLOSING[b] for b in reversed(self.stack))

    def probe_point(self) -> str:
        """"string" (inside a string value), "closed" (after a value or a bracket) or "" (not a point to probe at)."""
        if not self.stack:
            return ""
        if self.quote:
            return "" if self.key else "string"
        return "closed" if self.last in ("value", "close", "open") else ""


@dataclass
class _Sink:
    """Where the characters of the open string go while it grows: the content, or call `index`'s arguments."""

    kind: str  # "content" | "arguments"
    index: int
    string: int  # _Scan.strings when found
    pos: int  # the raw output up to here is in the answer already


class IncrementalParse:
    def __init__(self, parse: Callable[[str], ParseResult], markers: tuple[str, ...] | list[str] = (),
                 prefix: str = "", policy: Policy = ANY):
        self.parse, self.policy, self.prefix = parse, policy, prefix
        self.markers = [m.lower() for m in markers]
        self._longest = max(map(len, self.markers), default=0)
        # the markers' first characters (never a whole marker) by their last character, longest first: what the
        # end of the output may hold while a marker is being written
        self._prefixes: dict[str, list[tuple[int, str]]] = {}
        for k, prefix in sorted({(k, m[:k]) for m in self.markers for k in range(1, len(m))}, reverse=True):
            self._prefixes.setdefault(prefix[-1], []).append((k, prefix))
        self.raw = ""
        self.content = ""  # handed out so far
        self.names: list[str] = []
        self.arguments: list[str] = []
        self.diverged: str | None = None
        self.parses = 0  # parser runs so far (the cost, for tests and benchmarks)
        self._scan, self._echo = _Scan(), False
        self._parsed_at = 0
        self._sink: _Sink | None = None
        self._settling: tuple | None = None  # the last call and the text outside brackets at the previous parse

    @classmethod
    def for_wrapper(cls, name: str, conversation: Conversation | None = None, policy: Policy = ANY) -> "IncrementalParse":
        wrapper = wrappers.get(name)
        conversation = conversation or Conversation(messages=[])
        prefix = wrapper.prefix_for({**wrapper.variables, **conversation.template_variables})
        return cls(lambda text: wrapper.parse(text, conversation), parsers.call_markers(wrapper.parser), prefix, policy)

    @classmethod
    def for_format(cls, format_id: str, functions: list[dict] | None = None, policy: Policy = ANY) -> "IncrementalParse":
        context = ParseContext(functions=list(functions or []))
        return cls(lambda text: parsers.parse(format_id, text, context), parsers.call_markers(format_id), "", policy)

    # --- feeding -------------------------------------------------------------------------------------------

    def feed(self, chunk: str) -> list[Delta]:
        """The deltas the output so far (with `chunk` appended) settles."""
        if not chunk:
            return []
        self.raw += chunk
        self._advance()
        sink = self._sink
        if sink is not None and self._scan.quote and self._scan.strings == sink.string:
            return self._stream_string(sink)
        self._sink = None
        if len(self.raw) - self._parsed_at < max(1, len(self.raw) // REPARSE_FRACTION):
            return []
        return self._step()

    def _advance(self) -> None:
        """Scan the new text; the parser sees prefix + raw unless the model repeated the prefix itself."""
        echo = bool(self.prefix) and self.raw.startswith(self.prefix)
        if echo != self._echo:
            self._scan, self._echo = _Scan(), echo
        self._scan.advance(self._scanned())

    def _scanned(self) -> str:
        return self.raw if self._echo or not self.prefix else self.prefix + self.raw

    def _cut(self) -> int:
        """Where the certain part of the output ends, in the raw output (see _Scan.cut)."""
        return self._scan.cut(self._scanned()) - (0 if self._echo else len(self.prefix))

    def _stream_string(self, sink: _Sink) -> list[Delta]:
        end = self._cut()
        piece = self.raw[sink.pos:end]
        if not piece:
            return []
        try:
            text = json.loads(f'"{piece}"', strict=False) if self._scan.quote == '"' or "\\" not in piece else None
        except json.JSONDecodeError:
            text = None
        if text is None:  # an escape JSON does not know: leave it to the next parse
            self._sink = None
            return []
        sink.pos = end
        if sink.kind == "content":
            self.content += text
            return [Delta("content", text)]
        fragment = json.dumps(text, ensure_ascii=False)[1:-1]
        self.arguments[sink.index] += fragment
        return [Delta("arguments", fragment, sink.index)]

    # --- one parse step ------------------------------------------------------------------------------------

    def _probes(self) -> tuple[str, str | None] | None:
        point = self._scan.probe_point()
        if not point:
            return None
        cut = self._cut()
        if cut < 0:
            return None
        closer = self._scan.closer()
        head = self.raw[:cut]
        return head + closer, (head + _PROBE + closer if point == "string" else None)

    def _step(self) -> list[Delta]:
        self._parsed_at = len(self.raw)
        now = self._parse(self.raw)
        view, other = now, None
        probes = self._probes()
        if probes is not None:
            probe = self._parse(probes[0])
            if len(_named(probe)) > len(_named(now)) or (now.error is not None and probe.error is None and _named(probe)):
                view = probe  # the probe closed a call being written
            if probes[1] is not None and _named(view):
                other = self._parse(probes[1])
        calls = self.policy.calls(_named(view))
        inside = probes is not None and (view is not now or bool(_named(view)))
        out = self._content_step(now, view, other, calls, inside)
        if probes is not None:
            last = "open"
        elif self._scan.stack:
            last = "frozen"  # inside brackets between tokens (after a key, a colon, a number...): wait for the next point
        else:
            last = "complete" if self._settled(calls) else "frozen"
        out += self._calls_step(calls, other, last)
        return out

    def _parse(self, text: str) -> ParseResult:
        self.parses += 1
        return self.parse(text)

    def _settled(self, calls: list) -> bool:
        """Outside brackets, the last call is settled once text went on after it and left it as it was."""
        if not calls:
            self._settling = None
            return True
        seen = (calls[-1].name, arguments_json(calls[-1].arguments), len(calls), self._scan.brackets)
        before, self._settling = self._settling, (seen, self._scan.outside)
        return before is not None and before[0] == seen and before[1] < self._scan.outside

    def _content_step(self, now: ParseResult, view: ParseResult, other: ParseResult | None, calls: list,
                      inside: bool) -> list[Delta]:
        if self.policy.no_calls_why is not None:  # calls come back as text: only the raw output's own beginning is certain
            safe = self._settled_prose((_content(now) or "") if now.error is None else "")
            return self._grow_content(safe) if self.raw.lstrip().startswith(safe) else []
        if inside:  # within a call: the content so far is what the probes agree on
            if view.error is not None and not _named(view):
                return []
            target = _content(view) or ""
            theirs = _content(other) or "" if other is not None else None
            if theirs is not None and theirs != target:
                if theirs != target + _PROBE:
                    return []  # the open string is not only the content's
                out = self._grow_content(target)  # the open string is the content (MemGPT's inner thoughts)
                if self.content == target:
                    self._sink = _Sink("content", -1, self._scan.strings, self._cut())
                return out
            return self._grow_content(self._settled_prose(target))
        if now.error is not None or self.names or calls:
            return []
        text = now.content if isinstance(now.content, str) else ""
        safe = self._settled_prose(text)
        return self._grow_content(safe) if self.raw.lstrip().startswith(safe) else []

    def _settled_prose(self, text: str) -> str:
        """`text` up to the last whole word before anything new that could open a call."""
        start = len(self.content) if text.startswith(self.content) else 0
        cut = min((i for i in (text.find(c, start) for c in CALL_OPENERS) if i >= 0), default=len(text))
        window = max(0, start - self._longest)  # lower-cased: what is new, and a marker's length before it
        lower = text[window:].lower()
        for marker in self.markers:
            at = lower.find(marker, start - window)
            if at >= 0:
                cut = min(cut, window + at)
        for k, prefix in self._prefixes.get(lower[-1:], ()):  # the text may end with the first characters of a marker
            if lower.endswith(prefix):
                cut = min(cut, len(text) - k)
                break
        safe = text[:cut]
        return safe[:max(safe.rfind(" "), safe.rfind("\n"), 0)]  # a last word may still grow into a marker

    def _grow_content(self, target: str) -> list[Delta]:
        if len(target) > len(self.content) and target.startswith(self.content):
            text = target[len(self.content):]
            self.content = target
            return [Delta("content", text)]
        return []

    def _calls_step(self, calls: list, other: ParseResult | None, last: str) -> list[Delta]:
        """`last`: the last call is "complete", "open" (read by probing) or "frozen" (nothing new of it yet)."""
        out: list[Delta] = []
        theirs = self.policy.calls(_named(other)) if other is not None else None
        for i, call in enumerate(calls):
            is_last = i == len(calls) - 1
            if is_last and last == "frozen":
                break
            if i >= len(self.names):
                if is_last and last == "open" and theirs is not None and (len(theirs) <= i or theirs[i].name != call.name):
                    break  # the name is still being written
                self.names.append(call.name)
                self.arguments.append("")
                out.append(Delta("call", call.name, i))
            elif self.names[i] != call.name:
                break  # a parser that changed its mind: `finish` names it
            target = arguments_json(call.arguments)
            if not (is_last and last == "open"):
                out += self._grow_arguments(i, target)
                continue
            if theirs is not None and len(theirs) > i:
                target = _common(target, arguments_json(theirs[i].arguments))
            settled = target.rstrip("}])")  # a closing bracket the probe added is not the model's yet
            out += self._grow_arguments(i, settled)
            if (theirs is not None and settled == target and self.arguments[i] == target and len(theirs) > i
                    and arguments_json(theirs[i].arguments)[len(target):].startswith(_PROBE)):
                self._sink = _Sink("arguments", i, self._scan.strings, self._cut())
        return out

    def _grow_arguments(self, i: int, target: str) -> list[Delta]:
        current = self.arguments[i]
        if len(target) > len(current) and target.startswith(current):
            self.arguments[i] = target
            return [Delta("arguments", target[len(current):], i)]
        return []

    # --- the end ---------------------------------------------------------------------------------------------

    def finish(self, final: Answer) -> list[Delta]:
        """The rest of `final` after what was handed out (and `diverged` set if something does not fit)."""
        problems = []
        out: list[Delta] = []
        content = final.content or ""
        if content.startswith(self.content):
            out += self._grow_content(content)
        else:
            problems.append(f"the streamed text {self.content!r} does not begin the final text")
        for i, call in enumerate(final.calls):
            if i >= len(self.names):
                self.names.append(call.name)
                self.arguments.append("")
                out.append(Delta("call", call.name, i))
                out += self._grow_arguments(i, call.arguments)
                continue
            if self.names[i] != call.name:
                problems.append(f"call {i} was streamed as {self.names[i]} but is {call.name}")
            if call.arguments.startswith(self.arguments[i]):
                out += self._grow_arguments(i, call.arguments)
            else:
                problems.append(f"call {i}'s streamed arguments {self.arguments[i]!r} do not begin its final arguments")
        if len(self.names) > len(final.calls):
            problems.append(f"streamed {len(self.names)} call(s) but the final parse has {len(final.calls)}")
        if problems:
            self.diverged = "; ".join(problems)
        return out


def reassemble(deltas: list[Delta]) -> Answer:
    """The answer a client builds from the deltas."""
    result = Answer()
    for d in deltas:
        if d.kind == "content":
            result.content = (result.content or "") + d.text
        elif d.kind == "call":
            result.calls.append(Call(d.text, ""))
        else:
            result.calls[d.index].arguments += d.text
    return result


# --- replay: a finished output streamed again at several chunk sizes --------------------------------------------

@dataclass
class ReplayRun:
    chunk_size: int | None  # None: the whole output as one chunk
    answer: Answer  # what a client assembles from the deltas
    difference: str | None  # the first difference from the whole output's answer, or None
    diverged: str | None  # what the incremental parse itself noticed at the end (see IncrementalParse.finish)
    early: int  # deltas handed out before the output ended
    parses: int  # parser runs it took


@dataclass
class Replay:
    final: Answer  # the whole output's answer
    runs: list[ReplayRun]

    @property
    def ok(self) -> bool:
        return all(run.difference is None for run in self.runs)

    def summary(self) -> str:
        if self.ok:
            return f"the same answer streamed at chunk sizes {', '.join(_size(r.chunk_size) for r in self.runs)}"
        return "; ".join(f"chunk size {_size(r.chunk_size)}: {r.difference}" for r in self.runs if r.difference)


def _size(chunk_size: int | None) -> str:
    return "whole" if chunk_size is None else str(chunk_size)


def difference(got: Answer, want: Answer) -> str | None:
    """The first difference between two answers, in a sentence, or None."""
    if (got.content or None) != (want.content or None):
        a, b = got.content or "", want.content or ""
        at = len(_common(a, b))
        return f"the text differs at character {at}: {a[at:at + 30]!r} instead of {b[at:at + 30]!r}"
    if len(got.calls) != len(want.calls):
        return f"{len(got.calls)} call(s) instead of {len(want.calls)}"
    for i, (g, w) in enumerate(zip(got.calls, want.calls, strict=True)):
        if g.name != w.name:
            return f"call {i} is {g.name} instead of {w.name}"
        if g.arguments != w.arguments:
            at = len(_common(g.arguments, w.arguments))
            return (f"call {i}'s arguments differ at character {at}: "
                    f"{g.arguments[at:at + 30]!r} instead of {w.arguments[at:at + 30]!r}")
    return None


def replay(raw: str, wrapper: str | None = None, format_id: str | None = None, conversation: Conversation | None = None,
           policy: Policy = ANY, chunk_sizes=CHUNK_SIZES) -> Replay:
    """Stream a finished output again through the incremental parse of a wrapper (or a bare parser format) at
    each chunk size, and compare what a client would assemble with the whole output's answer."""
    def fresh() -> IncrementalParse:
        if format_id:
            return IncrementalParse.for_format(format_id, conversation.functions if conversation else None, policy)
        return IncrementalParse.for_wrapper(wrapper or "", conversation, policy)

    final = answer(fresh().parse(raw), raw, policy)
    runs = []
    for size in chunk_sizes:
        incremental = fresh()
        step = size or max(1, len(raw))
        deltas: list[Delta] = []
        for start in range(0, len(raw), step):
            deltas += incremental.feed(raw[start:start + step])
        early = len(deltas)
        deltas += incremental.finish(final)
        got = reassemble(deltas)
        runs.append(ReplayRun(size, got, difference(got, final), incremental.diverged, early, incremental.parses))
    return Replay(final, runs)
