"""One wrapper: a Jinja template (the prompt side), a parser id with options (the output side), stop
strings and the forced assistant prefix. Its own module so that the registry (`wrappers/__init__`) and
the Python plugins (`wrappers.plugins`) both build on it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

import parsers
from core.conversation import Conversation
from core.errors import UserError
from parsers import ParseContext, ParseResult
from parsers.memgpt_checks import memgpt_checks

from .render import render


class WrapperError(UserError, ValueError):
    """A wrapper that cannot be found, loaded or saved; the message says why."""


class UnknownWrapper(WrapperError):
    """No wrapper has that name (as opposed to one that exists and fails to load)."""


@dataclass
class Wrapper:
    name: str
    template: str
    parser: str = "plain"
    description: str = ""
    models: list[str] = field(default_factory=list)
    parser_options: dict = field(default_factory=dict)
    stop: list[str] = field(default_factory=list)
    variables: dict = field(default_factory=dict)  # defaults the template sees (bos_token, first_message...)
    assistant_prefix: str = ""  # text the prompt ends with, that the model continues from
    assistant_prefix_first_message: str | None = None  # MemGPT: the prefix when first_message is true
    builtin: bool = False
    kind: str = "jinja"  # "jinja": `template` is an editable Jinja template; "python": a plugin, `template` is its source (read-only)
    source: str | None = None  # where it was loaded from (a plugin's .py file, a model's template file), for display

    @property
    def editable(self) -> bool:
        """Whether the page may let the user edit `template` and save a copy."""
        return self.kind == "jinja"

    def variables_for(self, conversation: Conversation) -> dict:
        """Everything the template sees: defaults, then the conversation's own template variables."""
        variables = {"bos_token": "", "eos_token": "", **self.variables, **conversation.template_variables}
        variables.setdefault("messages", conversation.messages)
        variables.setdefault("tools", conversation.tools)
        variables.setdefault("functions", conversation.functions)
        variables.setdefault("add_generation_prompt", True)
        variables.setdefault("assistant_prefix", self.prefix_for(variables))
        return variables

    def prefix_for(self, variables: dict) -> str:
        if variables.get("first_message") and self.assistant_prefix_first_message is not None:
            return self.assistant_prefix_first_message
        return self.assistant_prefix

    def render(self, conversation: Conversation, template: str | None = None) -> str:
        """The exact prompt; `template` renders in place of the wrapper's own (live edits)."""
        return render(self.template if template is None else template, self.variables_for(conversation), conversation.now)

    def parse(self, raw: str, conversation: Conversation | None = None) -> ParseResult:
        conversation = conversation or Conversation(messages=[])
        variables = {**self.variables, **conversation.template_variables}
        context = ParseContext(prefix=self.prefix_for(variables), options=self.parser_options,
                               functions=conversation.functions)
        result = parsers.parse(self.parser, raw, context)
        if self.parser == "memgpt_inner_monologue":
            result.checks.extend(memgpt_checks(result, conversation.messages, bool(variables.get("first_message"))))
        return result

    def to_yaml(self) -> str:
        data = {"name": self.name, "description": self.description, "models": self.models,
                "parser": self.parser, "parser_options": self.parser_options, "stop": self.stop,
                "variables": self.variables, "assistant_prefix": self.assistant_prefix}
        if self.assistant_prefix_first_message is not None:
            data["assistant_prefix_first_message"] = self.assistant_prefix_first_message
        data["template"] = self.template
        return yaml.dump(data, Dumper=_LiteralDumper, sort_keys=False, allow_unicode=True, width=1000)


class _LiteralDumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper, value):
    # templates read best as block literals; strings YAML cannot hold that way stay quoted
    style = "|" if "\n" in value and not value.endswith((" ", "\t")) and "\r" not in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _str_presenter)


