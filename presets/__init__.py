"""Sampling presets: YAML files holding a delta over neutral sampler values, with
text-generation-webui's key names (so presets copy between the two apps), plus this app's own keys
(`max_new_tokens`, `stop`).

The values a request uses come from, lowest first: NEUTRAL, the wrapper's stop strings, the
preset, then explicit overrides (`--param`, the page's controls).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from core.errors import UserError

import yaml

from core import userdir

BUILTIN_DIR = Path(__file__).parent
DEFAULT = "deterministic"  # reproducible runs: what a format debugger wants first

# Samplers switched off: the model's raw distribution.
NEUTRAL = {
    "max_new_tokens": 256,
    "temperature": 1.0,
    "top_p": 1.0,
    "top_k": 0,
    "min_p": 0.0,
    "typical_p": 1.0,
    "repetition_penalty": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "mirostat_mode": 0,  # 0 off, 1 or 2: Mirostat v1/v2 replaces the other samplers
    "mirostat_tau": 5.0,
    "mirostat_eta": 0.1,
    "seed": -1,
    "stop": [],
    "grammar": "",  # GBNF text constraining the output; sent only to backends that accept it
    "json_schema": None,  # a JSON schema object constraining the output, where the backend accepts one
}
KEYS = list(NEUTRAL)


class PresetError(UserError, ValueError):
    """A preset or parameter that cannot be used; the message says why."""


def check_value(key: str, value):
    """`value` for `key` if its type fits, else PresetError."""
    if key not in NEUTRAL:
        raise PresetError(f"unknown sampling parameter '{key}'; known: {', '.join(KEYS)}")
    if key == "grammar":
        if not isinstance(value, str):
            raise PresetError("'grammar' must be GBNF text")
        return value
    if key == "json_schema":
        if value is not None and not isinstance(value, dict):
            raise PresetError("'json_schema' must be a JSON schema object")
        return value
    if key == "stop":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            raise PresetError("'stop' must be a list of strings")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PresetError(f"'{key}' must be a number, not {value!r}")
    return int(value) if isinstance(NEUTRAL[key], int) else float(value)


_parsed: dict[Path, tuple[tuple[int, int, int], dict]] = {}  # path -> ((inode, mtime, size), values): every request resolves a preset


def _read(path: Path) -> dict:
    """The preset file's checked values; parsed again only when the file changed."""
    stat = path.stat()
    stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)  # saves replace the file: a new inode
    cached = _parsed.get(path)
    if cached is None or cached[0] != stamp:
        cached = _parsed[path] = (stamp, _parse(path))
    return copy.deepcopy(cached[1])


def _parse(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise PresetError(f"preset {path.name} is not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise PresetError(f"preset {path.name} must be a mapping of parameter: value")
    try:
        return {k: check_value(k, v) for k, v in data.items()}
    except PresetError as e:
        raise PresetError(f"preset {path.name}: {e}") from None


def _paths() -> dict[str, Path]:
    found = {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.yaml"))}
    for p in sorted(userdir.folder("presets").glob("*.yaml")):
        found.setdefault(p.stem, p)  # a built-in name always means the built-in
    return found


def names() -> list[str]:
    return list(_paths())


def load(name: str) -> dict:
    """The preset's delta over NEUTRAL."""
    path = _paths().get(name)
    if path is None:
        raise PresetError(f"unknown preset '{name}'; known presets: {', '.join(names())}")
    return _read(path)


def _checked(name) -> str:
    try:
        return userdir.valid_name(name)
    except userdir.InvalidName as e:
        raise PresetError(str(e)) from None


def _user_path(name: str) -> Path:
    return userdir.folder("presets") / f"{_checked(name)}.yaml"


def is_builtin(name: str) -> bool:
    return name in {p.stem for p in BUILTIN_DIR.glob("*.yaml")}


def delta(values: dict) -> dict:
    """Only what differs from NEUTRAL: how presets are stored, as text-generation-webui does."""
    return {k: v for k, v in values.items() if k in NEUTRAL and v != NEUTRAL[k]}


def save(name: str, values: dict) -> str:
    """Store `values` as the user preset `name` (never over a built-in); returns the name."""
    try:
        name = userdir.check_name(name, taken_by_builtin=is_builtin(name))
    except userdir.InvalidName as e:
        raise PresetError(str(e)) from None
    checked = {k: check_value(k, v) for k, v in delta(values).items()}
    text = "# saved from Prompt Format Playground: a delta over neutral sampler values\n"
    text += yaml.safe_dump(checked, sort_keys=False, allow_unicode=True) if checked else "{}\n"
    userdir.atomic_write(_user_path(name), text)
    return name


def delete(name: str) -> None:
    """Delete the user preset `name`; a built-in, a missing preset or a name that is not a plain file name is refused."""
    _checked(name)
    if is_builtin(name):
        raise PresetError(f"'{name}' is a built-in preset and cannot be deleted")
    path = _user_path(name)
    if not path.is_file():
        raise PresetError(f"there is no user preset named '{name}'")
    path.unlink()


def load_errors() -> list[str]:
    """Presets that cannot be used, each named with the line, so the rest still load."""
    errors = []
    for path in _paths().values():
        try:
            _read(path)
        except PresetError as e:
            errors.append(str(e))
    return errors


def resolve(preset: str | None, wrapper_stop: list[str], overrides: dict | None = None) -> dict:
    """The full parameter set a request uses."""
    values = {**NEUTRAL, "stop": list(wrapper_stop)}
    values.update(load(preset) if preset else {})
    for key, value in (overrides or {}).items():
        values[key] = check_value(key, value)
    return values


def parse_param(text: str) -> tuple[str, object]:
    """`key=value` from the CLI; the value is JSON when it parses as JSON, else a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise PresetError(f"--param takes key=value, got '{text}'")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    key = key.strip()
    return key, check_value(key, value)
