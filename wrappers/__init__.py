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

import functools
from pathlib import Path

import yaml

from core import userdir

from .render import TemplateError, render  # noqa: F401  (TemplateError is part of this package's surface)
from .wrapper import UnknownWrapper, Wrapper, WrapperError  # noqa: F401  (this package's surface)

BUILTIN_DIR = Path(__file__).with_name("builtin")
# libyaml's safe loader when PyYAML has it: the same documents ~20x faster (the page lists every wrapper at start-up)
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FIELDS = {"name", "description", "models", "template", "parser", "parser_options", "stop", "variables",
           "assistant_prefix", "assistant_prefix_first_message"}


def _load_file(path: Path, builtin: bool) -> Wrapper:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
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
        raise UnknownWrapper(f"unknown wrapper: {e}") from None
    if path.is_file():
        return _load_file(path, builtin=False)
    from . import plugins

    plugin = plugins.get(name, taken=set(_yaml_names()))
    if plugin is not None:
        return plugin
    raise UnknownWrapper(f"unknown wrapper '{name}'; known wrappers: {', '.join(names())}")


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
