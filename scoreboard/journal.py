"""The journal: every finished run appended as one JSON line beside the results file, as it finishes,
so a stopped or crashed scoreboard continues where it stopped (`--resume`) with nothing lost and
nothing counted twice.

The first line is the command's fingerprint (`{"fingerprint": {...}}`: suite, cases, wrappers,
presets, grammar, repeat, params, backend type and model; not the pool's URLs): a resume by another
command is refused with a sentence, so runs of two different scoreboards are never mixed.

A run that failed because its server was down is journaled too, but a resume runs it again; the
last line for a run wins. A line cut short by a crash is dropped on reading.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from core.errors import UserError

from .report import RunRecord


class JournalError(UserError, ValueError):
    """A journal that cannot be continued or would be overwritten; the message says what to do."""


def path_for(out: str | Path) -> Path:
    """`results.json` -> `results.runs.jsonl`."""
    out = Path(out)
    return out.with_name((out.stem if out.suffix == ".json" else out.name) + ".runs.jsonl")


class Journal:
    def __init__(self, path: str | Path, resume: bool = False):
        self.path = Path(path)
        self.records: dict[tuple, RunRecord] = {}
        self.fingerprint: dict | None = None
        self._lock = threading.Lock()
        exists = self.path.is_file() and self.path.stat().st_size > 0
        if exists and not resume:
            raise JournalError(f"{self.path} holds the runs of an earlier scoreboard: add --resume to continue it, "
                               "or delete the file to start over")
        if exists:
            self._read()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")

    def _read(self) -> None:
        lines = self.path.read_text(encoding="utf-8").split("\n")
        kept = []
        for line in lines:
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if isinstance(data, dict) and "fingerprint" in data:
                    self.fingerprint = data["fingerprint"]
                else:
                    record = RunRecord.from_dict(data)
                    self.records[record.key] = record
            except (json.JSONDecodeError, TypeError, KeyError, AttributeError):
                continue  # a line cut short by a crash
            kept.append(line)
        if len(kept) != sum(1 for line in lines if line.strip()):  # rewrite without the broken line
            self.path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        elif lines[-1] != "":
            with open(self.path, "a", encoding="utf-8") as f:
                f.write("\n")

    def start(self, fingerprint: dict) -> None:
        """Write the command's fingerprint at the top of a new journal; refuse to continue another command's."""
        fingerprint = json.loads(json.dumps(fingerprint, ensure_ascii=False))  # as it reads back: lists, not tuples
        with self._lock:
            if self.fingerprint is None and not self.records:
                self._file.write(json.dumps({"fingerprint": fingerprint}, ensure_ascii=False) + "\n")
                self._file.flush()
                self.fingerprint = fingerprint
                return
        if self.fingerprint is None:
            raise JournalError(f"{self.path} does not say which command wrote it: delete the file to start over")
        if self.fingerprint != fingerprint:
            keys = [k for k in dict.fromkeys([*self.fingerprint, *fingerprint]) if self.fingerprint.get(k) != fingerprint.get(k)]
            changes = "; ".join("other cases" if k == "case_ids" else
                                f"{k} {json.dumps(self.fingerprint.get(k))} -> {json.dumps(fingerprint.get(k))}" for k in keys)
            raise JournalError(f"{self.path} holds the runs of another command ({changes}): --resume needs the same "
                               "command, or delete the file to start over")

    def finished(self) -> dict[tuple, RunRecord]:
        """The runs a resume keeps: all but those whose server failed."""
        return {k: r for k, r in self.records.items() if not r.server_failed}

    def append(self, record: RunRecord) -> None:
        line = json.dumps(record.to_dict(), ensure_ascii=False) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()
            self.records[record.key] = record

    def close(self) -> None:
        with self._lock:
            self._file.close()
