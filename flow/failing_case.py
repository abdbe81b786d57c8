"""A failing run as a ready test fixture (JSON) and as a report fit to paste into an upstream issue (Markdown).

The JSON is a line of the parser corpus (`format`, `raw`, `expected`, `content`, `source`, `note`: what
tests/test_parsers.py reads) plus what produced the output: the wrapper, its template, the conversation and
the exact prompt, so the case can be rendered, parsed and checked again anywhere (it is also a conversation
file: `python app.py render --wrapper W --conversation case.json` renders it again).
"""

from __future__ import annotations

import json

import wrappers
from core.conversation import Conversation


def build(record: dict, wrapper_name: str, template: str | None, conversation: Conversation,
          expected: list[dict] | None = None, expected_content: str | None = None, note: str = "") -> dict:
    """The case for a finished run `record` (flow.Run.to_dict() plus "wrapper"/"backend_type"); `expected` is the
    list of calls ({"name", "arguments"}) the output should have parsed to, None when not known yet, and
    `expected_content` the text beside them."""
    wrapper = wrappers.get(wrapper_name)
    parsed = record.get("parsed") or {}
    edited = template is not None and template != wrapper.template
    return {
        "format": wrapper.parser,
        "raw": record.get("raw", ""),
        "expected": expected,
        "content": expected_content,
        "source": f"prompt-format-playground: wrapper {wrapper.name}" + (" (template edited)" if edited else ""),
        "note": note or "exported from a run; fill in `expected` with the calls the output should parse to",
        "wrapper": wrapper.name,
        "parser_options": wrapper.parser_options,
        "assistant_prefix": wrapper.prefix_for({**wrapper.variables, **conversation.template_variables}),
        "template": template if template is not None else wrapper.template,
        "messages": conversation.messages,
        "tools": conversation.tools,
        "template_variables": conversation.template_variables,
        "now": conversation.now,
        "prompt": record.get("prompt", ""),
        "parsed": {"tool_calls": parsed.get("tool_calls") or [], "content": parsed.get("content"),
                   "error": parsed.get("error")},
        "backend": {"type": record.get("backend_type"), "finish_reason": record.get("finish_reason"),
                    "params": record.get("params") or {}},
    }


def to_json(case: dict) -> str:
    return json.dumps(case, indent=2, ensure_ascii=False)


def to_markdown(case: dict) -> str:
    """A self-contained report: what was expected, what came back, and the prompt and output, byte-exact."""
    parsed = case["parsed"]
    error = (parsed.get("error") or {}).get("message")
    calls = parsed.get("tool_calls") or []
    got = json.dumps(calls, ensure_ascii=False) if calls else "no call"
    expected = json.dumps(case["expected"], ensure_ascii=False) if case["expected"] is not None else "(not given)"
    backend = case.get("backend") or {}
    lines = [
        f"### `{case['format']}` output not parsed as expected ({case['wrapper']})",
        "",
        f"- **Expected calls:** `{expected}`",
        f"- **Parsed:** `{got}`" + (f" (error: {error})" if error else ""),
        f"- **Backend:** {backend.get('type') or 'unknown'}, finish reason {backend.get('finish_reason') or 'unknown'}",
        f"- **Source:** {case['source']}",
        "",
        "Raw model output (byte-exact):",
        "",
        fenced(case["raw"]),
        "",
        "<details><summary>Prompt sent (byte-exact)</summary>",
        "",
        fenced(case["prompt"]),
        "",
        "</details>",
        "",
        "<details><summary>Messages and tools</summary>",
        "",
        fenced(json.dumps({"messages": case["messages"], "tools": case["tools"]}, indent=2, ensure_ascii=False), "json"),
        "",
        "</details>",
        "",
        f"Reproduce: save the raw output to `raw.txt`, then `python app.py parse --format {case['format']} < raw.txt`.",
    ]
    return "\n".join(lines) + "\n"


def fenced(text: str, language: str = "text") -> str:
    """`text` in a code fence longer than any run of backticks inside it, so nothing in it ends the block."""
    longest, run = 0, 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"
