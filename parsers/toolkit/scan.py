"""Marker scanning: finding markers (one or many, linear over a walk), slicing a text into
`Piece`s (offsets kept) at a marker, into prose and OPEN…CLOSE blocks, and markdown fences."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator


@dataclass
class Piece:
    """A slice of `Out.text`: `start` is its offset there."""

    start: int
    text: str


def split_at(text: str, marker: str, base: int = 0) -> list[Piece]:
    """`text.split(marker)`, each part with its offset (`base` + its index in `text`); the marker
    before a part (all but the first) starts at `part.start - len(marker)`."""
    pieces, at = [], base
    for part in text.split(marker):
        pieces.append(Piece(at, part))
        at += len(part) + len(marker)
    return pieces


_nocase_cache: dict[str, re.Pattern] = {}


def find(text: str, needle: str, start: int = 0, *, nocase: bool = False) -> int:
    if not nocase:
        return text.find(needle, start)
    pattern = _nocase_cache.get(needle)
    if pattern is None:
        pattern = _nocase_cache[needle] = re.compile(re.escape(needle), re.IGNORECASE)
    m = pattern.search(text, start)
    return m.start() if m else -1


def find_any(text: str, needles: tuple[str, ...], start: int = 0) -> tuple[int, str]:
    """Earliest occurrence of any needle: (index, needle) or (-1, "").

    For repeated searches over one text use `Markers`, which stays linear."""
    best, which = -1, ""
    for needle in needles:
        i = text.find(needle, start, best + len(needle) if best != -1 else len(text))
        if i != -1 and (best == -1 or i < best):
            best, which = i, needle
    return best, which


class Markers:
    """Repeated "next marker from here" searches over one text, amortized linear: each needle's
    next occurrence is remembered and only searched again once the walk has passed it."""

    def __init__(self, text: str, needles: tuple[str, ...]):
        self.text, self.needles = text, needles
        self.next = {n: -2 for n in needles}  # -2: not searched yet; -1: none left

    def find(self, start: int) -> tuple[int, str]:
        best, which = -1, ""
        for n in self.needles:
            p = self.next[n]
            if p == -2 or (p != -1 and p < start):
                p = self.next[n] = self.text.find(n, start)
            if p != -1 and (best == -1 or p < best):
                best, which = p, n
        return best, which


@dataclass
class Block:
    kind: str  # "text" | "block" (closed) | "open" (no closing marker before the end)
    start: int  # offset of the block (of its opening marker) in the searched text
    inner_start: int
    inner: str


def blocks(text: str, open_tag: str | re.Pattern, close_tag: str, *, nocase: bool = False) -> Iterator[Block]:
    """Split `text` into prose and OPEN…CLOSE blocks, in order (offsets relative to `text`).
    `open_tag` may be a pattern (a fence opener: "```" with an optional language)."""
    i = 0
    while i <= len(text):
        if isinstance(open_tag, str):
            o = find(text, open_tag, i, nocase=nocase)
            s = o + len(open_tag)
        else:
            m = open_tag.search(text, i)
            o, s = (m.start(), m.end()) if m else (-1, -1)
        if o == -1:
            if i < len(text):
                yield Block("text", i, i, text[i:])
            return
        if o > i:
            yield Block("text", i, i, text[i:o])
        c = find(text, close_tag, s, nocase=nocase)
        if c == -1:
            yield Block("open", o, s, text[s:])
            return
        yield Block("block", o, s, text[s:c])
        i = c + len(close_tag)


FENCE = "```"


def fence_opener(langs: tuple[str, ...] | None, tail: str) -> str:
    """Regex source for a markdown fence opener: ``` with one of `langs` (optional; None: any
    text up to a newline or a `{`), then `tail` (what must follow: a newline, a lookahead…)."""
    lang = r"[^\n{]*" if langs is None else rf"[ \t]*(?:{'|'.join(langs)})?[ \t]*"
    return rf"{FENCE}{lang}{tail}"


def strip_fence(text: str, opener: re.Pattern) -> tuple[str, int]:
    """`text` possibly wrapped whole in a fence: (the inside, its offset in `text`); the inside
    runs to the last ``` (or to the end). Not fenced: (`text`, 0)."""
    lead = len(text) - len(text.lstrip())
    m = opener.match(text, lead)
    if m is None:
        return text, 0
    inner = text[m.end() :]
    close = inner.rfind(FENCE)
    return (inner[:close] if close != -1 else inner), m.end()
