"""MeetKai Functionary formats (the prompt ends inside the first header, so the raw output starts
with a recipient). Recipient `all` is text; `python` carries raw code (a `python` call with
`{"code": …}`); any other recipient is a function with JSON arguments.

- `functionary_v2`: `<|from|>assistant⏎<|recipient|>NAME⏎<|content|>{json}<|stop|>`
- `functionary_v3_1`: `<function=NAME>{json}</function>`; `<|python_tag|>` + raw code
- `functionary_v3_2`: `>>>NAME⏎{json}` segments (`>>>all⏎text`)
"""

from __future__ import annotations

import re

from . import ParseContext, ParseResult, register
from .common import Markers, Out, named_json_call


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


@register("functionary_v2")
def parse_functionary_v2(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    at = 0
    for k, message in enumerate(out.text.split("<|from|>")):
        start, at = at, at + len(message) + len("<|from|>")
        end = message.find("<|stop|>")
        message = message if end == -1 else message[:end]
        r = message.find("<|recipient|>")
        if r != -1:
            head_at = r + len("<|recipient|>")
        elif k == 0:
            head_at = 0  # continuation of the prompt's `<|recipient|>`
        else:
            out.add_text(message)
            continue
        c = message.find("<|content|>", head_at)
        if c == -1:
            if k == 0 and r == -1:
                out.add_text(message)
            elif message[head_at:].strip():
                out.fail("truncated call: header without <|content|>", start + head_at)
            continue
        recipient = message[head_at:c].strip()
        body_at = c + len("<|content|>")
        _recipient_body(out, recipient, message[body_at:], start + body_at, start + head_at)
    return out.result()


@register("functionary_v3_1")
def parse_functionary_v3_1(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    text, i = out.text, 0
    finder = Markers(text, ("<function=", "<|python_tag|>"))
    while i < len(text):
        k, which = finder.find(i)
        if k == -1:
            break
        out.add_text(text[i:k])
        if which == "<|python_tag|>":
            _recipient_body(out, "python", text[k + len(which) :], k + len(which), k)
            return out.result()
        gt = text.find(">", k)
        if gt == -1:
            out.fail("truncated call: unfinished <function=…> tag", k)
            return out.result()
        name = text[k + len("<function=") : gt].strip()
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


_RECIPIENT = re.compile(r"\s*([A-Za-z_][\w.\-]*)[ \t]*\n")


@register("functionary_v3_2")
def parse_functionary_v3_2(raw: str, context: ParseContext) -> ParseResult:
    out = Out(raw, context)
    at = 0
    for k, seg in enumerate(out.text.split(">>>")):
        start, at = at, at + len(seg) + len(">>>")
        if not seg:
            continue
        m = _RECIPIENT.match(seg)
        if m is None and k > 0 and re.fullmatch(r"\s*[A-Za-z_][\w.\-]*\s*", out.clean(seg) or "x"):
            out.fail("truncated call: >>>recipient without a body", start - len(">>>"))
            continue
        if m is None or (k == 0 and m.group(1) not in ("all", "python") and not seg[m.end():].lstrip().startswith("{")):
            out.add_text(seg if k == 0 else ">>>" + seg)
            continue
        _recipient_body(out, m.group(1), seg[m.end() :], start + m.end(), start)
    return out.result()
