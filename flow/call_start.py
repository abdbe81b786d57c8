"""Why a run did or did not call a function: "the model chose text with p=0.71" vs "the parser missed a call".

A format's calls start with known markers (`<tool_call>`, `[TOOL_CALLS]`, `<|python_tag|>`, `{"name"`...,
`parsers.call_markers`). With the output's token probabilities, the chance the model gave a token that
starts a marker can be read at the position where the call would have started (the first token of the
answer, or the first after a reasoning block) and wherever else it was highest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import parsers

REASONING_ENDS = ("</think>", "</thinking>", "<|end_thinking|>", "<|channel|>final<|message|>")


@dataclass
class MarkerChance:
    """At output token `position`: the token the model chose and the best token that would have started a call."""

    position: int
    chosen: str
    chosen_p: float | None
    marker: str  # the call-start marker that token begins
    marker_token: str  # the alternative token that begins it ("" when the chosen token itself begins it)
    marker_p: float

    def row(self) -> list:
        return [self.position + 1, repr(self.chosen), _percent(self.chosen_p), repr(self.marker_token or self.chosen),
                self.marker, _percent(self.marker_p)]


@dataclass
class CallStart:
    """The verdict: "called", "forced" (the prompt already opened the call), "parser_missed" (a marker is in the
    output but no call was parsed), "chose_text" (no marker: the model answered with text), "no_calls" (the format
    has none) or "unknown" (no token probabilities to tell); a sentence; the positions worth looking at."""

    verdict: str
    sentence: str
    chances: list[MarkerChance]
    marker_tokens: list[int]  # output token positions that spell a call marker, to highlight


ROW_HEADERS = ["token", "chosen", "p", "call-start token", "marker", "p(marker)"]


def explain(raw: str, parsed: dict | None, format_id: str, tokens: list[dict] | None = None,
            prefix: str = "") -> CallStart:
    """Why the run with output `raw`, parse `parsed` (ParseResult.to_dict()) and per-token probabilities `tokens`
    ([{"token", "logprob", "top": [{"token", "logprob"}]}]) did or did not call; `prefix` is the forced assistant
    prefix the prompt ended with."""
    markers = parsers.call_markers(format_id)
    if not markers:
        return CallStart("no_calls", f"The {format_id} format has no function calls.", [], [])
    calls = (parsed or {}).get("tool_calls") or []
    spelled = _marker_tokens(tokens or [], markers)
    chances = _chances(tokens or [], markers)
    if prefix and any(m.strip() and m.strip() in prefix for m in markers):
        return CallStart("forced", f"The prompt ends inside the call ({prefix.strip()!r}): the model could not "
                                   "choose text, only which function and arguments.", chances, spelled)
    found = _first_marker(raw, markers)
    if calls:
        where = f" (it wrote {found[1]!r} at character {found[0]:,})" if found else ""
        return CallStart("called", f"The model called {len(calls)} function(s){where}.", chances, spelled)
    if found:
        error = ((parsed or {}).get("error") or {}).get("message")
        because = f": {error}" if error else ""
        return CallStart("parser_missed", f"The output holds the call marker {found[1]!r} at character {found[0]:,}, "
                                          f"but the parser found no call{because}. Look at the parser, not the model.",
                         chances, spelled)
    if not tokens:
        return CallStart("unknown", "The model wrote no call marker. Turn on Token probabilities under Backend and run "
                                    "again to see how likely a call was where it would have started.", [], [])
    return CallStart("chose_text", _chose_text_sentence(tokens, chances), chances, spelled)


def _chose_text_sentence(tokens: list[dict], chances: list[MarkerChance]) -> str:
    start = answer_start(tokens)
    at_start = next((c for c in chances if c.position == start), None)
    first = tokens[start] if start < len(tokens) else {}
    chosen = f"{first.get('token', '')!r}" + (f" with p={_p(first.get('logprob')):.2f}" if _p(first.get("logprob")) is not None else "")
    if at_start:
        sentence = (f"The model chose text: where the call would have started (token {start + 1}) it chose {chosen}; "
                    f"a token starting {at_start.marker!r} ({at_start.marker_token!r}) had p={at_start.marker_p:.2f}.")
    else:
        sentence = (f"The model chose text: where the call would have started (token {start + 1}) it chose {chosen}, "
                    f"and no token starting a call marker was among the {len(first.get('top') or [])} alternatives shown.")
    best = max(chances, key=lambda c: c.marker_p, default=None)
    if best and best is not at_start:
        sentence += (f" The likeliest call start was at token {best.position + 1}: {best.marker_token!r} for "
                     f"{best.marker!r} with p={best.marker_p:.2f}.")
    return sentence


def answer_start(tokens: list[dict]) -> int:
    """The output token position where a call would start: the first after a closed reasoning block, else 0."""
    tail = ""  # the output's end so far: enough to hold a reasoning end and the spaces after it
    for i, t in enumerate(tokens):
        tail = (tail + t.get("token", ""))[-256:]
        if any(tail.rstrip().endswith(end) for end in REASONING_ENDS):
            j = i + 1
            while j < len(tokens) and not tokens[j].get("token", "").strip():
                j += 1  # the line break after the block
            return min(j, len(tokens) - 1) if tokens else 0
    return 0


def _chances(tokens: list[dict], markers: list[str]) -> list[MarkerChance]:
    """Per position, the likeliest token (chosen or alternative) that begins a call marker, when there is one."""
    out = []
    for i, t in enumerate(tokens):
        best: tuple[float, str, str] | None = None
        chosen = t.get("token", "")
        options = [(a.get("token", ""), _p(a.get("logprob"))) for a in t.get("top") or [] if isinstance(a, dict)]
        if not any(tok == chosen for tok, _ in options):
            options.append((chosen, _p(t.get("logprob"))))
        for token, p in options:
            marker = _begins(token, markers)
            if marker and p is not None and (best is None or p > best[0]):
                best = (p, token, marker)
        if best:
            out.append(MarkerChance(i, chosen, _p(t.get("logprob")), best[2], "" if best[1] == chosen else best[1], best[0]))
    return out


def _begins(token: str, markers: list[str]) -> str | None:
    """The marker `token` can start (its text, spaces aside, is the marker's beginning or contains the whole marker)."""
    text = token.strip()
    if not text:
        return None
    for marker in markers:
        if marker.startswith(text) or text.startswith(marker):
            return marker
    return None


def _marker_tokens(tokens: list[dict], markers: list[str]) -> list[int]:
    """The positions of the tokens that spell a call marker in the output."""
    text, starts = "", []
    for t in tokens:
        starts.append(len(text))
        text += t.get("token", "")
    marked: set[int] = set()
    for marker in markers:
        at = text.find(marker)
        while at >= 0:
            end = at + len(marker)
            marked.update(i for i, s in enumerate(starts) if s < end and s + len(tokens[i].get("token", "")) > at)
            at = text.find(marker, end)
    return sorted(marked)


def _first_marker(raw: str, markers: list[str]) -> tuple[int, str] | None:
    hits = [(at, m) for m in markers if m and (at := raw.find(m)) >= 0]
    return min(hits) if hits else None


def _p(logprob) -> float | None:
    return math.exp(logprob) if isinstance(logprob, (int, float)) else None


def _percent(p: float | None) -> str:
    return "" if p is None else f"{p:.1%}"
