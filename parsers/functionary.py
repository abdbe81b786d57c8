"""MeetKai Functionary formats (the prompt ends inside the first header, so the raw output starts
with a recipient). Recipient `all` is text; `python` carries raw code (a `python` call with
`{"code": …}`); any other recipient is a function with JSON arguments.

- `functionary_v2`: `<|from|>assistant⏎<|recipient|>NAME⏎<|content|>{json}<|stop|>`
- `functionary_v3_1`: `<function=NAME>{json}</function>`; `<|python_tag|>` + raw code
- `functionary_v3_2`: `>>>NAME⏎{json}` segments (`>>>all⏎text`)
"""

from __future__ import annotations

import re

from .result import Format, ParseContext, ParseResult
from .toolkit.json_calls import named_json_call
from .toolkit.out import Out
from .toolkit.scan import Markers, split_at

FROM, RECIPIENT, CONTENT, STOP = "<|from|>", "<|recipient|>", "<|content|>", "<|stop|>"  # v2's header tokens
FUNCTION, PYTHON_TAG = "<function=", "<|python_tag|>"  # v3.1
SEGMENT = ">>>"  # v3.2


def _recipient_body(out: Out, recipient: str, body: str, index: int, call_index: int) -> None:
    if recipient == "all":
        out.add_text(body)
    elif recipient == "python":
        code = out.clean(body)
        if code:
            out.add_call("python", {"code": code})
        else:
            out.fail("truncated call: python recipient without code", call_index)
    else:
        end = named_json_call(out, recipient, body, index, call_index)
        out.add_text(body[end:])


def parse_functionary_v2(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    for k, part in enumerate(split_at(out.text, FROM)):
        start, message = part.start, part.text
        end = message.find(STOP)
        message = message if end == -1 else message[:end]
        r = message.find(RECIPIENT)
        if r != -1:
            head_at = r + len(RECIPIENT)
        elif k == 0:
            head_at = 0  # continuation of the prompt's `<|recipient|>`
        else:
            out.add_text(message)
            continue
        c = message.find(CONTENT, head_at)
        if c == -1:
            if k == 0 and r == -1:
                out.add_text(message)
            elif message[head_at:].strip():
                out.fail("truncated call: header without <|content|>", start + head_at)
            continue
        recipient = message[head_at:c].strip()
        body_at = c + len(CONTENT)
        _recipient_body(out, recipient, message[body_at:], start + body_at, start + head_at)
    return out.result()


def parse_functionary_v3_1(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    text, i = out.text, 0
    finder = Markers(text, (FUNCTION, PYTHON_TAG))
    while i < len(text):
        k, which = finder.find(i)
        if k == -1:
            break
        out.add_text(text[i:k])
        if which == PYTHON_TAG:
            _recipient_body(out, "python", text[k + len(which) :], k + len(which), k)
            return out.result()
        gt = text.find(">", k)
        if gt == -1:
            out.fail("truncated call: unfinished <function=…> tag", k)
            return out.result()
        name = text[k + len(FUNCTION) : gt].strip()
        end = gt + 1 + named_json_call(out, name, text[gt + 1 :], gt + 1, k)
        rest = text[end:]
        stripped = rest.lstrip()
        if stripped.startswith("</function>"):
            end += len(rest) - len(stripped) + len("</function>")
        elif stripped and "</function>".startswith(out.clean(stripped)):
            end = len(text)  # the closing tag itself was cut off
        i = end
    out.add_text(text[i:])
    return out.result()


FUNCTIONARY_V2 = Format(parse_functionary_v2, (RECIPIENT,))
FUNCTIONARY_V3_1 = Format(parse_functionary_v3_1, (FUNCTION, PYTHON_TAG))

_RECIPIENT = re.compile(r"\s*([A-Za-z_][\w.\-]*)[ \t]*\n")


def parse_functionary_v3_2(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    for k, part in enumerate(split_at(out.text, SEGMENT)):
        start, seg = part.start, part.text
        if not seg:
            continue
        m = _RECIPIENT.match(seg)
        if m is None and k > 0 and re.fullmatch(r"\s*[A-Za-z_][\w.\-]*\s*", out.clean(seg) or "x"):
            out.fail("truncated call: >>>recipient without a body", start - len(SEGMENT))
            continue
        if m is None or (k == 0 and m.group(1) not in ("all", "python") and not seg[m.end():].lstrip().startswith("{")):
            out.add_text(seg if k == 0 else SEGMENT + seg)
            continue
        _recipient_body(out, m.group(1), seg[m.end() :], start + m.end(), start)
    return out.result()


FUNCTIONARY_V3_2 = Format(parse_functionary_v3_2, (SEGMENT,))
