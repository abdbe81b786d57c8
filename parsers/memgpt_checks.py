"""MemGPT's own checks on a parsed reply, reported (never applied) so the page can mark them.

MemGPT runs two checks after its parser (cpacker/MemGPT f0bc6487):

- **First-message verification** (`verify_first_message_correctness` in `memgpt/agent.py`, the check
  that `--no_verify` turns off; only for the agent's first reply, which it retries up to 10 times):
  the reply must call a function, that function must be `send_message` (MemGPT final also accepts
  `archival_memory_search`), and the inner monologue must hold none of `(){}[]"` and neither the
  word "functions" nor "send_message".
- **Heartbeat correction** (`function_parser.patch_function`, on by default): when the last history
  message is a user message (role `user`, content JSON with `"type": "user_message"`) and the reply
  calls a function not in `NO_HEARTBEAT_FUNCS`, MemGPT sets `request_heartbeat: true` in its
  arguments so the agent runs again after the call.

`memgpt_checks(result, messages, first_message)` returns `parsers.Check`s with source
`memgpt_first_message` / `memgpt_heartbeat`; a heartbeat check carries the change MemGPT would make.
"""

from __future__ import annotations

import json

from .result import Check, ParseResult

NO_HEARTBEAT_FUNCS = ("send_message", "pause_heartbeats")  # MemGPT; Letta keeps only send_message
FIRST_MESSAGE_FUNCS = ("send_message", "archival_memory_search")  # MemGPT final accepts both
SPECIAL_CHARACTERS = '(){}[]"'
FORBIDDEN_WORDS = ("functions", "send_message")

FIRST = "memgpt_first_message"
HEARTBEAT = "memgpt_heartbeat"


def first_message_problems(result: ParseResult) -> list[str]:
    """Why MemGPT's first-message verification would reject this reply (empty: it passes)."""
    if result.error is not None:
        return []  # MemGPT raises on an unparsable reply before verifying it: the error says it all
    if not result.tool_calls:
        return ["the first reply calls no function; MemGPT's first-message check requires send_message "
                "(it retries up to 10 times unless --no_verify is given)"]
    problems = []
    name = result.tool_calls[0].name
    if name not in FIRST_MESSAGE_FUNCS:
        problems.append(f"the first reply calls '{name}', not send_message; MemGPT's first-message check rejects it "
                        "(it accepts only send_message or archival_memory_search)")
    monologue = result.inner_thoughts if isinstance(result.inner_thoughts, str) else result.content
    if isinstance(result.inner_thoughts, dict):
        monologue = json.dumps(result.inner_thoughts)  # what MemGPT would have had as its content
    if monologue:
        found = sorted({c for c in monologue if c in SPECIAL_CHARACTERS}, key=SPECIAL_CHARACTERS.index)
        if found:
            problems.append("the inner monologue contains " + " ".join(found)
                            + "; MemGPT's first-message check rejects a monologue holding any of (){}[]\"")
        words = [w for w in FORBIDDEN_WORDS if w in monologue]
        if words:
            problems.append("the inner monologue mentions " + " and ".join(f"'{w}'" for w in words)
                            + "; MemGPT's first-message check rejects it (function syntax leaking into the monologue)")
    return problems


def _last_is_user_message(messages: list[dict]) -> tuple[bool, str | None]:
    """(True, None) when MemGPT sees the last history message as a user_message; a note when MemGPT
    itself would fail on it."""
    if not messages:
        return False, None
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return False, None
    try:
        content = json.loads(last.get("content") or "")
    except (json.JSONDecodeError, TypeError):
        return False, None  # MemGPT: plain text is not a user_message event
    if not isinstance(content, dict):
        return False, f"the last user message is JSON but not an object; MemGPT's heartbeat correction would fail on it ({type(content).__name__})"
    if "type" not in content:
        return False, "the last user message is a JSON object without \"type\"; MemGPT's heartbeat correction would fail on it (KeyError 'type')"
    return content["type"] == "user_message", None


def heartbeat_checks(result: ParseResult, messages: list[dict]) -> list[Check]:
    """What MemGPT's heartbeat correction would do to the reply's call (empty when it would not fire)."""
    if result.error is not None or not result.tool_calls:
        return []
    is_user, note = _last_is_user_message(messages)
    if note:
        return [Check(HEARTBEAT, note, call=0)]
    call = result.tool_calls[0]  # MemGPT reads one call per reply
    if not is_user or call.name in NO_HEARTBEAT_FUNCS:
        return []
    args = call.arguments
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            return [Check(HEARTBEAT, f"MemGPT would add request_heartbeat: true to the call to '{call.name}', "
                                     "but its arguments are not JSON, so MemGPT would fail here", call=0)]
    if not isinstance(args, dict):
        return [Check(HEARTBEAT, f"MemGPT would add request_heartbeat: true to the call to '{call.name}', "
                                 "but its arguments are not an object, so MemGPT would fail here", call=0)]
    before = args.get("request_heartbeat", "missing")
    why = (f"the last message is a user_message and '{call.name}' is not send_message or pause_heartbeats, "
           "so MemGPT's heartbeat correction sets request_heartbeat: true")
    if before is True:
        return [Check(HEARTBEAT, f"{why} (already true: nothing changes)", call=0)]
    was = "missing" if before == "missing" else json.dumps(before)
    return [Check(HEARTBEAT, f"{why} (was {was}): the agent will run again after this call", call=0,
                  change={"request_heartbeat": True})]


def memgpt_checks(result: ParseResult, messages: list[dict], first_message: bool = False) -> list[Check]:
    """Both checks, as MemGPT runs them: first-message verification only when `first_message`."""
    checks: list[Check] = []
    if first_message:
        checks += [Check(FIRST, p, call=0 if result.tool_calls else None) for p in first_message_problems(result)]
    checks += heartbeat_checks(result, messages)
    return checks
