"""`gpt_oss_harmony`: OpenAI Harmony messages (gpt-oss).

`<|start|>assistant<|channel|>analysis<|message|>…<|end|>` is reasoning; a message whose header
names a recipient `to=functions.NAME` (in the role part or after the channel) is a call with JSON
arguments after `<|message|>`, ending at `<|call|>` (or the end of the output); `final` /
`commentary` messages without a recipient are content. The prompt ends with `<|start|>assistant`,
so the raw output usually starts in the middle of the first header.
"""

from __future__ import annotations

import re

from .result import Format, ParseContext, ParseResult
from .toolkit.json_calls import named_json_call
from .toolkit.out import Out
from .toolkit.scan import find_any, split_at

FUNCTIONS = "functions."  # the recipient namespace of function calls
CALL_RECIPIENT = "to=" + FUNCTIONS

_RECIPIENT = re.compile(r"to=([^\s<]+)")
_CHANNEL = re.compile(r"<\|channel\|>\s*(\w+)")
_ENDS = ("<|end|>", "<|call|>", "<|return|>")


def parse_gpt_oss_harmony(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    text = out.text
    if "<|message|>" not in text and "<|channel|>" not in text:
        out.add_text(text)  # no Harmony structure at all: plain text
        return out.result()
    for part in split_at(text, "<|start|>"):
        start, message = part.start, part.text
        h = message.find("<|message|>")
        if h == -1:
            if CALL_RECIPIENT in message:
                out.fail("truncated call: the call header has no <|message|>", start)
            elif message.strip() and "<|channel|>" not in message:
                out.add_text(message)
            continue
        header, body_at = message[:h], h + len("<|message|>")
        e, _ = find_any(message, _ENDS, body_at)
        body = message[body_at:] if e == -1 else message[body_at:e]
        recipient = _RECIPIENT.search(header)
        channel = _CHANNEL.search(header)
        channel_name = channel.group(1) if channel else ""
        if recipient and recipient.group(1).startswith(FUNCTIONS):
            name = recipient.group(1)[len(FUNCTIONS) :]
            named_json_call(out, name, body, start + body_at, start)
        elif recipient and recipient.group(1) != "assistant":
            out.note(f"message to built-in tool {recipient.group(1)!r} is not a function call; kept as reasoning")
            out.add_thought(body)
        elif channel_name == "analysis":
            out.add_thought(body)
        else:
            out.add_text(body)
    return out.result()


GPT_OSS_HARMONY = Format(parse_gpt_oss_harmony, (CALL_RECIPIENT,))
