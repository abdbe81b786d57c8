"""XML-ish call bodies whose values are untyped text: `<INVOKE name=…><PARAM name=…>V…`
(`xml_invokes`), Qwen3-Coder's `<function=NAME><parameter=K>V…` (`function_eq_params`), tag
attributes, and the layout around a value that belongs to the format, not the value (the one
newline each side; Qwen3-Coder's indentation when the call is pretty-printed)."""

from __future__ import annotations

import re

from .json_text import load_json
from .out import Out
from .schema import cast_value

FUNCTION_EQ, PARAMETER_EQ = "<function=", "<parameter="  # Qwen3-Coder's tags

def strip_one_newline(s: str) -> str:
    """Remove exactly one wrapping newline on each side (values written on their own lines)."""
    if s.startswith("\r\n"):
        s = s[2:]
    elif s.startswith("\n"):
        s = s[1:]
    if s.endswith("\r\n"):
        s = s[:-2]
    elif s.endswith("\n"):
        s = s[:-1]
    return s


def strip_layout(s: str) -> str:
    """A Qwen3-Coder value without the layout the format puts around it.

    The template writes `<parameter=K>⏎V⏎</parameter>`: one newline each side is layout. A model
    that pretty-prints the call also indents: the closing tag sits on an indented line, and the
    value's lines carry at least that call's indentation, removed as their common indentation
    (inner indentation, as in code, stays). A value of only layout whitespace is empty. In the
    template's own layout (closing tag at the line start) the value's own whitespace is kept.
    """
    s = s[2:] if s.startswith("\r\n") else s[1:] if s.startswith("\n") else s
    tail = re.search(r"\r?\n([ \t]*)\Z", s)
    if tail:
        s = s[: tail.start()]
    if not s.strip():
        return ""
    if tail and tail.group(1):  # pretty-printed: drop the indentation all lines share
        lines = s.split("\n")
        indents = [len(line) - len(line.lstrip(" \t")) for line in lines if line.strip()]
        cut = min(indents)
        s = "\n".join(line[cut:] for line in lines)
    return s


_ATTR = re.compile(r"""([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")


def attributes(tag_text: str) -> dict[str, str]:
    """Attributes of an XML-ish start tag body (`name="x" string="true"`)."""
    return {m.group(1): next(g for g in m.groups()[1:] if g is not None) for m in _ATTR.finditer(tag_text)}


def xml_invokes(out: Out, body: str, base: int, invoke: str, param: str, *, typed_attr: str | None = None) -> None:
    """Calls written as `<INVOKE name="f"><PARAM name="k">v</PARAM>…</INVOKE>` (MiniMax-M2,
    DeepSeek-V3.2 DSML, Step-3). `invoke`/`param` are tag names including any prefix. An invoke
    without its closing tag is a truncated call."""
    open_inv, close_inv = "<" + invoke, "</" + invoke + ">"
    open_par, close_par = "<" + param, "</" + param + ">"
    i = 0
    while True:
        o = body.find(open_inv, i)
        if o == -1:
            return
        gt = body.find(">", o)
        if gt == -1:
            out.fail(f"truncated call: unfinished <{invoke}> tag", base + o)
            return
        attrs = attributes(body[o + len(open_inv) : gt])
        name = attrs.get("name", "").strip()
        c = body.find(close_inv, gt)
        if c == -1:
            out.fail(f"truncated call: <{invoke}> without {close_inv}", base + o)
            return
        i = c + len(close_inv)
        if not name:
            out.fail(f"no call: <{invoke}> without a name", base + o)
            continue
        args: dict = {}
        inner = body[gt + 1 : c]
        j = 0
        while True:
            p = inner.find(open_par, j)
            if p == -1:
                break
            pgt = inner.find(">", p)
            if pgt == -1:
                break
            pattrs = attributes(inner[p + len(open_par) : pgt])
            pc = inner.find(close_par, pgt)
            nxt = inner.find(open_par, pgt)
            if pc == -1 or (nxt != -1 and nxt < pc):  # missing closing tag: up to the next one
                pc = nxt if nxt != -1 else len(inner)
                j = pc
            else:
                j = pc + len(close_par)
            key = pattrs.get("name", "").strip()
            if not key:
                continue
            value = strip_one_newline(inner[pgt + 1 : pc])
            if typed_attr and pattrs.get(typed_attr, "").lower() == "true":
                args[key] = value
            elif typed_attr and pattrs.get(typed_attr, "").lower() == "false":
                loaded = load_json(value)
                args[key] = loaded.value if loaded.ok else cast_value(out.functions, name, key, value)
            else:
                args[key] = cast_value(out.functions, name, key, value)
        out.add_call(name, args)


def function_eq_params(out: Out, body: str, base: int, call_index: int | None = None) -> int:
    """Qwen3-Coder / Seed-OSS bodies: `<function=NAME><parameter=K>V</parameter>…</function>`.

    Returns where the last function ends in `body` (-1 when it holds no `<function=`). A function
    without `</function>` is a truncated call. A value runs to the last `</parameter>` before the
    next `<parameter=`.
    """
    i, end = 0, -1
    while True:
        o = body.find(FUNCTION_EQ, i)
        if o == -1:
            return end
        gt = body.find(">", o)
        c = body.find("</function>", o)
        if gt == -1 or c == -1 or c < gt:
            out.fail("truncated call: <function=…> without </function>",
                     base + o if call_index is None else call_index)
            return len(body)
        end = c + len("</function>")
        name = body[o + len(FUNCTION_EQ) : gt].strip()
        inner = body[gt + 1 : c]
        i = c + len("</function>")
        args: dict = {}
        starts = [m.start() for m in re.finditer(re.escape(PARAMETER_EQ), inner)]
        for k, p in enumerate(starts):
            pgt = inner.find(">", p)
            limit = starts[k + 1] if k + 1 < len(starts) else len(inner)
            if pgt == -1 or pgt > limit:
                continue
            key = inner[p + len(PARAMETER_EQ) : pgt].strip()
            region = inner[pgt + 1 : limit]
            close = region.rfind("</parameter>")
            value = region[:close] if close != -1 else region.rstrip()
            args[key] = cast_value(out.functions, name, key, strip_layout(value))
        if name:
            out.add_call(name, args)
        else:
            out.fail("no call: <function=> without a name", base + o)
