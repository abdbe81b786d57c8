"""What a scoreboard run produces: one record per run, the cells' counts, and the matrix as JSON, CSV and text.

A cell (wrapper x preset x grammar mode) counts only its stored runs; a BFCL cell also counts each
BFCL category apart (`categories`), since BFCL reports accuracy per category. Over several
categories two summaries are shown, neither of them BFCL's overall score (which mixes weighted and
unweighted means over groups of categories, multi-turn and agentic ones included): `all (pooled)`,
every run counted once (big categories weigh most), and `mean of categories`, the plain mean of
the categories' percentages (`category_mean`; each category weighs the same).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field

from .verdict import Verdict

COUNTS = ("parsed", "valid", "expected")
POOLED_ROW = "all (pooled)"
MEAN_ROW = "mean of categories"


@dataclass
class RunRecord:
    wrapper: str
    preset: str
    grammar: bool
    case: str
    repeat_index: int
    prompt: str = ""
    raw: str = ""
    parsed: dict | None = None
    verdict: Verdict = field(default_factory=Verdict)
    problems: list[str] = field(default_factory=list)  # why not valid / not expected
    error: str | None = None  # the run could not complete (backend, template...)
    latency_s: float | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    grammar_format: str | None = None
    grammar_sent: bool = False  # the request carried the constraint
    request: dict = field(default_factory=dict)
    index: int = 0  # the job's position in the plan (runs are stored in plan order)
    category: str = ""  # the case's BFCL category
    server: str = ""  # the pool's server that answered
    server_failed: bool = False  # the error is the server's (down, unreachable), not the run's: a resume runs it again

    @property
    def key(self) -> tuple:
        """What identifies a run in the plan, across a stop and a resume."""
        return (self.wrapper, self.preset, self.grammar, self.case, self.repeat_index)

    def to_dict(self) -> dict:
        return {"wrapper": self.wrapper, "preset": self.preset, "grammar": self.grammar, "case": self.case,
                "repeat_index": self.repeat_index, "category": self.category, "prompt": self.prompt, "raw": self.raw,
                "parsed": self.parsed, "verdict": self.verdict.to_dict(), "problems": self.problems, "error": self.error,
                "latency_s": self.latency_s, "completion_tokens": self.completion_tokens,
                "finish_reason": self.finish_reason, "grammar_format": self.grammar_format,
                "grammar_sent": self.grammar_sent, "request": self.request, "server": self.server,
                "server_failed": self.server_failed}

    @classmethod
    def from_dict(cls, data: dict) -> "RunRecord":
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data and k not in ("verdict", "index")}
        return cls(**fields, verdict=Verdict(**data.get("verdict", {})))


def aggregate(wrapper: str, preset: str, grammar: bool, runs: list[RunRecord], note: str | None = None) -> dict:
    lat = [r.latency_s for r in runs if r.latency_s is not None]
    tok = [r.completion_tokens for r in runs if r.completion_tokens is not None]
    cell = {"wrapper": wrapper, "preset": preset, "grammar": grammar, "runs": len(runs),
            **{k: sum(getattr(r.verdict, k) for r in runs) for k in COUNTS},
            "mean_latency_s": round(sum(lat) / len(lat), 3) if lat else None,
            "mean_completion_tokens": round(sum(tok) / len(tok), 2) if tok else None,
            "errors": sum(r.error is not None for r in runs)}
    if note:
        cell["note"] = note
    return cell


def _percent(count: int, runs: int):
    return round(100 * count / runs, 1) if runs else ""


def category_mean(categories: list[dict]) -> dict | None:
    """The plain mean of the percentages of the categories that have runs, and how many those are."""
    scored = [c for c in categories if c["runs"]]
    if not scored:
        return None
    return {"categories": len(scored),
            **{k: round(sum(100 * c[k] / c["runs"] for c in scored) / len(scored), 1) for k in COUNTS}}


@dataclass
class Scoreboard:
    suite: str
    backend: dict
    cases: int
    repeat: int
    wrappers: list[str]
    presets: list[str]
    grammar_modes: list[bool]
    categories: list[str] = field(default_factory=list)  # the BFCL categories of the suite, in order
    runs: list[RunRecord] = field(default_factory=list)
    notes: dict = field(default_factory=dict)  # (wrapper, preset, grammar) -> note, e.g. grammar unsupported
    servers: list[dict] = field(default_factory=list)  # the pool: url, concurrency, runs, failed
    planned: int = 0
    resumed: int = 0  # runs taken from the journal of an earlier, stopped run
    stopped: bool = False
    elapsed_s: float = 0.0

    def cell_keys(self) -> list[tuple[str, str, bool]]:
        return [(w, p, g) for w in self.wrappers for p in self.presets for g in self.grammar_modes]

    def cell_runs(self, wrapper: str, preset: str, grammar: bool = False) -> list[RunRecord]:
        """A cell's runs (for the page: open one in the workbench)."""
        return [r for r in self.runs if (r.wrapper, r.preset, r.grammar) == (wrapper, preset, grammar)]

    def cells(self) -> list[dict]:
        out = []
        for w, p, g in self.cell_keys():
            runs = self.cell_runs(w, p, g)
            cell = aggregate(w, p, g, runs, self.notes.get((w, p, g)))
            if self.categories:
                cell["categories"] = [{"category": k, **{n: v for n, v in aggregate(w, p, g, [r for r in runs if r.category == k]).items()
                                                          if n in ("runs", *COUNTS, "errors")}} for k in self.categories]
                cell["category_mean"] = category_mean(cell["categories"])
            out.append(cell)
        return out

    def cell(self, wrapper: str, preset: str, grammar: bool = False) -> dict:
        return next(c for c in self.cells() if (c["wrapper"], c["preset"], c["grammar"]) == (wrapper, preset, grammar))

    def to_dict(self) -> dict:
        return {"suite": self.suite, "backend": self.backend, "cases": self.cases, "repeat": self.repeat,
                "categories": self.categories, "cells": self.cells(), "runs": [r.to_dict() for r in self.runs],
                "servers": self.servers, "planned": self.planned, "resumed": self.resumed, "stopped": self.stopped,
                "elapsed_s": round(self.elapsed_s, 3)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_csv(self) -> str:
        """One row per cell (and per BFCL category of a cell): the matrix as numbers (percentages of runs)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["suite", "wrapper", "preset", "grammar", "runs", "parsed", "valid", "expected",
                         "parsed_pct", "valid_pct", "expected_pct", "mean_latency_s", "mean_completion_tokens", "note",
                         "category"])
        for c in self.cells():
            rows = c.get("categories") or [c]
            if len(rows) > 1:
                rows = [*rows, {**c, "category": POOLED_ROW}]
            mean = c.get("category_mean") if len(rows) > 1 else None
            for row in rows + ([{"category": MEAN_ROW}] if mean else []):
                if "runs" in row:
                    n = row["runs"]
                    numbers = [n, *(row[k] for k in COUNTS), *(_percent(row[k], n) for k in COUNTS)]
                else:  # the mean of the categories' percentages: no counts of its own
                    numbers = ["", "", "", "", *(mean[k] for k in COUNTS)]
                writer.writerow([self.suite, c["wrapper"], c["preset"], c["grammar"], *numbers,
                                 "" if c["mean_latency_s"] is None else c["mean_latency_s"],
                                 "" if c["mean_completion_tokens"] is None else c["mean_completion_tokens"],
                                 c.get("note") or "", row.get("category", "")])
        return buf.getvalue()

    def table(self, show_percent: bool = True) -> str:
        """The matrix as text: one row per wrapper x grammar mode (x BFCL category), per preset parsed/valid/expected."""
        last = "BFCL" if self.categories else "expected"
        header = ["wrapper", "grammar", *(["category"] if self.categories else [])]
        header += [f"{p}: parsed/valid/{last}" for p in self.presets] + ["latency s", "tokens"]
        rows = []
        for w in self.wrappers:
            for g in self.grammar_modes:
                cells = [self.cell(w, p, g) for p in self.presets]
                lines = [(None, cells)]
                if self.categories:
                    lines = [(k, [next(x for x in c["categories"] if x["category"] == k) for c in cells]) for k in self.categories]
                    if len(self.categories) > 1:
                        lines += [(POOLED_ROW, cells), (MEAN_ROW, [c["category_mean"] for c in cells])]
                for category, counts in lines:
                    row = [w, "on" if g else "off", *([category] if category else [])]
                    for c, full in zip(counts, cells, strict=True):
                        n = 0 if category == MEAN_ROW else c["runs"]  # the mean row has percentages, no runs
                        if category == MEAN_ROW and c:
                            row.append(" / ".join(f"{round(c[k]):3d}%" for k in COUNTS) + f"  (of {c['categories']})")
                        elif not n:
                            row.append("n/a" if full.get("note") else "-")
                        elif show_percent:
                            row.append(" / ".join(f"{round(100 * c[k] / n):3d}%" for k in COUNTS) + f"  (n={n})")
                        else:
                            row.append(" / ".join(str(c[k]) for k in COUNTS) + f" of {n}")
                    lat = [c["mean_latency_s"] for c in cells if c["mean_latency_s"] is not None]
                    tok = [c["mean_completion_tokens"] for c in cells if c["mean_completion_tokens"] is not None]
                    row.append(f"{sum(lat) / len(lat):.2f}" if lat else "-")
                    row.append(f"{sum(tok) / len(tok):.1f}" if tok else "-")
                    rows.append(row)
        widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
        lines = ["  ".join(str(x).ljust(wd) for x, wd in zip(header, widths, strict=True)).rstrip(),
                 "  ".join("-" * wd for wd in widths)]
        lines += ["  ".join(str(x).ljust(wd) for x, wd in zip(row, widths, strict=True)).rstrip() for row in rows]
        notes = [f"{w} / {p} / grammar {'on' if g else 'off'}: {n}" for (w, p, g), n in self.notes.items()]
        notes += [f"server {s['url'] or 'embedded'}: {s['runs']} runs" + (f"; {s['failed']}" if s.get("failed") else "")
                  for s in self.servers if len(self.servers) > 1 or s.get("failed")]
        done = len(self.runs)
        resumed = f" ({self.resumed} from the journal)" if self.resumed else ""
        lines.append(f"{done} of {self.planned} runs{resumed}{' (stopped)' if self.stopped else ''} in {self.elapsed_s:.1f} s; "
                     f"suite {self.suite} ({self.cases} cases x {self.repeat})")
        return "\n".join(lines + notes)
