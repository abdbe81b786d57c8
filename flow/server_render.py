"""The server's own render of a conversation beside the wrapper's, and what the server's tokenizer makes of both.

Engines render the same chat template differently (Jinja2, llama.cpp's C++ engine, minijinja), a server may
load a wrong default template, and a prompt's special tokens only work when the server's tokenizer knows
them: these checks show where the wrapper's prompt and the server's view of it part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from backends import Backend, BackendError
from wrappers import diff

# text that is a special token in the common chat formats: <|im_start|>, <｜User｜>, [INST], <s>, <start_of_turn>...
SPECIAL_TEXT = re.compile(r"<\|[^|<>\s]{1,40}\|>|<｜[^｜<>]{1,40}｜>|\[/?[A-Z][A-Z_]{2,20}\]|</?s>|<(?:start|end)_of_turn>")


@dataclass
class ServerRender:
    """The server's prompt for the conversation and how it differs from the wrapper's (`diff` is None when it cannot
    render); `findings` are the token-level problems, one sentence each."""

    prompt: str = ""
    status: str = ""
    diff: diff.PromptDiff | None = None
    findings: list[str] = field(default_factory=list)


def compare(backend: Backend, wrapper_prompt: str, messages: list[dict], tools: list[dict] | None) -> ServerRender:
    """Render `messages` and `tools` on the server and diff its prompt against the wrapper's; then the token check."""
    try:
        server_prompt = backend.render_chat(messages, tools)
    except BackendError as e:
        return ServerRender(status=f"The {backend.type} backend cannot render this conversation itself: {e}")
    result = diff.prompt_diff(wrapper_prompt, server_prompt, "wrapper", "server")
    same = wrapper_prompt == server_prompt
    status = ("✅ The server renders this conversation exactly as the wrapper does." if same
              else f"⚠ The server renders it differently: {result.summary}")
    findings = []
    if backend.capabilities()["tokenize"]:
        try:
            findings = token_findings(backend, wrapper_prompt, server_prompt)
        except BackendError as e:
            findings = [f"the token check could not run: {e}"]
    return ServerRender(prompt=server_prompt, status=status, diff=result, findings=findings)


def token_findings(backend: Backend, prompt: str, server_prompt: str | None = None,
                   plain: list[dict] | None = None) -> list[str]:
    """Special-token text that the server tokenizes as plain text, a doubled BOS, and a token count that differs
    from the server's render of the same conversation; `plain` is the prompt's tokens without added special
    tokens, when already asked for."""
    plain = backend.tokenize(prompt, add_special=False) if plain is None else plain
    findings = [*_split_specials(prompt, plain), *_doubled_bos(backend, prompt, plain)]
    if server_prompt is not None and server_prompt != prompt:
        theirs = backend.tokenize(server_prompt, add_special=False)
        if len(theirs) != len(plain):
            findings.append(f"the wrapper's prompt is {len(plain):,} tokens, the server's render of the same "
                            f"conversation {len(theirs):,} ({len(plain) - len(theirs):+,})")
    return findings


def _split_specials(prompt: str, tokens: list[dict]) -> list[str]:
    """Special-token text the server did not read as one token: the model sees it as ordinary characters."""
    whole = {t.get("piece") for t in tokens if isinstance(t.get("piece"), str)}
    seen, out = set(), []
    for match in SPECIAL_TEXT.finditer(prompt):
        text = match.group()
        if text in whole or text in seen:
            continue
        seen.add(text)
        count = prompt.count(text)
        out.append(f"{text!r} (first at character {match.start():,}, {count} time{'s' if count > 1 else ''}) is not one "
                   "token for this server: its tokenizer reads it as plain text, so the model does not see the special "
                   "token (a template for another model, or a typo?)")
    return out


def _doubled_bos(backend: Backend, prompt: str, plain: list[dict]) -> list[str]:
    """The server adds a BOS token to a completion prompt and the prompt's text starts with one too."""
    added = backend.tokenize(prompt, add_special=True)
    if len(added) <= len(plain) or not plain:
        return []
    bos = added[0]
    if bos.get("id") == plain[0].get("id"):
        return [f"doubled BOS: the server adds {bos.get('piece')!r} to every completion prompt and the prompt already "
                "starts with it, so the model sees two (drop bos_token from the template, or its variable)"]
    return []
