"""The page's scoreboard: run a suite over a pool of servers in the background, with progress per
server and Stop, show the matrix (a row per BFCL category for BFCL suites), open a row's runs."""

from __future__ import annotations

import queue
import re
import tempfile
import threading
from typing import Iterator

from backends import BackendError
from workbench.panels import PanelConfig
from presets import PresetError
from scoreboard import ScoreRequest, SuiteError, bfcl, catalog, run_scoreboard, suites
from scoreboard.report import COUNTS, MEAN_ROW, POOLED_ROW
from wrappers import WrapperError

MATRIX_HEADERS = ["wrapper", "preset", "grammar", "runs", "parsed %", "valid %", "expected (BFCL) %", "mean latency s",
                  "mean tokens", "note", "category"]
GRAMMAR_MODES = {"off": [False], "on": [True], "both": [False, True]}


def _percent(count: int, runs: int) -> float | None:
    return round(100 * count / runs, 1) if runs else None


def pool_urls(text: str) -> list[str]:
    """The pool box: one URL per line (commas and spaces separate too)."""
    return [u for u in re.split(r"[\s,]+", text or "") if u]


def _row_keys(cells: list[dict]) -> list[tuple[int, str | None]]:
    """(cell index, BFCL category, or None for the cell's runs pooled, or MEAN_ROW) for each matrix row."""
    keys = []
    for i, c in enumerate(cells):
        categories = [k["category"] for k in c.get("categories") or []]
        keys += [(i, k) for k in categories] + ([(i, None)] if len(categories) != 1 else [])
        if len(categories) > 1 and c.get("category_mean"):
            keys.append((i, MEAN_ROW))
    return keys


def matrix_rows(cells: list[dict]) -> list[list]:
    rows = []
    for i, category in _row_keys(cells):
        c = cells[i]
        head = [c["wrapper"], c["preset"], "on" if c["grammar"] else "off"]
        tail = [c.get("mean_latency_s"), c.get("mean_completion_tokens")]
        if category == MEAN_ROW:  # percentages only: each category weighs the same
            mean = c["category_mean"]
            rows.append([*head, c["runs"], *(mean[k] for k in COUNTS), *tail,
                         f"mean of {mean['categories']} categories' percentages", MEAN_ROW])
            continue
        counts = next(k for k in c["categories"] if k["category"] == category) if category else c
        n = counts["runs"]
        label = category or (POOLED_ROW if c.get("categories") else "")
        rows.append([*head, n, *(_percent(counts[k], n) for k in COUNTS), *tail,
                     c.get("note") or (f"{counts['errors']} errors" if counts.get("errors") else ""), label])
    return rows


def server_lines(servers: list[dict]) -> str:
    """Progress per server, for the status line."""
    lines = []
    for s in servers:
        state = f"❌ {s['failed']}" if s["failed"] else f"{s['in_flight']} in flight (of {s['concurrency']})"
        if s.get("strikes") and not s["failed"]:
            state += f", {s['strikes']} failed in a row (its runs are tried again)"
        lines.append(f"- `{s['url'] or 'embedded'}`: {s['runs']} runs done, {state}")
    return "\n".join(lines)


def suite_choices() -> list[str]:
    """The shipped suites and every BFCL category (the page has a box for BFCL's data folder)."""
    return suites.names() + [bfcl.PREFIX + c for c in (*bfcl.CATEGORIES, "all")]


def run(config: PanelConfig, suite: str, wrapper_names: list[str], preset_names: list[str], grammar: str, repeat: int,
        concurrency: int, max_new_tokens: int, stop: threading.Event | None = None, pool: str = "", cases: int = 0,
        bfcl_dir: str = "") -> Iterator[tuple[str, list[list], dict | None, list[str]]]:
    """Yield (status, matrix rows, scoreboard JSON when done, [JSON path, CSV path]) as runs finish.

    `pool`: the servers' URLs (empty: panel 1's URL); `concurrency` per server, 0 = its slot count;
    `cases`: the first N cases of each category (0: all); `bfcl_dir`: BFCL's data folder (empty: the
    installed bfcl-eval package's). Setting `stop` (the page's Stop) ends the runs early and the
    finished ones are still scored and shown; closing the generator (the page went away) stops them too."""
    if not wrapper_names or not preset_names:
        yield "❌ Pick at least one wrapper and one preset.", [], None, []
        return
    try:
        chosen = catalog.load(suite, (bfcl_dir or "").strip() or None)
        if int(cases or 0) > 0:
            chosen = chosen.first(int(cases))
    except SuiteError as e:
        yield f"❌ {e}", [], None, []
        return
    request = ScoreRequest(backend_type=config.backend_type, suite=chosen, wrappers=list(wrapper_names),
                           presets=list(preset_names), grammar=GRAMMAR_MODES.get(grammar, [False]), repeat=int(repeat or 1),
                           concurrency=max(0, int(concurrency or 0)), params={"max_new_tokens": int(max_new_tokens or 96)},
                           settings=config.settings(),
                           urls=pool_urls(pool))
    updates: queue.Queue = queue.Queue()
    stop = stop or threading.Event()
    result: dict = {}
    servers: list[list[dict]] = [[]]

    def work():
        try:
            result["board"] = run_scoreboard(request, progress=lambda done, total: updates.put((done, total)), stop=stop,
                                             on_servers=lambda pool_now: servers.__setitem__(0, pool_now))
        except (SuiteError, WrapperError, PresetError, BackendError, ValueError) as e:
            result["error"] = str(e)
        finally:
            updates.put(None)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        yield "⏳ Starting…", [], None, []
        while (update := updates.get()) is not None:
            done, total = update
            yield f"⏳ {done}/{total} runs done… (Stop keeps the finished ones)\n\n{server_lines(servers[0])}", [], None, []
    except GeneratorExit:
        stop.set()  # nobody is watching any more: let the runner wind down
        raise
    thread.join()
    if "error" in result:
        yield f"❌ {result['error']}", [], None, []
        return
    board = result["board"]
    files = []
    for suffix, text in ((".json", board.to_json()), (".csv", board.to_csv())):
        with tempfile.NamedTemporaryFile("w", prefix="scoreboard-", suffix=suffix, delete=False, encoding="utf-8") as f:
            f.write(text)
            files.append(f.name)
    data = board.to_dict()
    state = "stopped early: the finished runs are kept" if board.stopped else "done"
    pool_text = f"\n\n{server_lines(data['servers'])}" if len(data["servers"]) > 1 or any(s["failed"] for s in data["servers"]) else ""
    yield (f"✅ {len(data['runs'])}/{board.planned} runs, {state}, in {board.elapsed_s:.1f} s. Click a row to open its runs.{pool_text}",
           matrix_rows(data["cells"]), data, files)


def cell_runs(board: dict | None, row: int) -> tuple[list[dict], str]:
    """The runs of the matrix row `row` and a caption."""
    keys = _row_keys(board["cells"]) if board else []
    if not 0 <= row < len(keys):
        return [], "Run a scoreboard, then click a row."
    index, category = keys[row]
    cell = board["cells"][index]
    whole = category in (None, MEAN_ROW)
    runs = [r for r in board["runs"] if (r["wrapper"], r["preset"], r["grammar"]) == (cell["wrapper"], cell["preset"], cell["grammar"])
            and (whole or r.get("category") == category)]
    grammar = "on" if cell["grammar"] else "off"
    where = "" if whole else f", {category}"
    return runs, f"{cell['wrapper']} × {cell['preset']} (grammar {grammar}{where}): {len(runs)} runs; the first is open in panel 1."
