"""Round trip: does a wrapper's parser read back the calls its own template writes?

For a past assistant turn that holds tool calls, the template writes the text the model is taught
to produce; the wrapper's parser must turn that text back into the same calls. The harness renders
the conversation twice, up to the generation prompt and with the assistant turn added, takes what
the second render adds after the text both share (so the forced assistant prefix is handled as the
parser sees it in a real run), cuts it at the first stop string (where a server would end the
generation) and parses it.

    check(wrapper, scenario="two parallel calls", template=None) -> RoundTrip
    check_all(wrapper) -> {scenario: RoundTrip}

Input shaping: templates differ in what a past call must look like. The calls go in as
`tool_calls` with arguments as objects first (what Hugging Face templates expect), then as JSON
strings (the OpenAI wire shape), then, for one call, as the legacy `function_call` (what MemGPT's
templates read); call ids are nine letters and digits (Mistral's templates refuse anything else),
or Kimi's `functions.NAME:INDEX` (which Kimi-K2-Thinking's template writes as the call's name);
content is "" (some templates refuse null), then null. The first shape that reads back is the
result; when none does, the most telling failure is reported (calls read back wrong,
then calls not written, then the turn refused). A template that refuses a system message is
given the conversation without one.

A result is `ok`, or says why not: the template refuses the turn (`refused`), writes no call for
it (`dropped`), or the parser reads back other calls (`mismatch`).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field, replace

from core.conversation import Conversation

from .render import TemplateError

FUNCTIONS = [
    {"name": "get_weather", "description": "Current weather for a city.",
     "parameters": {"type": "object", "properties": {
         "city": {"type": "string", "description": "City name"},
         "options": {"type": "object", "description": "Units and forecast days"},
         "note": {"type": "string", "description": "A note"}},
         "required": ["city"]}},
    {"name": "get_time", "description": "Current time.",
     "parameters": {"type": "object", "properties": {
         "timezone": {"type": "string", "description": "IANA time zone"}}}},
]

WEATHER = ("get_weather", {"city": "Paris"})
SCENARIOS: dict[str, list[tuple[str, dict]]] = {
    "one call": [WEATHER],
    "two parallel calls": [WEATHER, ("get_time", {"timezone": "Europe/Paris"})],
    "nested and non-ASCII arguments": [("get_weather", {
        "city": "São Paulo", "options": {"units": "métrique", "days": [1, 2], "hourly": True}, "note": "天气 ☀ «ok»"})],
    "empty arguments": [("get_time", {})],
}
LINT_SCENARIO = "two parallel calls"
CALL_IDS = ("a1b2c3d4e", "f5g6h7i8j")
NOW = "2024-07-26"  # a fixed date: both renders must agree on what strftime_now writes
SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
USER = {"role": "user", "content": "What is the weather in Paris, and the time there?"}


@dataclass(frozen=True)
class Shape:
    """How the calls of the assistant turn are given to the template."""

    field: str = "tool_calls"  # or "function_call" (one call)
    as_strings: bool = False  # arguments as JSON strings rather than objects
    content: str | None = ""
    kimi_ids: bool = False  # ids `functions.NAME:INDEX` rather than nine letters and digits

    def __str__(self) -> str:
        ids = ", ids functions.NAME:INDEX" if self.kimi_ids else ""
        return (f"{self.field} with arguments as {'JSON strings' if self.as_strings else 'objects'}, "
                f"content {json.dumps(self.content)}{ids}")

    def message(self, calls: list[tuple[str, dict]]) -> dict:
        functions = [{"name": name, "arguments": json.dumps(args, ensure_ascii=False) if self.as_strings else args}
                     for name, args in calls]
        if self.field == "function_call":
            return {"role": "assistant", "content": self.content, "function_call": functions[0]}
        return {"role": "assistant", "content": self.content, "tool_calls": [
            {"id": f"functions.{f['name']}:{i}" if self.kimi_ids else CALL_IDS[i % len(CALL_IDS)],
             "type": "function", "function": f} for i, f in enumerate(functions)]}


SHAPES = (Shape(), Shape(as_strings=True), Shape("function_call", as_strings=True), Shape(kimi_ids=True),
          Shape(content=None), Shape(as_strings=True, content=None), Shape("function_call", as_strings=True, content=None))
_TELLING = {"mismatch": 0, "dropped": 1, "refused": 2}  # which failure says most, first


@dataclass
class RoundTrip:
    scenario: str
    expected: list[tuple[str, dict]]
    ok: bool = False
    reason: str = ""  # "" when ok; "refused" | "dropped" | "mismatch"
    message: str = ""  # one sentence: what came back, or why nothing could
    turn: str = ""  # the text the template wrote for the assistant turn, as parsed
    got: list[tuple[str | None, object]] = field(default_factory=list)
    shape: str = ""  # how the calls were given to the template

    @property
    def read_back(self) -> int:
        """How many of the expected calls came back, in order, from the first."""
        n = 0
        for want, have in zip(self.expected, self.got, strict=False):
            if not _same(want, have):
                break
            n += 1
        return n

    @property
    def first_calls_only(self) -> bool:
        """The parser reads back the first calls exactly and nothing else (the format holds fewer
        calls per turn than were written), as opposed to reading a call wrong."""
        return self.reason == "mismatch" and 0 < self.read_back == len(self.got) < len(self.expected)


def _same(want: tuple[str, dict], have: tuple[str | None, object]) -> bool:
    return want[0] == have[0] and _canonical(want[1]) == _canonical(have[1])


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _render(wrapper, messages: list[dict], generation_prompt: bool) -> str:
    conversation = Conversation(messages=messages, functions=FUNCTIONS, now=NOW,
                                template_variables={"add_generation_prompt": generation_prompt})
    return wrapper.render(conversation)


def _base(wrapper) -> tuple[list[dict], str]:
    """The conversation before the assistant turn and its prompt (with the generation prompt);
    without a system message when the template refuses one. Raises TemplateError."""
    try:
        return [SYSTEM, USER], _render(wrapper, [SYSTEM, USER], True)
    except TemplateError:
        return [USER], _render(wrapper, [USER], True)


def _shared(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _after_prefix(written: str, prefix: str) -> str:
    """The model's part of a turn the template starts otherwise than its generation prompt: the
    prompt ends with the forced assistant prefix, so the model writes what follows the prefix
    wherever the template writes it (a header that differs, as in MemGPT's ports, is the lint's
    `generation_prompt` business, not the parser's)."""
    bare = prefix.strip()
    k = written.find(bare) if bare else -1
    return written if k == -1 else written[k + len(bare):]


def _cut_at_stop(text: str, stop: list[str]) -> tuple[str, str]:
    """The text up to the first stop string (a server ends the generation there), and that string."""
    ends = [(k, s) for s in stop if s and (k := text.find(s)) != -1]
    if not ends:
        return text, ""
    k, s = min(ends)
    return text[:k], s


def _describe(calls) -> str:
    return ", ".join(f"{name}({_canonical(args)})" for name, args in calls) or "no call"


def _difference(result: RoundTrip) -> str:
    k = result.read_back
    if k < len(result.expected) and k < len(result.got):
        return f"call {k + 1} comes back as {_describe([result.got[k]])}, written as {_describe([result.expected[k]])}"
    if k < len(result.expected):
        return f"call {k + 1} ({result.expected[k][0]}) does not come back"
    return f"an extra call comes back: {_describe(result.got[k:k + 1])}"


def _attempt(wrapper, scenario: str, base: list[dict], prompt: str, shape: Shape) -> RoundTrip:
    expected = SCENARIOS[scenario]
    result = RoundTrip(scenario, expected, shape=str(shape))
    try:
        full = _render(wrapper, [*base, shape.message(expected)], False)
    except TemplateError as e:
        result.reason, result.message = "refused", f"the template refuses an assistant turn with these calls: {e}"
        return result
    shared = _shared(prompt, full)
    written = full[shared:]
    names = {name for name, _ in expected}
    if not all(name in written for name in names):
        result.reason = "dropped"
        some = sum(name in written for name in names)
        result.message = (f"the template writes only {some} of the {len(names)} calls of a past assistant turn" if some else
                          "the template writes no call for a past assistant turn (the model never sees its own calls)")
        return result
    turn = _after_prefix(written, wrapper.prefix_for(wrapper.variables or {})) if shared < len(prompt) else written
    result.turn, stop = _cut_at_stop(turn, list(wrapper.stop or []))
    parsed = wrapper.parse(result.turn, Conversation(messages=base, functions=FUNCTIONS))
    result.got = [(c.name, c.arguments) for c in parsed.tool_calls]
    result.ok = len(result.got) == len(expected) and result.read_back == len(expected)
    if result.ok:
        result.message = f"the parser reads back {len(expected)} of {len(expected)} call{'s' * (len(expected) > 1)}"
        return result
    result.reason = "mismatch"
    error = f" (parser: {parsed.error.message})" if parsed.error else ""
    cut = [name for name, _ in expected if name not in result.turn]
    if stop and cut:
        error += f"; the stop string {stop!r} ends the turn before the call to {cut[0]}"
    diverged = ""
    if shared < len(prompt) and turn is written:
        diverged = (f"; the template starts a past assistant turn with {full[shared:shared + 24]!r} where the "
                    f"generation prompt has {prompt[shared:shared + 24]!r}")
    result.message = (f"the parser reads back {result.read_back} of the {len(expected)} calls the template writes; "
                      f"first difference: {_difference(result)}{error}{diverged}")
    return result


def check(wrapper, scenario: str = LINT_SCENARIO, template: str | None = None) -> RoundTrip:
    """Round-trip one scenario through `wrapper` (`template`: an edited template instead of its own)."""
    if template is not None:
        wrapper = replace(wrapper, template=template)
    expected = SCENARIOS[scenario]
    try:
        base, prompt = _base(wrapper)
    except TemplateError as e:
        return RoundTrip(scenario, expected, reason="refused", message=f"the template does not render: {e}")
    failures = []
    for shape in SHAPES:
        if shape.field == "function_call" and len(expected) > 1:
            continue  # the legacy field holds one call
        result = _attempt(wrapper, scenario, base, prompt, shape)
        if result.ok:
            return result
        failures.append(result)
    return min(failures, key=lambda r: _TELLING[r.reason])  # min is stable: the first shape among equals


def check_all(wrapper) -> dict[str, RoundTrip]:
    return {scenario: check(wrapper, scenario) for scenario in SCENARIOS}


def _key_of(wrapper, template: str | None) -> tuple:
    """What a round trip depends on: the template, the parser and everything it is given."""
    return (wrapper.template if template is None else template, wrapper.parser,
            _canonical(wrapper.parser_options or {}), tuple(wrapper.stop or ()), _canonical(wrapper.variables or {}),
            wrapper.assistant_prefix, wrapper.assistant_prefix_first_message)


_CACHE: dict[tuple, RoundTrip] = {}
_CACHE_SIZE = 64  # templates remembered; the oldest goes first
_lock = threading.Lock()


def check_cached(wrapper, template: str | None = None) -> RoundTrip:
    """`check` of the lint scenario, remembered by template text and parser (and what else the
    result depends on): the page re-lints on every keystroke, and only a changed template costs a
    new render and parse."""
    key = _key_of(wrapper, template)
    with _lock:
        known = _CACHE.get(key)
    if known is not None:
        return known
    result = check(wrapper, template=template)
    with _lock:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = result
    return result
