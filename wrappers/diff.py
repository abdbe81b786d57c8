"""A pure prompt diff for display: two prompt strings in, highlighted segments and a summary out.

    d = prompt_diff(wrapper_prompt, model_prompt)
    d.segments   # [(text, kind)], kind in {"same", "added", "removed"}: the exact characters
    d.display    # the same segments with whitespace made visible in the changed ones
    d.summary    # "first difference at line 12, column 27: ..." or "the prompts are identical"

"removed" is text only in `a` (the first prompt), "added" text only in `b`. The diff is at character
level (difflib, without its junk heuristic, so repeated tokens are compared faithfully). `display`
is meant for Gradio's HighlightedText: `[(text, None | "+" | "-")]` is `display_pairs()`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

SAME, ADDED, REMOVED = "same", "added", "removed"
MAX_DIFF_CHARS = 200_000  # difflib is quadratic in the worst case; longer prompts are compared by line first


def visible(text: str) -> str:
    """Whitespace made visible: · for a space, → for a tab, ↵ for a line break (kept after it, so
    lines still break), ␍ for a carriage return."""
    return (text.replace(" ", "·").replace("\t", "→").replace("\r", "␍").replace("\n", "↵\n"))


@dataclass
class PromptDiff:
    segments: list[tuple[str, str]] = field(default_factory=list)
    display: list[tuple[str, str]] = field(default_factory=list)
    summary: str = ""
    identical: bool = True
    first_difference: tuple[int, int] | None = None  # (line, column), 1-based, in `a`

    def display_pairs(self) -> list[tuple[str, str | None]]:
        """For gr.HighlightedText: unchanged text unlabelled, "-" removed, "+" added."""
        labels = {SAME: None, ADDED: "+", REMOVED: "-"}
        return [(text, labels[kind]) for text, kind in self.display]

    def to_dict(self) -> dict:
        return {"segments": [list(s) for s in self.segments], "display": [list(s) for s in self.display],
                "summary": self.summary, "identical": self.identical, "first_difference": self.first_difference}


def _line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _opcodes(a: str, b: str):
    if len(a) + len(b) <= MAX_DIFF_CHARS:
        yield from difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
        return
    # huge prompts: diff lines first, then characters inside each changed block
    la, lb = a.splitlines(keepends=True), b.splitlines(keepends=True)
    oa = [0]
    for s in la:
        oa.append(oa[-1] + len(s))
    ob = [0]
    for s in lb:
        ob.append(ob[-1] + len(s))
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, la, lb, autojunk=False).get_opcodes():
        a1, a2, b1, b2 = oa[i1], oa[i2], ob[j1], ob[j2]
        if tag == "equal" or (a2 - a1) + (b2 - b1) > MAX_DIFF_CHARS:
            yield (tag, a1, a2, b1, b2)
            continue
        for t, x1, x2, y1, y2 in difflib.SequenceMatcher(None, a[a1:a2], b[b1:b2], autojunk=False).get_opcodes():
            yield (t, a1 + x1, a1 + x2, b1 + y1, b1 + y2)


def _show(text: str, limit: int = 40) -> str:
    shown = text if len(text) <= limit else text[:limit] + "…"
    return repr(shown)


def prompt_diff(a: str, b: str, a_name: str = "the first prompt", b_name: str = "the second prompt") -> PromptDiff:
    """Character-level diff of `a` (e.g. the wrapper's prompt) against `b` (e.g. the model's own)."""
    a, b = a or "", b or ""
    segments: list[tuple[str, str]] = []

    def add(text: str, kind: str) -> None:
        if not text:
            return
        if segments and segments[-1][1] == kind:
            segments[-1] = (segments[-1][0] + text, kind)
        else:
            segments.append((text, kind))

    first = None
    for tag, i1, i2, j1, j2 in _opcodes(a, b):
        if tag == "equal":
            add(a[i1:i2], SAME)
            continue
        if first is None:
            first = (tag, i1, i2, j1, j2)
        if tag in ("delete", "replace"):
            add(a[i1:i2], REMOVED)
        if tag in ("insert", "replace"):
            add(b[j1:j2], ADDED)

    display = [(text if kind == SAME else visible(text), kind) for text, kind in segments]
    if first is None:
        return PromptDiff(segments, display, f"{a_name} and {b_name} are identical ({len(a)} characters)", True, None)
    tag, i1, i2, j1, j2 = first
    line, col = _line_col(a, i1)
    if tag == "replace":
        what = f"{a_name} has {_show(a[i1:i2])} where {b_name} has {_show(b[j1:j2])}"
    elif tag == "delete":
        what = f"{a_name} has {_show(a[i1:i2])}, missing from {b_name}"
    else:
        what = f"{b_name} has {_show(b[j1:j2])}, missing from {a_name}"
    changes = sum(1 for _, k in segments if k != SAME)
    added = sum(len(t) for t, k in segments if k == ADDED)
    removed = sum(len(t) for t, k in segments if k == REMOVED)
    summary = (f"first difference at line {line}, column {col}: {what}. "
               f"{changes} changed segment{'s' if changes != 1 else ''}: {removed} character{'s' if removed != 1 else ''} "
               f"only in {a_name}, {added} only in {b_name}.")
    return PromptDiff(segments, display, summary, False, (line, col))


def compare(a, b, conversation, template_a: str | None = None, template_b: str | None = None) -> PromptDiff:
    """Render `conversation` with wrappers `a` and `b` (e.g. the selected wrapper, with the editor's
    `template_a`, and the model's own template from `wrappers.model_template`) and diff the prompts.
    A template that fails to render gives a diff whose summary says so (never raises)."""
    from .render import TemplateError

    prompts = []
    for wrapper, template in ((a, template_a), (b, template_b)):
        try:
            prompts.append(wrapper.render(conversation, template))
        except TemplateError as e:
            return PromptDiff(summary=f"{wrapper.name} does not render: {e}", identical=False)
    return prompt_diff(prompts[0], prompts[1], a.name, b.name)
