"""The user folder: edited wrappers and presets live here, never over a built-in.

`PFP_HOME` moves it (tests point it at a temporary folder); the default is
`~/.prompt-format-playground`. Every save is atomic: a temporary file in the same folder, then a
rename, so a crash mid-save leaves either the old or the new file, never half of one.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


class InvalidName(ValueError):
    """A user-chosen file name that is not allowed."""


def home() -> Path:
    return Path(os.environ.get("PFP_HOME") or Path.home() / ".prompt-format-playground")


def folder(kind: str) -> Path:
    return home() / kind


def check_name(name: str, taken_by_builtin: bool) -> str:
    """Return `name` if it is a safe, free file name; raise InvalidName saying why not."""
    name = (name or "").strip()
    if not _NAME.match(name) or ".." in name:
        raise InvalidName(
            f"'{name}' is not a usable name: use 1-64 letters, digits, '.', '_', '+' or '-', starting with a letter or digit"
        )
    if name.split(".")[0].lower() in _RESERVED:
        raise InvalidName(f"'{name}' is a reserved file name on some systems; choose another")
    if taken_by_builtin:
        raise InvalidName(f"'{name}' is a built-in name; save your copy under a new name")
    return name


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
