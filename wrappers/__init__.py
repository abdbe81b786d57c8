"""Wrapper registry. A wrapper is data: a Jinja template (the prompt side), a parser id with options
(the output side), default stop strings, template variables and the forced assistant prefix.

Built-ins are YAML files in `wrappers/builtin/`; a user's copies live in the user folder
(`core.userdir`) and may not take a built-in's name. Python wrappers with MemGPT's interface
dropped into the user folder's `plugins/` are listed too (`wrappers.plugins`; `kind == "python"`).

Every parse is validated against the conversation's functions (`parsers.parse`); wrappers with
MemGPT's parser (and Python plugins, which are MemGPT wrappers) also get MemGPT's own checks:
first-message verification when the template variable `first_message` is true, and the heartbeat
correction (`parsers.memgpt_checks`).
"""

from __future__ import annotations

from core.errors import UserError
import functools
from dataclasses import dataclass, field
from pathlib import Path

import yaml

import parsers
from parsers import ParseContext, ParseResult
from parsers.memgpt_checks import memgpt_checks
from core import userdir
from core.conversation import Conversation

from .render import TemplateError, render  # noqa: F401  (TemplateError is part of this package's surface)

BUILTIN_DIR = Path(__file__).with_name("builtin")
_FIELDS = {"name", "description", "models", "template", "parser", "parser_options", "stop", "variables",
           "assistant_prefix", "assistant_prefix_first_message"}


class WrapperError(UserError, ValueError):
    """A wrapper that cannot be found, loaded or saved; the message says why."""


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


def _load_file(path: Path, builtin: bool) -> Wrapper:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise WrapperError(f"wrapper file {path.name} is not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict) or "template" not in data:
        raise WrapperError(f"wrapper file {path.name} needs at least a 'template' key")
    unknown = set(data) - _FIELDS
    if unknown:
        raise WrapperError(f"wrapper file {path.name} has unknown keys: {', '.join(sorted(unknown))}")
    data.setdefault("name", path.stem)
    if data["name"] != path.stem:
        raise WrapperError(f"wrapper file {path.name} names itself '{data['name']}'; the name must match the file name")
    return Wrapper(builtin=builtin, **data)


@functools.lru_cache(maxsize=1)
def _builtins() -> dict[str, Wrapper]:
    return {p.stem: _load_file(p, builtin=True) for p in sorted(BUILTIN_DIR.glob("*.yaml"), key=lambda p: p.stem)}


def _user_dir() -> Path:
    return userdir.folder("wrappers")


def load_errors() -> list[str]:
    """Problems with user wrapper files and Python plugins (each skipped), for the page to show."""
    errors = []
    for path in sorted(_user_dir().glob("*.yaml")):
        try:
            _load_file(path, builtin=False)
        except WrapperError as e:
            errors.append(str(e))
    from . import plugins

    return errors + plugins.load_errors(taken=set(_yaml_names()))


def _yaml_names() -> list[str]:
    user = []
    for path in sorted(_user_dir().glob("*.yaml")):
        if path.stem not in _builtins():
            user.append(path.stem)
    return [*_builtins(), *user]


def names() -> list[str]:
    """Built-in wrapper names, then the user's, then the Python plugins' (a plugin that fails to
    load is left out and reported by `load_errors()`)."""
    from . import plugins

    yaml_names = _yaml_names()
    return [*yaml_names, *plugins.names(taken=set(yaml_names))]


def get(name: str) -> Wrapper:
    if name in _builtins():
        return _builtins()[name]
    try:
        path = _user_dir() / f"{userdir.valid_name(name)}.yaml"
    except userdir.InvalidName as e:  # never a path outside the user folder, never an OS error
        raise WrapperError(f"unknown wrapper: {e}") from None
    if path.is_file():
        return _load_file(path, builtin=False)
    from . import plugins

    plugin = plugins.get(name, taken=set(_yaml_names()))
    if plugin is not None:
        return plugin
    raise WrapperError(f"unknown wrapper '{name}'; known wrappers: {', '.join(names())}")


def save_as(base: Wrapper, name: str, template: str, description: str | None = None) -> Wrapper:
    """Store `base` with an edited template under `name` in the user folder; returns the saved wrapper."""
    if base.kind != "jinja":
        raise WrapperError(f"'{base.name}' is a Python wrapper ({base.source}); edit its file instead of saving a copy")
    try:
        name = userdir.check_name(name, taken_by_builtin=name in _builtins())
    except userdir.InvalidName as e:
        raise WrapperError(str(e)) from None
    copy = Wrapper(**{**{k: getattr(base, k) for k in Wrapper.__dataclass_fields__}, "source": None, "name": name, "template": template, "builtin": False,
                      "description": description if description is not None else f"Edited copy of {base.name}. {base.description}".strip()})
    userdir.atomic_write(_user_dir() / f"{name}.yaml", copy.to_yaml())
    return copy
