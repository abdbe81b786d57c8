"""Calls written as JSON: a call object's name and arguments (`call_from_obj`, the name/argument
keys chosen per format), calls from a JSON segment (`json_calls`; arrays, truncation with its
leading complete calls kept), and the usual places JSON calls sit: inside a tag (`json_body`),
bare in the text (`bare_json`), one after another (`json_sequence`), anywhere in prose
(`json_calls_in_prose`), after an opening marker with no closing one (`after_marker`), after a
known name (`named_json_call`)."""

from __future__ import annotations

import json
import re
from typing import Any

from .json_text import TOO_LARGE, Loaded, json_extent, load_json, loose_json_at
from .limits import MAX_CANDIDATES
from .out import Out
from .scan import Markers, Piece


def repair_note(out: Out, loaded: Loaded, what: str | None = None) -> None:
    if loaded.repairs:
        where = what or f"call {out.next_call}"
        out.note(f"repaired invalid JSON in {where} with json-repair: " + "; ".join(loaded.repairs))


NAME_KEYS = ("name",)
ARG_KEYS = ("arguments", "parameters")


def json_call_starts(name_keys: tuple[str, ...] = NAME_KEYS) -> tuple[str, ...]:
    """How a JSON call object with one of `name_keys` first begins: `{"name"` (a call marker)."""
    return tuple(f'{{"{key}"' for key in name_keys)


def call_from_obj(obj: Any, name_keys=NAME_KEYS, arg_keys=ARG_KEYS, args_required: bool = True) -> tuple[str, dict] | str:
    """(name, arguments) from a JSON call object, or a string saying why it is not one. Where a
    marker already says "this is a call", a missing arguments key means no arguments
    (`args_required=False`); bare JSON needs it, or every `{"name": …}` answer would be a call."""
    if not isinstance(obj, dict):
        return f"expected a call object, got {type(obj).__name__}"
    if isinstance(obj.get("function"), dict) and not any(k in obj for k in name_keys):
        obj = obj["function"]  # OpenAI shape {"type": "function", "function": {...}}
    name = next((obj[k] for k in name_keys if k in obj), None)
    if not isinstance(name, str) or not name.strip():
        return "the call has no function name"
    name = name.strip().replace("\\_", "_")
    key = next((k for k in arg_keys if k in obj), None)
    if key is None:
        return f"call '{name}' has no arguments object" if args_required else (name, {})
    args = decode_arguments(obj[key])
    if args is None:
        return f"the arguments of '{name}' are not an object"
    return name, args


def decode_arguments(args: Any) -> dict | None:
    """Arguments object; a JSON-encoded string (double encoding) is decoded; None means {}."""
    if args is None:
        return {}
    if isinstance(args, dict):
        return args
    if isinstance(args, str):
        s = args.strip()
        if not s:
            return {}
        try:
            value = json.loads(s)
        except (ValueError, RecursionError):
            return None
        return value if isinstance(value, dict) else None
    return None


def json_calls(
    out: Out,
    segment: str,
    index: int,
    *,
    shape: str = "any",  # "any" | "array" | "object"
    name_keys=NAME_KEYS,
    arg_keys=ARG_KEYS,
    convert=None,  # optional obj -> (name, args) | str, replaces call_from_obj
    args_required: bool = True,  # see call_from_obj
    call_index: int | None = None,  # where the call starts (its marker), for truncation errors
) -> bool | None:
    """Add the call(s) encoded as JSON in `segment` (found at `out.text[index]`).

    Returns True when calls (or an explicit empty list) were found, False (recording why as the
    error) when the segment is not a call, and None when it is a truncated call: then nothing is
    added for it (a truncated array keeps its complete leading calls) and the error gives where
    the unfinished call starts.
    """
    loaded = load_json(segment)
    lead = len(segment) - len(segment.lstrip())
    if not loaded.ok and loaded.truncated and loaded.scan and loaded.scan.elements:
        elements = loaded.scan.elements
        cut = elements[-1]
        stripped = segment.strip()
        head = stripped[:cut].rstrip().rstrip(",") + "]"
        if len(elements) > 1:
            json_calls(out, head, index + lead, shape=shape, name_keys=name_keys, args_required=args_required,
                               arg_keys=arg_keys, convert=convert)
        out.fail(f"truncated call: {loaded.error}", index + lead + cut)
        return None
    if not loaded.ok:
        if loaded.truncated:
            out.fail("truncated call: " + loaded.error, index + lead if call_index is None else call_index)
            return None
        out.fail("no call: " + loaded.error, index + lead)
        return False
    value = loaded.value
    if shape == "array" and not isinstance(value, list):
        out.fail("no call: expected a JSON array of calls", index + lead)
        return False
    if shape == "object" and not isinstance(value, dict):
        out.fail("no call: expected a JSON call object", index + lead)
        return False
    items = value if isinstance(value, list) else [value]
    parsed = []
    for item in items:
        got = convert(item) if convert else call_from_obj(item, name_keys, arg_keys, args_required)
        if isinstance(got, str):
            out.fail(f"no call: {got}", index + lead)
            continue
        parsed.append(got)
    if not parsed:
        if not items:
            return True  # an explicit empty list: "no call", and not an error
        return False
    repair_note(out, loaded, f"call {out.next_call}" if len(parsed) == 1
                else f"calls {out.next_call}-{out.next_call + len(parsed) - 1}")
    for name, args in parsed:
        out.add_call(name, args)
    return True


def json_body(shape: str = "any", name_keys=NAME_KEYS, arg_keys=ARG_KEYS, convert=None):
    """`on_body` for blocks holding JSON call(s): a body that is not JSON-like stays text; text
    after the JSON value inside the block is content."""

    def on_body(out: Out, body: str, index: int, block_index: int, closed: bool) -> bool:
        t = body.strip()
        if not t or t[0] not in "{[":
            if not closed and not t:
                out.fail("truncated call: the block is empty", block_index)
                return True
            return False
        lead = len(body) - len(body.lstrip())
        seg, end = json_extent(body, lead)
        found = json_calls(out, seg, index + lead, shape=shape, name_keys=name_keys, args_required=False,
                           arg_keys=arg_keys, convert=convert, call_index=block_index)
        if found is False:
            return False  # not a call: the block stays text
        rest = body[end:]
        if rest.strip():
            out.add_text(rest)
        return True

    return on_body

def quiet_json_calls(out: Out, segment: str, index: int, **kw) -> bool | None:
    """`json_calls` for fallbacks (bare JSON, fences): a non-call is just text, not an error (but
    invalid JSON too large to repair is said to be, as it may have been a call)."""
    saved = out.error
    found = json_calls(out, segment, index, **kw)
    if found is False and not (out.error and TOO_LARGE in out.error.message):
        out.error = saved
    return found


def bare_json(out: Out, piece: Piece, **kw) -> bool:
    """Text whose stripped form starts with a JSON value: calls from it, prose around it.
    Returns False (adding nothing) when it holds no call."""
    t = piece.text
    lead = len(t) - len(t.lstrip())
    if lead >= len(t) or t[lead] not in "{[":
        return False
    seg, end = json_extent(t, lead)
    found = quiet_json_calls(out, seg, piece.start + lead, call_index=piece.start + lead, **kw)
    if found is False:
        return False
    out.add_text(t[end:])
    return True


def json_sequence(out: Out, body: str, index: int, block_index: int, **kw) -> None:
    """Several JSON call values one after another (JSON Lines, `;`/`,` separated, pretty-printed
    objects). A line that is not JSON is skipped with an error; one cut off at the end is a
    truncated call."""
    i, n = 0, len(body)
    while i < n:
        while i < n and body[i] in " \t\r\n;,":
            i += 1
        if i >= n:
            return
        if body[i] in "{[":
            seg, end = json_extent(body, i)
            json_calls(out, seg, index + i, call_index=index + i, **kw)
            i = end
        else:
            nl = body.find("\n", i)
            nl = n if nl == -1 else nl
            out.fail(f"no call: {body[i:nl].strip()[:40]!r} is not a JSON call", index + i)
            i = nl


CANDIDATE_KEYS = ("name", "function", "type")  # what a call object in prose may start with
JSON_CALL_START = re.compile(r'\{\s*"(?:' + "|".join(CANDIDATE_KEYS) + ')"')
_SEPARATORS = " \t\r\n;"


def json_calls_in_prose(out: Out, piece: Piece) -> None:
    """Every `{"name": …}` call object in the text (Llama 3.x style), prose between them kept as
    content; invalid JSON stays text."""
    text, i, failures = piece.text, 0, 0
    pending = 0  # start of text not yet given to content
    budget = 2 * len(text) + 100_000  # characters the bracket matching may scan in all
    while failures < MAX_CANDIDATES and budget > 0:
        m = JSON_CALL_START.search(text, i)
        if m is None:
            break
        k = m.start()
        seg, end = json_extent(text, k)
        budget -= end - k
        found = quiet_json_calls(out, seg, piece.start + k, call_index=piece.start + k)
        if found is False:
            if end == len(text):
                break  # unclosed up to the end: later candidates are inside it
            failures += 1
            i = k + 1
            continue
        out.add_text(text[pending:k].strip(_SEPARATORS))
        pending = i = end
    else:
        gave_up_at = JSON_CALL_START.search(text, i)
        if gave_up_at:  # a limit stopped the scan: later calls are not read, so say where
            out.fail(f"no call: stopped looking for calls here, after {failures} places that looked like one "
                     f"(at most {MAX_CANDIDATES} are tried)", piece.start + gave_up_at.start())
    out.add_text(text[pending:].strip(_SEPARATORS))


def after_marker(out: Out, pieces: list[Piece], markers: tuple[str, ...], **kw) -> None:
    """Formats with an opening marker and no closing one: `MARKER {json}` / `MARKER [json]`, the
    JSON value bracket-matched (text after it is content). A marker not followed by JSON stays
    text; a marker at the very end is a truncated call."""
    for piece in pieces:
        text, i = piece.text, 0
        finder = Markers(text, markers)
        while True:
            m, which = finder.find(i)
            if m == -1:
                out.add_text(text[i:])
                break
            out.add_text(text[i:m])
            j = k = m + len(which)
            while k < len(text) and text[k].isspace():
                k += 1
            if k >= len(text):
                out.fail(f"truncated call: {which.strip()} at the end of the output", piece.start + m)
                break
            if text[k] not in "{[":
                out.add_text(text[m:j])
                i = j
                continue
            seg, end = json_extent(text, k)
            found = json_calls(out, seg, piece.start + k, call_index=piece.start + m, **kw)
            if found is False:
                out.add_text(text[m:end])
            i = end


def named_json_call(out: Out, name: str, text: str, index: int, call_index: int) -> int:
    """`text` (at out.text[index]) starts with the JSON arguments of a call to `name`: add the call
    and return where the JSON ends in `text` (the rest is for the caller). Missing or cut-off JSON
    is a truncated call; a JSON-encoded string is decoded."""
    lead = len(text) - len(text.lstrip())
    if lead >= len(text):
        out.fail(f"truncated call: no arguments for {name}", call_index)
        return len(text)
    if text[lead] in "{[":
        seg, end = json_extent(text, lead)
    elif text[lead] == '"':
        dec = loose_json_at(text, lead)
        if dec is None:
            out.fail(f"truncated call: the arguments of {name} are cut off", call_index)
            return len(text)
        seg, end = text[lead : dec[1]], dec[1]
    else:
        out.fail(f"no call: the arguments of {name} are not JSON", index + lead)
        return lead
    loaded = load_json(seg)
    if not loaded.ok:
        if loaded.truncated:
            out.fail(f"truncated call: {loaded.error}", call_index)
        else:
            out.fail(f"no call: invalid arguments for {name}: {loaded.error}", index + lead)
        return end
    args = decode_arguments(loaded.value)
    if args is None:
        out.fail(f"no call: the arguments of {name} are not an object", index + lead)
        return end
    if isinstance(loaded.value, str):
        out.note(f"decoded the JSON-encoded arguments string of call {out.next_call}")
    repair_note(out, loaded)
    out.add_call(name, args)
    return end
