"""The workbench around the one flow: multi-turn (accept a call, add its result, continue), the chat
view, stability runs, run history and whole-session files. Plain functions; the page wires them."""

from __future__ import annotations

import datetime as _dt
import json
import uuid
from typing import Iterator

import wrappers
import flow
from core.conversation import Conversation, ConversationError
from core.text import replace_surrogates

MEMGPT_PARSER = "memgpt_inner_monologue"
SESSION_VERSION = 1


def _is_memgpt(wrapper_name: str) -> bool:
    try:
        return wrappers.get(wrapper_name).parser == MEMGPT_PARSER
    except wrappers.WrapperError:
        return False


def _now_text() -> str:
    return _dt.datetime.now().strftime("%Y-%m-%d %I:%M:%S %p")


def _load(conversation_json: str) -> dict:
    Conversation.from_json(conversation_json)  # the same checks and sentences as everywhere else
    return json.loads(conversation_json)


def _dump(data: dict) -> str:
    """The conversation as the page shows it; lone surrogates (unsendable) as U+FFFD, as in the prompt's view."""
    return json.dumps(replace_surrogates(data)[0], indent=2, ensure_ascii=False)


def accept_call(conversation_json: str, parsed: dict | None, wrapper_name: str, raw: str = "") -> str:
    """Append the parsed answer as an assistant turn, in the shape the wrapper's family replays.

    MemGPT wrappers replay `function_call` with the monologue as content; the others replay
    OpenAI `tool_calls` (all parallel calls) with the visible content. An answer with nothing
    parsed is taken as the plain text the model wrote, so a conversation can go on regardless."""
    parsed = parsed or {}
    calls = [c for c in parsed.get("tool_calls") or [] if isinstance(c.get("name"), str)]
    thoughts = parsed.get("inner_thoughts") if isinstance(parsed.get("inner_thoughts"), str) else None
    content = parsed.get("content")
    if not calls and not content and not thoughts:
        content = raw.strip() or None
    if not calls and not content and not thoughts:
        raise ConversationError("there is no answer to accept: generate one first")
    data = _load(conversation_json)
    if _is_memgpt(wrapper_name):
        turn: dict = {"role": "assistant", "content": thoughts if calls or thoughts else content}
        if calls:
            args = calls[0]["arguments"]
            turn["function_call"] = {"name": calls[0]["name"], "arguments": args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)}
    else:
        turn = {"role": "assistant", "content": content}
        if calls:
            turn["tool_calls"] = [{"id": f"call_{uuid.uuid4().hex[:9]}", "type": "function",
                                   "function": {"name": c["name"], "arguments": c["arguments"] if isinstance(c["arguments"], str)
                                                else json.dumps(c["arguments"], ensure_ascii=False)}}
                                  for c in calls]
    data["messages"].append(turn)
    return _dump(data)


def pending_calls(conversation_json: str) -> list[str]:
    """Names of the last assistant turn's calls that have no result yet (for the result picker)."""
    try:
        messages = _load(conversation_json)["messages"]
    except (ConversationError, ValueError):
        return []
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if m.get("role") == "assistant":
            if m.get("function_call"):
                names = [m["function_call"]["name"]]
            else:
                names = [c["function"]["name"] for c in m.get("tool_calls") or []]
            answered = len(messages) - 1 - i
            return names[answered:]
    return []


def canned_result(function_name: str) -> str:
    """What MemGPT's functions return, so a demo can continue without writing results by hand."""
    message = None
    if function_name in ("conversation_search", "archival_memory_search"):
        message = "No results found."
    return json.dumps({"status": "OK", "message": message if message else "None", "time": _now_text()})


def add_function_result(conversation_json: str, result: str, wrapper_name: str) -> str:
    """Append the result of the next unanswered call: a `function` turn for MemGPT wrappers, else a `tool` turn."""
    data = _load(conversation_json)
    pending = pending_calls(conversation_json)
    if not pending:
        raise ConversationError("no call is waiting for a result: accept a call first")
    name = pending[0]
    if _is_memgpt(wrapper_name):
        data["messages"].append({"role": "function", "name": name, "content": result})
    else:
        last = next(m for m in reversed(data["messages"]) if m.get("role") == "assistant")
        calls = last.get("tool_calls") or []
        call_id = next((c.get("id") for c in calls if c["function"]["name"] == name), None)
        data["messages"].append({"role": "tool", "tool_call_id": call_id, "name": name, "content": result})
    return _dump(data)


def add_user_message(conversation_json: str, text: str, wrapper_name: str) -> str:
    """Append what the user says; MemGPT wrappers get MemGPT's user_message envelope."""
    if not text.strip():
        raise ConversationError("type a message first")
    data = _load(conversation_json)
    content = text
    if _is_memgpt(wrapper_name):
        content = json.dumps({"type": "user_message", "message": text, "time": _now_text()}, indent=2, ensure_ascii=False)
    data["messages"].append({"role": "user", "content": content})
    return _dump(data)


def _arguments(raw) -> dict:
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw or "{}")
    except (TypeError, ValueError):
        return {"arguments": raw}
    return value if isinstance(value, dict) else {"arguments": value}


def _change_line(name: str, args: dict) -> str:
    """What a MemGPT memory call changes, in a line a demo audience reads at a glance."""
    if name == "core_memory_replace":
        return f"{args.get('name', '?')}: {args.get('old_content', '')} → {args.get('new_content', '')}"
    if name == "core_memory_append":
        return f"{args.get('name', '?')}: + {args.get('content', '')}"
    if name == "archival_memory_insert":
        return f"archival: + {args.get('content', '')}"
    if name in ("archival_memory_search", "conversation_search"):
        return f"search: {args.get('query', '')}"
    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in args.items() if k != "request_heartbeat")


def _user_text(content: str) -> tuple[str, str | None]:
    """(text, event type) of a user turn; MemGPT wraps user events in a JSON envelope."""
    try:
        envelope = json.loads(content)
    except (TypeError, ValueError):
        return content, None
    if isinstance(envelope, dict) and "type" in envelope:
        return str(envelope.get("message") or envelope.get("reason") or content), envelope.get("type")
    return content, None


def chat_view(conversation_json: str, wrapper_name: str) -> list[dict]:
    """The conversation as chat messages (Gradio's messages format), calls as collapsible blocks; lone
    surrogates as U+FFFD.

    MemGPT wrappers read like MemGPT's console: 💭 inner thoughts, 🤖 what send_message says,
    ⚡🧠 other calls with what they change."""
    try:
        messages = _load(conversation_json)["messages"]
    except (ConversationError, ValueError):
        return []
    memgpt = _is_memgpt(wrapper_name)
    view: list[dict] = []
    for m in messages:
        role, content = m.get("role"), m.get("content")
        if role == "system":
            view.append({"role": "assistant", "content": content or "", "metadata": {"title": "⚙️ System prompt", "status": "done"}})
        elif role == "user":
            text, kind = _user_text(content or "")
            if kind and kind != "user_message":
                view.append({"role": "user", "content": text, "metadata": {"title": f"🔔 {kind}", "status": "done"}})
            else:
                view.append({"role": "user", "content": text})
        elif role == "assistant":
            calls = []
            if m.get("function_call"):
                calls = [(m["function_call"]["name"], _arguments(m["function_call"].get("arguments")))]
            calls += [(c["function"]["name"], _arguments(c["function"].get("arguments"))) for c in m.get("tool_calls") or []]
            if content and (memgpt or calls):
                view.append({"role": "assistant", "content": f"💭 {content}" if memgpt else content,
                             **({"metadata": {"title": "💭 Inner thoughts", "status": "done"}} if memgpt else {})})
            elif content:
                view.append({"role": "assistant", "content": content})
            for name, args in calls:
                if memgpt and name == "send_message":
                    view.append({"role": "assistant", "content": f"🤖 {args.get('message', '')}"})
                else:
                    body = f"{_change_line(name, args)}\n\n```json\n{json.dumps(args, indent=2, ensure_ascii=False)}\n```"
                    view.append({"role": "assistant", "content": body,
                                 "metadata": {"title": f"⚡🧠 {name}" if memgpt else f"🛠 {name}", "status": "done"}})
        elif role in ("function", "tool"):
            view.append({"role": "assistant", "content": str(content),
                         "metadata": {"title": f"↩ result of {m.get('name') or m.get('tool_call_id') or 'call'}", "status": "done"}})
    return replace_surrogates(view)[0]  # unsendable as they are; the prompt's status has the note


def stability(request: flow.GenerateRequest, runs: int, expected_function: str = "") -> Iterator[dict]:
    """Generate `runs` times with the same settings (same seed unless it is random); after each run
    yield the tally: runs, parsed, expected (called `expected_function`), distinct outputs."""
    tally = {"runs": 0, "parsed": 0, "expected": 0, "distinct_outputs": 0, "calls": {}}
    outputs: set[str] = set()
    for _ in range(max(1, int(runs))):
        run = flow.generate(request)
        tally["runs"] += 1
        parsed = run.parsed
        if parsed and not parsed.error and parsed.tool_calls:
            tally["parsed"] += 1
            name = parsed.tool_calls[0].name
            tally["calls"][name] = tally["calls"].get(name, 0) + 1
            if expected_function and name == expected_function:
                tally["expected"] += 1
        outputs.add(run.raw)
        tally["distinct_outputs"] = len(outputs)
        yield dict(tally)


HISTORY_HEADERS = ["#", "time", "panel", "backend", "wrapper", "calls", "chars"]


def history_rows(runs: list[dict]) -> list[list]:
    rows = []
    for i, r in enumerate(runs):
        parsed = r.get("parsed") or {}
        calls = ", ".join(str(c.get("name")) for c in parsed.get("tool_calls") or []) or ("error" if parsed.get("error") else "—")
        rows.append([i + 1, r.get("time"), r.get("panel"), r.get("backend_type"), r.get("wrapper"), calls, len(r.get("raw") or "")])
    return rows


def history_table(runs: list[dict]) -> dict:
    """The History tab's table value (one empty row when there is no run yet)."""
    return {"headers": HISTORY_HEADERS, "data": history_rows(runs) or [[""] * len(HISTORY_HEADERS)]}


def tally_text(t: dict, total: int, expected: str) -> str:
    """One line for a stability run's tally so far."""
    calls = ", ".join(f"{k} ×{v}" for k, v in t["calls"].items()) or "none"
    exp = f", **{t['expected']}** called `{expected}`" if expected else ""
    return (f"{t['runs']}/{total} runs: **{t['parsed']}** parsed{exp}; {t['distinct_outputs']} distinct output(s). "
            f"Calls: {calls}.")


def session_file(state: dict) -> str:
    """The whole workbench as one JSON document."""
    state, _ = replace_surrogates(state)  # a file must be writable as UTF-8
    return json.dumps({"prompt_format_playground_session": SESSION_VERSION, **state}, indent=2, ensure_ascii=False)


def load_session(text: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConversationError(f"the session file is not valid JSON: {e.msg} at line {e.lineno}") from None
    if not isinstance(data, dict) or data.get("prompt_format_playground_session") != SESSION_VERSION:
        raise ConversationError("this is not a Prompt Format Playground session file")
    Conversation.from_json(data.get("conversation", "{}"))
    return data
