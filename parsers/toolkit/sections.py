"""Sections of the output: reasoning blocks set apart (`split_reasoning`, `think_pieces`) and the
common "OPEN body CLOSE" walk over what stays visible (`tagged`)."""

from __future__ import annotations

from .out import Out
from .scan import Piece, blocks, find_any


def split_reasoning(
    out: Out,
    open_tag: str = "<think>",
    close_tag: str = "</think>",
    *,
    pieces: list[Piece] | None = None,
    calls_in_unclosed: tuple[str, ...] = (),
) -> list[Piece]:
    """Move reasoning blocks into `out.thoughts`; return the visible pieces.

    A closing tag with no opening tag before it means the prompt opened the block: everything
    before it is reasoning. An unclosed block runs to the end, unless one of `calls_in_unclosed`
    occurs in it (Kimi-K2-Thinking, DeepSeek-V3.1): then the calls from that marker on are real.
    """
    if pieces is None:
        pieces = [Piece(0, out.text)]
    visible: list[Piece] = []
    for piece in pieces:
        text, base, i = piece.text, piece.start, 0
        first_close, first_open = text.find(close_tag), text.find(open_tag)
        if first_close != -1 and (first_open == -1 or first_close < first_open):
            out.add_thought(text[:first_close])
            i = first_close + len(close_tag)
        while True:
            o = text.find(open_tag, i)
            if o == -1:
                visible.append(Piece(base + i, text[i:]))
                break
            visible.append(Piece(base + i, text[i:o]))
            s = o + len(open_tag)
            c = text.find(close_tag, s)
            if c == -1:
                m, _ = find_any(text, calls_in_unclosed, s) if calls_in_unclosed else (-1, "")
                if m == -1:
                    out.add_thought(text[s:])
                else:
                    out.add_thought(text[s:m])
                    visible.append(Piece(base + m, text[m:]))
                break
            out.add_thought(text[s:c])
            i = c + len(close_tag)
    return [p for p in visible if p.text]


def tagged(
    out: Out,
    pieces: list[Piece],
    open_tag: str,
    close_tag: str,
    on_body,
    *,
    close_required: bool = True,
    nocase: bool = False,
    on_text=None,
) -> None:
    """Walk the visible pieces: prose goes to content (or `on_text(out, Piece)`), each block's body
    to `on_body(out, body, body_index, block_index, closed) -> bool`. A body for which `on_body`
    returns False is not a call and stays in the content verbatim. A block without its closing
    marker is a truncated call when `close_required`."""
    for piece in pieces:
        for b in blocks(piece.text, open_tag, close_tag, nocase=nocase):
            start = piece.start + b.start
            if b.kind == "text":
                (on_text or _add_text)(out, Piece(start, b.inner))
            elif b.kind == "open" and close_required:
                out.fail(f"truncated call: {open_tag} without {close_tag}", start)
            else:
                closed = b.kind == "block"
                if not on_body(out, b.inner, piece.start + b.inner_start, start, closed):
                    raw_block = piece.text[b.start : b.inner_start] + b.inner + (close_tag if closed else "")
                    out.add_text(raw_block)


def _add_text(out: Out, piece: Piece) -> None:
    out.add_text(piece.text)

def think_pieces(out: Out) -> list[Piece]:
    """Visible pieces once `<think>…</think>` reasoning is set apart (the usual case)."""
    return split_reasoning(out, "<think>", "</think>")
