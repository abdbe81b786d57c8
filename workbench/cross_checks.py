"""The page's cross-checks of one panel, as plain functions: the server's own render beside the wrapper's, why
the run did or did not call, the run's output streamed again at several chunk sizes, and the run exported as
a failing case. `ui/` wires them to components."""

from __future__ import annotations

import json

import backends
import wrappers
from backends import BackendError
from core.conversation import ConversationError
from flow import call_start, failing_case, server_render, streaming
from presets import PresetError
from workbench.panels import PanelConfig, conversation_from_inputs
from wrappers import WrapperError
from wrappers.render import TemplateError


def server_render_view(config: PanelConfig, conversation_json: str, variables_json: str = "",
                       now: str = "") -> tuple[str, list[tuple[str, str | None]], str]:
    """(the server's prompt, the wrapper → server diff as highlighted segments, status with the token findings)."""
    try:
        request = config.request(conversation_json, variables_json, now)
        wrapper = wrappers.get(config.wrapper)
        prompt = wrapper.render(request.conversation, request.template)
        backend = backends.create(config.backend_type, request.settings)
    except TemplateError as e:
        return "", [], f"❌ Template error: {e}"
    except (BackendError, ConversationError, WrapperError, PresetError) as e:
        return "", [], f"❌ {e}"
    conversation = request.conversation
    found = server_render.compare(backend, prompt, conversation.messages, conversation.tools)
    findings = "".join(f"\n- ⚠ {f}" for f in found.findings)
    return found.prompt, found.diff.display_pairs() if found.diff else [], found.status + findings


def call_start_view(record: dict | None) -> tuple[str, list[list]]:
    """(why the panel's last run did or did not call, the positions where a call could have started)."""
    if not record:
        return "Run this panel first.", []
    try:
        wrapper = wrappers.get(record.get("wrapper") or "")
    except WrapperError as e:
        return f"❌ {e}", []
    prompt = record.get("prompt") or ""  # the forced prefix the prompt ended with, if any (MemGPT's first message has its own)
    prefix = next((p for p in (wrapper.assistant_prefix, wrapper.assistant_prefix_first_message) if p and prompt.endswith(p)), "")
    found = call_start.explain(record.get("raw", ""), record.get("parsed"), wrapper.parser, record.get("tokens"), prefix)
    return found.sentence, [c.row() for c in sorted(found.chances, key=lambda c: -c.marker_p)[:10]]


SMALL_CHUNKS_UP_TO = 200_000  # characters: past this, streaming again 1 or 2 characters at a time takes too long


def replay_view(record: dict | None, conversation_json: str, variables_json: str = "", now: str = "") -> str:
    """The panel's last output streamed again through the incremental parse at chunk sizes 1, 2, 7 and whole:
    the calls a streaming client would assemble at each, and the first difference from the whole output's parse."""
    if not record:
        return "Run this panel first."
    raw = record.get("raw") or ""
    sizes = streaming.CHUNK_SIZES if len(raw) <= SMALL_CHUNKS_UP_TO else (7, None)
    try:
        conversation = conversation_from_inputs(conversation_json, variables_json, now)
        found = streaming.replay(raw, wrapper=record.get("wrapper"), conversation=conversation, chunk_sizes=sizes)
    except (ConversationError, WrapperError) as e:
        return f"❌ {e}"
    calls = ", ".join(c.name for c in found.final.calls) or "no call"
    head = (f"✅ The same answer ({calls}) at every chunk size." if found.ok
            else f"⚠ Streamed, the output does not always give the whole output's answer ({calls}): {found.summary()}.")
    if sizes != streaming.CHUNK_SIZES:
        head += f" Chunk sizes 1 and 2 skipped: the output is over {SMALL_CHUNKS_UP_TO:,} characters."
    rows = ["", "| chunk size | calls a client assembles | handed out before the end | parser runs | difference |",
            "|---|---|---|---|---|"]
    for run in found.runs:
        size = "whole" if run.chunk_size is None else run.chunk_size
        names = ", ".join(c.name for c in run.answer.calls) or "—"
        rows.append(f"| {size} | {names} | {run.early} | {run.parses} | {run.difference or run.diverged or '—'} |")
    return "\n".join([head, *rows])


def failing_case_view(record: dict | None, wrapper_name: str, template: str, conversation_json: str,
                      variables_json: str = "", now: str = "", expected_json: str = "") -> tuple[str, str, str]:
    """(the case as JSON, the Markdown report, status) for the panel's last run; `expected_json` is the list of calls
    ([{"name", "arguments"}]) the output should have parsed to, or empty."""
    if not record:
        return "", "", "Run this panel first to export its run as a failing case."
    try:
        conversation = conversation_from_inputs(conversation_json, variables_json, now)
        expected = json.loads(expected_json) if expected_json and expected_json.strip() else None
        if expected is not None and not (isinstance(expected, list) and all(isinstance(c, dict) and "name" in c for c in expected)):
            raise ValueError('the expected calls must be a JSON list like [{"name": "f", "arguments": {}}]')
        case = failing_case.build(record, wrapper_name, template, conversation, expected)
    except json.JSONDecodeError as e:
        return "", "", f"❌ The expected calls are not valid JSON: {e.msg}"
    except (ValueError, ConversationError, WrapperError) as e:
        return "", "", f"❌ {e}"
    note = "" if expected is not None else " Fill in the expected calls to make it a test case."
    return failing_case.to_json(case), failing_case.to_markdown(case), f"✅ Exported the last run of this panel.{note}"
