"""Template lint: what looks wrong in a wrapper's prompt for the model family it is written for.

    lint(wrapper, conversation) -> ["warning: ...", "note: ..."]      # strings for the page
    lint_findings(wrapper, conversation) -> [Finding(level, code, message)]

Checks, on the rendered prompt (and the template text):

- `unbalanced`: turns opened and never closed (e.g. `<|im_start|>` without `<|im_end|>` before the next
  one), headers never closed (`<|start_header_id|>` without `<|end_header_id|>`), closers without an
  opener, paired tags (`<tool_call>`, `<tool_response>`, …) that do not pair up.
- `unclosed_function_return`: a function/tool result turn (MemGPT's "FUNCTION RETURN:") left open.
- `empty_turn`: a turn header directly followed by another (Zephyr's duplicated `<|user|>`).
- `generation_prompt`: the prompt does not end inside the assistant turn the family expects
  (`<|start_header_id|>assistant<|end_header_id|>\\n\\n`, `<|im_start|>assistant\\n`, …).
- `stop_missing`: the family's end-of-turn token occurs in the prompt but is neither a stop string nor
  the eos token, so the model may run on past its turn.
- `double_bos` (note): the prompt starts with the BOS token's text; servers that add BOS themselves
  (llama.cpp, llama-cpp-python, when the model's add_bos_token is true) then feed two.
- `stop_unused` (note): a special-token stop string that occurs nowhere in the template or prompt
  (usually a stop list copied from another format; harmless).
- `round_trip`: an assistant turn with two parallel calls, rendered by the template and read by the
  wrapper's parser (`wrappers.round_trip`): a note when the calls come back, or when the template
  refuses the turn, writes no calls for it or the format holds only the first call; a warning when
  the parser reads the calls the template writes wrong. Remembered per template text and parser, so
  a keystroke that leaves the template alone costs nothing.

Levels: "warning" (the prompt is likely wrong for the model) and "note" (worth knowing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.conversation import Conversation

from . import round_trip
from .render import TemplateError


@dataclass
class Finding:
    level: str  # "warning" | "note"
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.message}"


@dataclass(frozen=True)
class Family:
    name: str
    detect: tuple[str, ...]  # all must occur in the prompt
    opens: tuple[str, ...]  # turn openers (role markers)
    closes: tuple[str, ...] = ()  # turn closers; () = the next opener ends a turn
    assistant: str = ""  # how the open assistant turn at the end must start
    header: tuple[str, str] | None = None  # header tokens that must pair up exactly
    eot: str = ""  # the end-of-turn token the model writes (should stop generation)
    role_in_token: bool = False  # the opener names the role (<|user|>): an opener right after an opener is an empty turn
    unless: tuple[str, ...] = ()  # not this family when any of these occur


FAMILIES = (
    Family("llama3", ("<|start_header_id|>",), ("<|start_header_id|>",), ("<|eot_id|>", "<|eom_id|>"),
           "<|start_header_id|>assistant<|end_header_id|>\n\n", ("<|start_header_id|>", "<|end_header_id|>"), "<|eot_id|>"),
    Family("llama4", ("<|header_start|>",), ("<|header_start|>",), ("<|eot|>", "<|eom|>"),
           "<|header_start|>assistant<|header_end|>\n\n", ("<|header_start|>", "<|header_end|>"), "<|eot|>"),
    Family("kimi", ("<|im_middle|>",), ("<|im_system|>", "<|im_user|>", "<|im_assistant|>"), ("<|im_end|>",),
           "<|im_assistant|>assistant<|im_middle|>", None, "<|im_end|>"),
    Family("chatml", ("<|im_start|>",), ("<|im_start|>",), ("<|im_end|>",), "<|im_start|>assistant", None, "<|im_end|>"),
    Family("gemma", ("<start_of_turn>",), ("<start_of_turn>",), ("<end_of_turn>",), "<start_of_turn>model\n", None,
           "<end_of_turn>"),
    Family("command-r", ("<|START_OF_TURN_TOKEN|>",), ("<|START_OF_TURN_TOKEN|>",), ("<|END_OF_TURN_TOKEN|>",),
           "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>", None, "<|END_OF_TURN_TOKEN|>"),
    Family("harmony", ("<|start|>", "<|message|>"), ("<|start|>",), ("<|end|>", "<|call|>", "<|return|>"),
           "<|start|>assistant"),
    Family("granite", ("<|start_of_role|>",), ("<|start_of_role|>",), ("<|end_of_text|>",),
           "<|start_of_role|>assistant<|end_of_role|>", ("<|start_of_role|>", "<|end_of_role|>")),
    Family("glm", ("[gMASK]",), ("<|system|>", "<|user|>", "<|assistant|>", "<|observation|>"), (), "<|assistant|>"),
    Family("phi3", ("<|assistant|>", "<|end|>"), ("<|system|>", "<|user|>", "<|assistant|>"), ("<|end|>",),
           "<|assistant|>\n", None, "<|end|>", True),
    Family("zephyr", ("<|assistant|>",), ("<|system|>", "<|user|>", "<|assistant|>"), ("</s>",),
           "<|assistant|>\n", None, "", True),
    Family("deepseek", ("<｜Assistant｜>",), ("<｜User｜>", "<｜Assistant｜>"), (), "<｜Assistant｜>"),
    Family("mistral", ("[INST]",), ("[INST]", "[/INST]"), (), "[/INST]", ("[INST]", "[/INST]")),
)

# tags that must pair up wherever they appear; (open, close, may the prompt end inside it)
PAIRS = (
    ("<tool_call>", "</tool_call>", False), ("<tool_response>", "</tool_response>", False),
    ("<tools>", "</tools>", False), ("<think>", "</think>", True),
    ("<|tool_calls_section_begin|>", "<|tool_calls_section_end|>", False),
    ("<|tool_call_begin|>", "<|tool_call_end|>", False),
    ("<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>", False), ("<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", False),
    ("<｜tool▁outputs▁begin｜>", "<｜tool▁outputs▁end｜>", False), ("<｜tool▁output▁begin｜>", "<｜tool▁output▁end｜>", False),
    ("[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", False), ("[TOOL_RESULTS]", "[/TOOL_RESULTS]", False),
    ("<|START_ACTION|>", "<|END_ACTION|>", False), ("<|python_start|>", "<|python_end|>", False),
    ("<function_calls>", "</function_calls>", False), ("<|START_THINKING|>", "<|END_THINKING|>", True),
)

KNOWN_BOS = ("<|begin_of_text|>", "<s>", "<bos>", "<｜begin▁of▁sentence｜>", "<|startoftext|>", "[gMASK]<sop>")
_SPECIAL = re.compile(r"^\s*(<[|｜][^<>\s]{1,40}[|｜]>|<[/A-Za-z_][\w:./-]{0,30}>|\[/?[A-Z_]{2,30}\])\s*$")
_FUNCTION_RESULT = re.compile(r"FUNCTION RETURN|^\s*(function|tool|ipython)\b", re.I)


def _line(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _occurrences(text: str, tokens: tuple[str, ...]) -> list[tuple[int, str]]:
    if not tokens:
        return []
    pattern = re.compile("|".join(re.escape(t) for t in sorted(tokens, key=len, reverse=True)))
    return [(m.start(), m.group()) for m in pattern.finditer(text)]


def _lines(positions: list[int], text: str, limit: int = 6) -> str:
    shown = ", ".join(str(_line(text, p)) for p in positions[:limit])
    return shown + (f" and {len(positions) - limit} more" if len(positions) > limit else "")


def family_of(prompt: str) -> Family | None:
    for family in FAMILIES:
        if all(t in prompt for t in family.detect) and not any(t in prompt for t in family.unless):
            return family
    return None


def _turns(prompt: str, family: Family) -> list[Finding]:
    """Turn balance, function-result turns, empty turns and the generation prompt."""
    findings: list[Finding] = []
    events = _occurrences(prompt, family.opens + family.closes)
    opens = set(family.opens)
    unclosed: list[int] = []
    unclosed_results: list[int] = []
    stray_closes: list[int] = []
    empty: list[tuple[int, str]] = []
    current: int | None = None
    current_token = ""
    for pos, tok in events:
        if tok in opens:
            if current is not None and family.closes:
                body = prompt[current + len(current_token):pos]
                if family.role_in_token and not body.strip():
                    empty.append((current, current_token))
                else:
                    unclosed.append(current)
                    if _FUNCTION_RESULT.search(body):
                        unclosed_results.append(current)
            current, current_token = pos, tok
        else:
            if current is None:
                stray_closes.append(pos)
            current = None
    closer = " or ".join(family.closes)
    if unclosed:
        findings.append(Finding("warning", "unbalanced",
                                f"{len(unclosed)} {family.name} turn{'s' if len(unclosed) > 1 else ''} never closed with "
                                f"{closer} before the next turn starts (turns opened at line {_lines(unclosed, prompt)})"))
    if unclosed_results:
        findings.append(Finding("warning", "unclosed_function_return",
                                f"{len(unclosed_results)} function-return block{'s' if len(unclosed_results) > 1 else ''} "
                                f"left unclosed (no {closer} after the result; at line {_lines(unclosed_results, prompt)}): "
                                "the model sees the result run into the next turn"))
    if stray_closes:
        findings.append(Finding("warning", "unbalanced",
                                f"{closer} without an open turn at line {_lines(stray_closes, prompt)}"))
    for pos, tok in empty:
        findings.append(Finding("warning", "empty_turn",
                                f"an empty {tok} turn at line {_line(prompt, pos)}: the header is directly followed by "
                                "another header (a duplicated header?)"))
    # generation prompt: the prompt must end inside an open assistant turn
    last_open = max((p for p, t in events if t in opens), default=None)
    last_close = max((p for p, t in events if t not in opens), default=None)
    if family.assistant:
        if last_open is None or (last_close is not None and last_close > last_open):
            findings.append(Finding("warning", "generation_prompt",
                                    f"the prompt ends after a closed turn, without the {family.name} assistant header "
                                    f"{family.assistant!r}: the model has to write a header of its own (set add_generation_prompt?)"))
        elif not prompt.startswith(family.assistant, last_open):
            got = prompt[last_open:last_open + len(family.assistant) + 8]
            bare = family.assistant.rstrip()
            if bare != family.assistant and prompt.startswith(bare, last_open):
                findings.append(Finding("note", "generation_prompt",
                                        f"the prompt's last turn (line {_line(prompt, last_open)}) starts {got!r}: the "
                                        f"{family.name} template puts {family.assistant[len(bare):]!r} after {bare!r}; "
                                        "the model usually writes it itself"))
                return findings
            findings.append(Finding("warning", "generation_prompt",
                                    f"the prompt does not end where a {family.name} model expects: the last turn "
                                    f"(line {_line(prompt, last_open)}) starts {got!r}, not {family.assistant!r}"))
    return findings


def _headers(prompt: str, family: Family) -> list[Finding]:
    if not family.header:
        return []
    open_tok, close_tok = family.header
    unclosed, stray = [], []
    current = None
    for pos, tok in _occurrences(prompt, family.header):
        if tok == open_tok:
            if current is not None:
                unclosed.append(current)
            current = pos
        else:
            if current is None:
                stray.append(pos)
            current = None
    if current is not None:
        unclosed.append(current)
    findings = []
    n_open, n_close = prompt.count(open_tok), prompt.count(close_tok)
    if unclosed:
        findings.append(Finding("warning", "unbalanced",
                                f"{open_tok} appears {n_open} times but {close_tok} {n_close} times: "
                                f"{len(unclosed)} header{'s' if len(unclosed) > 1 else ''} never closed "
                                f"(line {_lines(unclosed, prompt)})"))
    if stray:
        findings.append(Finding("warning", "unbalanced", f"{close_tok} without {open_tok} at line {_lines(stray, prompt)}"))
    return findings


def _pairs(prompt: str) -> list[Finding]:
    findings = []
    for open_tok, close_tok, may_end_open in PAIRS:
        if open_tok not in prompt and close_tok not in prompt:
            continue
        unclosed, stray = [], []
        stack: list[int] = []
        for pos, tok in _occurrences(prompt, (open_tok, close_tok)):
            if tok == open_tok:
                stack.append(pos)
            elif stack:
                stack.pop()
            else:
                stray.append(pos)
        # a reasoning block opened by the generation prompt itself (no turn marker after it) is fine
        rest = prompt[stack[-1] + len(open_tok):] if stack else ""
        ends_open = may_end_open and stack and not any(m in rest for m in ("<|", "<｜", "</s>", "<start_of_turn>"))
        unclosed = stack[:-1] if ends_open else stack
        if unclosed:
            findings.append(Finding("warning", "unbalanced",
                                    f"{open_tok} without a matching {close_tok} (opened at line {_lines(unclosed, prompt)})"))
        if stray:
            findings.append(Finding("warning", "unbalanced",
                                    f"{close_tok} without a matching {open_tok} (at line {_lines(stray, prompt)})"))
    return findings


def lint_prompt(prompt: str, template: str = "", stop: list[str] | tuple = (), bos_token: str = "",
                eos_token: str = "") -> list[Finding]:
    """The checks on a rendered prompt (pure: no wrapper needed)."""
    findings: list[Finding] = []
    family = family_of(prompt)
    if family:
        findings += _headers(prompt, family)
        findings += _turns(prompt, family)
        if family.eot and family.eot in prompt and family.eot not in stop and family.eot != eos_token:
            findings.append(Finding("warning", "stop_missing",
                                    f"{family.name} turns end with {family.eot}, but it is not a stop string (nor the eos "
                                    "token): unless the server treats it as end of generation, the model runs on past its turn "
                                    f"and {family.eot} leaks into the output"))
    findings += _pairs(prompt)
    bos = bos_token or next((b for b in KNOWN_BOS if prompt.startswith(b)), "")
    if bos and prompt.startswith(bos) and not (family and bos in family.opens):
        findings.append(Finding("note", "double_bos",
                                f"the prompt starts with the BOS text {bos!r}; llama.cpp and llama-cpp-python also add a BOS "
                                "token when the model's add_bos_token is true, so the model may see two (drop it from "
                                "the template, or tokenize without special tokens)"))
    unused = [s for s in stop if isinstance(s, str) and _SPECIAL.match(s) and s not in prompt and s not in (template or "")]
    if unused:
        findings.append(Finding("note", "stop_unused",
                                "stop string" + ("s " if len(unused) > 1 else " ") + ", ".join(repr(s) for s in unused)
                                + " never occur" + ("" if len(unused) > 1 else "s") + " in this template or prompt"
                                + (f" (a {family.name} prompt)" if family else "")
                                + ": probably copied from another format; harmless, but they will not end the turn"))
    return findings


def lint_findings(wrapper, conversation: Conversation, template: str | None = None, prompt: str | None = None) -> list[Finding]:
    """All findings for `wrapper` rendering `conversation` (`template`: an edited template instead; `prompt`:
    what they render to, when the caller has rendered it already)."""
    if prompt is None:
        try:
            prompt = wrapper.render(conversation, template)
        except TemplateError as e:
            return [Finding("warning", "render_error", f"the template does not render: {e}")]
    variables = {**(wrapper.variables or {}), **conversation.template_variables}
    source = template if template is not None else wrapper.template
    jinja = getattr(wrapper, "kind", "jinja") == "jinja"
    if not jinja:
        source = ""  # a Python wrapper's source is not a template
    findings = lint_prompt(prompt, source, wrapper.stop or [], str(variables.get("bos_token") or ""),
                           str(variables.get("eos_token") or ""))
    if jinja and wrapper.parser != "plain":  # a plain parser reads no calls: nothing to round-trip
        findings.append(round_trip_finding(round_trip.check_cached(wrapper, template)))
    return findings


def round_trip_finding(result: round_trip.RoundTrip) -> Finding:
    wrong = result.reason == "mismatch" and not result.first_calls_only
    return Finding("warning" if wrong else "note", "round_trip", f"round trip ({result.scenario}): {result.message}")


def lint(wrapper, conversation: Conversation, template: str | None = None, prompt: str | None = None) -> list[str]:
    """Warnings and notes as display strings: "warning: ..." / "note: ..."."""
    return [str(f) for f in lint_findings(wrapper, conversation, template, prompt)]
