"""The page's scoreboard: run a suite in the background with progress and Stop, show the matrix, open a cell's runs."""

from __future__ import annotations

import queue
import tempfile
import threading
from typing import Iterator

from backends import BackendError
from workbench.panels import PanelConfig, backend_settings
from presets import PresetError
from scoreboard import ScoreRequest, SuiteError, run_scoreboard
from wrappers import WrapperError

MATRIX_HEADERS = ["wrapper", "preset", "grammar", "runs", "parsed %", "valid %", "expected %", "mean latency s", "mean tokens", "note"]
GRAMMAR_MODES = {"off": [False], "on": [True], "both": [False, True]}


def _percent(count: int, runs: int) -> float | None:
    return round(100 * count / runs, 1) if runs else None


def matrix_rows(cells: list[dict]) -> list[list]:
    return [[c["wrapper"], c["preset"], "on" if c["grammar"] else "off", c["runs"], _percent(c["parsed"], c["runs"]),
             _percent(c["valid"], c["runs"]), _percent(c["expected"], c["runs"]), c.get("mean_latency_s"),
             c.get("mean_completion_tokens"), c.get("note") or (f"{c['errors']} errors" if c.get("errors") else "")]
            for c in cells]


def run(config: PanelConfig, suite: str, wrapper_names: list[str], preset_names: list[str], grammar: str, repeat: int,
        concurrency: int, max_new_tokens: int, stop: threading.Event | None = None) -> Iterator[tuple[str, list[list], dict | None, list[str]]]:
    """Yield (status, matrix rows, scoreboard JSON when done, [JSON path, CSV path]) as runs finish.

    Setting `stop` (the page's Stop) ends the runs early and the finished ones are still scored and
    shown; closing the generator (the page went away) stops them too."""
    if not wrapper_names or not preset_names:
        yield "❌ Pick at least one wrapper and one preset.", [], None, []
        return
    request = ScoreRequest(backend_type=config.backend_type, suite=suite, wrappers=list(wrapper_names),
                           presets=list(preset_names), grammar=GRAMMAR_MODES.get(grammar, [False]), repeat=int(repeat or 1),
                           concurrency=max(1, int(concurrency or 1)), params={"max_new_tokens": int(max_new_tokens or 96)},
                           settings=backend_settings(config.url, config.model, config.api_key, config.timeout, config.extra_json))
    updates: queue.Queue = queue.Queue()
    stop = stop or threading.Event()
    result: dict = {}

    def work():
        try:
            result["board"] = run_scoreboard(request, progress=lambda done, total: updates.put((done, total)), stop=stop)
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
            yield f"⏳ {done}/{total} runs done… (Stop keeps the finished ones)", [], None, []
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
    yield (f"✅ {len(data['runs'])}/{board.planned} runs, {state}, in {board.elapsed_s:.1f} s. Click a row to open its runs.",
           matrix_rows(data["cells"]), data, files)


def cell_runs(board: dict | None, row: int) -> tuple[list[dict], str]:
    """The runs of the matrix row `row` and a caption."""
    if not board or not 0 <= row < len(board["cells"]):
        return [], "Run a scoreboard, then click a row."
    cell = board["cells"][row]
    runs = [r for r in board["runs"] if (r["wrapper"], r["preset"], r["grammar"]) == (cell["wrapper"], cell["preset"], cell["grammar"])]
    grammar = "on" if cell["grammar"] else "off"
    return runs, f"{cell['wrapper']} × {cell['preset']} (grammar {grammar}): {len(runs)} runs; the first is open in panel 1."
