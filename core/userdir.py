"""The user folder: edited wrappers and presets live here, never over a built-in.

`PFP_HOME` moves it (tests point it at a temporary folder); the default is
`~/.prompt-format-playground`. Every save is atomic: a temporary file in the same folder, then a
rename, so a crash mid-save leaves either the old or the new file, never half of one.
"""

from __future__ import annotations

from .errors import UserError
import os
import re
import tempfile
from pathlib import Path

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


class InvalidName(UserError, ValueError):
    """A user-chosen file name that is not allowed."""


def home() -> Path:
    return Path(os.environ.get("PFP_HOME") or Path.home() / ".prompt-format-playground")


def folder(kind: str) -> Path:
    return home() / kind


def valid_name(name) -> str:
    """Return `name` if it is a safe file name (no folder, no traversal, not too long); raise InvalidName saying why not.

    Every function that turns a user-given name into a path calls this first, for reading,
    saving and deleting alike, so no name reaches the file system unchecked.
    """
    if not isinstance(name, str):
        raise InvalidName(f"a name must be text, not {type(name).__name__}")
    shown = name if len(name) <= 80 else f"{name[:40]}...({len(name)} characters)"
    if name != name.strip():
        raise InvalidName(f"'{shown}' starts or ends with a space; remove it")
    if not _NAME.match(name) or ".." in name:
        raise InvalidName(
            f"'{shown}' is not a usable name: use 1-64 letters, digits, '.', '_', '+' or '-', starting with a letter or digit"
        )
    if name.split(".")[0].lower() in _RESERVED:
        raise InvalidName(f"'{name}' is a reserved file name on some systems; choose another")
    return name


def check_name(name: str, taken_by_builtin: bool) -> str:
    """Return `name` if it is a safe, free file name for a save; raise InvalidName saying why not.

    `taken_by_builtin` is the caller's check of `name` exactly as given, so a name is never
    changed here (no stripping): " chatml" is refused rather than quietly becoming "chatml".
    """
    valid_name(name or "")
    if taken_by_builtin:
        raise InvalidName(f"'{name}' is a built-in name; save your copy under a new name")
    return name


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to `path` all or nothing: a temporary file in the same folder, flushed to disk,
    then renamed over `path` (atomic on POSIX and Windows). A crash before the rename leaves the old
    file untouched; after it, the new one complete. The folder is synced so the rename survives too."""
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
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder; its rename is durable enough
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
