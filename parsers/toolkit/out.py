"""The result builder: `Out` collects content / reasoning / calls / repairs / the first error
while a parser walks the raw text (put behind its forced prefix), and turns them into a
`ParseResult` (content segments stripped and joined with "\\n")."""

from __future__ import annotations

from ..result import ParseContext, ParseError, ParseResult, ToolCall
from .scan import find_any

# end-of-turn / wrapper tokens that leak into the visible text and are not content
STOP_TOKENS = (
    "<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<|endoftext|>", "<|end_of_text|>",
    "<｜end▁of▁sentence｜>", "<|return|>", "<|call|>", "<SPECIAL_12>", "<|stop|>", "<|eot|>",
    "<|python_end|>", "<end_of_turn>", "<turn|>", "[e~[", "<seed:eos>", "<bot_end>",
    "<|END_OF_TURN_TOKEN|>", "<|eos|>", "<|message_sep|>", "<|assistant_end|>", "</s>",
)


def with_prefix(raw: str, prefix: str | None) -> tuple[str, int]:
    """The forced-prefix step: the prompt ended with `prefix` (MemGPT's `\\n{\\n  "function":`, a
    prefilled `<think>`), so the model wrote only the continuation: (prefix + raw, len(prefix)).
    A model that repeated the prefix itself: (raw, 0). `shift` turns positions back into raw's."""
    if prefix and not raw.startswith(prefix):
        return prefix + raw, len(prefix)
    return raw, 0


class Out:
    """Accumulates what a parser finds in `text` (= prefix + raw when the prefix was not echoed)."""

    def __init__(self, raw: str, context: ParseContext, *, drop: tuple[str, ...] = (), stop: tuple[str, ...] = ()):
        raw = raw if isinstance(raw, str) else str(raw or "")
        self.text, self.shift = with_prefix(raw, context.prefix)
        self.repairs: list[str] = []
        if stop:  # the turn is over at its end-of-turn token: what follows is runaway generation
            k, token = find_any(self.text, stop)
            if k != -1 and self.text[k + len(token) :].strip():
                self.repairs.append(f"ignored {len(self.text) - k - len(token)} characters generated after {token}")
            if k != -1:
                self.text = self.text[:k]
        self.context = context
        self.functions = list(context.functions or [])
        self.drop = STOP_TOKENS + tuple(drop)
        self.content: list[str] = []
        self.thoughts: list[str] = []
        self.calls: list[ToolCall] = []
        self.error: ParseError | None = None

    # positions reported to the user are offsets in the raw text, not in prefix + raw
    def pos(self, index: int | None) -> int | None:
        return None if index is None else max(0, index - self.shift)

    def clean(self, s: str) -> str:
        for token in self.drop:
            if token in s:
                s = s.replace(token, "")
        return s.strip()

    def add_text(self, s: str) -> None:
        s = self.clean(s)
        if s:
            self.content.append(s)

    def add_thought(self, s: str) -> None:
        s = self.clean(s)
        if s:
            self.thoughts.append(s)

    def add_call(self, name: str, arguments: dict) -> None:
        self.calls.append(ToolCall(name=name, arguments=arguments))

    def note(self, message: str) -> None:
        self.repairs.append(message)

    def fail(self, message: str, index: int | None = None) -> None:
        if self.error is None:  # the first problem is the one reported
            self.error = ParseError(message, self.pos(index))

    @property
    def next_call(self) -> int:
        return len(self.calls) + 1

    def result(self) -> ParseResult:
        return ParseResult(
            content="\n".join(self.content) or None,
            inner_thoughts="\n".join(self.thoughts) or None,
            tool_calls=self.calls,
            repairs=self.repairs,
            error=self.error,
        )
