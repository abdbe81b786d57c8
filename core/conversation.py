"""A conversation: system prompt and messages (OpenAI ChatCompletion shape) plus the functions."""

from __future__ import annotations

from .errors import UserError
import json
from dataclasses import dataclass, field
from pathlib import Path


class ConversationError(UserError, ValueError):
    """The conversation JSON cannot be used; the message says what to fix."""


@dataclass
class Conversation:
    messages: list[dict]
    functions: list[dict] = field(default_factory=list)  # legacy `functions` shape: name, description, parameters
    template_variables: dict = field(default_factory=dict)
    now: str | None = None  # ISO date that the template's strftime_now sees

    @property
    def tools(self) -> list[dict] | None:
        """The functions in the OpenAI `tools` shape, or None when there are none (as transformers passes)."""
        if not self.functions:
            return None
        return [{"type": "function", "function": f} for f in self.functions]

    @classmethod
    def from_data(cls, data) -> "Conversation":
        if not isinstance(data, dict):
            raise ConversationError('the conversation must be a JSON object like {"messages": [...], "functions": [...]}')
        messages = data.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise ConversationError('the conversation needs "messages": a list of objects with "role" and "content"')
        for i, m in enumerate(messages):
            if "role" not in m:
                raise ConversationError(f'message {i} has no "role"')
        functions = data.get("functions")
        if functions is None and data.get("tools") is not None:
            tools = data["tools"]
            if not isinstance(tools, list) or not all(isinstance(t, dict) and "function" in t for t in tools):
                raise ConversationError('"tools" must be a list of {"type": "function", "function": {...}} objects')
            functions = [t["function"] for t in tools]
        functions = functions or []
        if not isinstance(functions, list) or not all(isinstance(f, dict) and "name" in f for f in functions):
            raise ConversationError('"functions" must be a list of JSON-schema function objects, each with a "name"')
        variables = data.get("template_variables") or {}
        if not isinstance(variables, dict):
            raise ConversationError('"template_variables" must be a JSON object')
        now = data.get("now")
        if now is not None and not isinstance(now, str):
            raise ConversationError('"now" must be an ISO date string such as "2024-07-26"')
        return cls(messages=messages, functions=functions, template_variables=variables, now=now)

    @classmethod
    def functions_only(cls, data) -> "Conversation":
        """A conversation holding only functions, from a list of functions or a conversation object."""
        if isinstance(data, list):
            data = {"functions": data}
        if isinstance(data, dict):
            data = {"messages": [], **data}
        return cls.from_data(data)

    @classmethod
    def from_json(cls, text: str) -> "Conversation":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConversationError(f"the conversation is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
        return cls.from_data(data)

    @classmethod
    def from_file(cls, path: str | Path) -> "Conversation":
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise ConversationError(f"cannot read the conversation file {path}: {e.strerror}") from None
        return cls.from_json(text)

    def to_data(self) -> dict:
        data: dict = {"messages": self.messages, "functions": self.functions}
        if self.template_variables:
            data["template_variables"] = self.template_variables
        if self.now:
            data["now"] = self.now
        return data


EXAMPLE_PATH = Path(__file__).with_name("example_conversation.json")


def example() -> Conversation:
    """The conversation the page starts with."""
    return Conversation.from_file(EXAMPLE_PATH)
