"""The page's scoreboard: background runs with progress, Stop keeping finished runs, the matrix, a cell's runs."""

import json
import threading

from workbench import panels, scoring_tab


def _embedded():
    return panels.PanelConfig.from_values({"timeout": 60, "wrapper": "chatml", **panels.neutral_values()})


def test_stop_keeps_the_finished_runs_and_the_counts_follow_from_them():
    stop = threading.Event()
    updates = []
    for update in scoring_tab.run(_embedded(), "memgpt", ["chatml"], ["deterministic"], "on", 1, 1, 24, stop):
        updates.append(update)
        if update[0].startswith("⏳ 2/"):
            stop.set()  # what the page's Stop does
    status, rows, board, files = updates[-1]
    assert status.startswith("✅") and "stopped early" in status
    assert 2 <= len(board["runs"]) < board["planned"] and board["stopped"] is True
    cell = board["cells"][0]
    assert cell["runs"] == len(board["runs"]) and cell["parsed"] == sum(r["verdict"]["parsed"] for r in board["runs"])
    assert rows[0][:4] == ["chatml", "deterministic", "on", cell["runs"]]
    assert json.load(open(files[0]))["cells"] == board["cells"] and open(files[1]).read().startswith("suite,wrapper")
    runs, caption = scoring_tab.cell_runs(board, 0)
    assert runs == board["runs"] and caption.startswith("chatml × deterministic (grammar on)")
    assert all(r["prompt"] and r["request"]["json"]["grammar"] for r in runs)


def test_bad_choices_are_a_sentence():
    assert scoring_tab.run(_embedded(), "memgpt", [], ["deterministic"], "off", 1, 1, 8).__next__()[0].startswith("❌")
    *_, last = scoring_tab.run(_embedded(), "no-such-suite", ["chatml"], ["deterministic"], "off", 1, 1, 8)
    assert last[0].startswith("❌") and "no-such-suite" in last[0]
