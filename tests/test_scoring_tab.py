"""The page's scoreboard: background runs with progress, Stop keeping finished runs, the matrix, a cell's runs."""

import json
import threading

from conftest import free_port
from scoreboard import bfcl
from scoreboard.report import RunRecord, Scoreboard
from scoreboard.verdict import Verdict
from test_bfcl import write_sample
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


def test_pool_urls_one_per_line_or_separated_by_commas_and_spaces():
    assert scoring_tab.pool_urls("http://127.0.0.1:8080\n  http://127.0.0.1:8081, http://127.0.0.1:8082 \n\n") == [
        "http://127.0.0.1:8080", "http://127.0.0.1:8081", "http://127.0.0.1:8082"]
    assert scoring_tab.pool_urls("") == [] and scoring_tab.pool_urls(None) == []


def test_server_lines_show_progress_per_server_and_why_one_left():
    lines = scoring_tab.server_lines([
        {"url": "http://127.0.0.1:8080", "concurrency": 2, "runs": 7, "in_flight": 2, "strikes": 0, "failed": None},
        {"url": "http://127.0.0.1:8081", "concurrency": 1, "runs": 3, "in_flight": 0, "strikes": 2,
         "failed": "left the pool after 3 runs: cannot connect to http://127.0.0.1:8081"},
        {"url": "http://127.0.0.1:8082", "concurrency": 1, "runs": 5, "in_flight": 1, "strikes": 1, "failed": None},
        {"url": "", "concurrency": 1, "runs": 0, "in_flight": 1, "strikes": 0, "failed": None}]).splitlines()
    assert lines == ["- `http://127.0.0.1:8080`: 7 runs done, 2 in flight (of 2)",
                     "- `http://127.0.0.1:8081`: 3 runs done, ❌ left the pool after 3 runs: cannot connect to http://127.0.0.1:8081",
                     "- `http://127.0.0.1:8082`: 5 runs done, 1 in flight (of 1), 1 failed in a row (its runs are tried again)",
                     "- `embedded`: 0 runs done, 1 in flight (of 1)"]


def _bfcl_board() -> dict:
    """4 simple_python runs (3 right) and 3 irrelevance runs (1 right), written by hand."""
    runs = [RunRecord("qwen2.5", "deterministic", False, f"simple_python_{i}", 0, category="simple_python",
                      verdict=Verdict(True, True, i < 3), latency_s=1.0) for i in range(4)]
    runs += [RunRecord("qwen2.5", "deterministic", False, "irrelevance_0", k, category="irrelevance",
                       verdict=Verdict(k > 0, k > 0, k == 0), error=None) for k in range(3)]
    board = Scoreboard("bfcl:simple_python+irrelevance", {"type": "embedded"}, 5, 3, ["qwen2.5"], ["deterministic"], [False],
                       categories=["simple_python", "irrelevance"], runs=runs, planned=7)
    return board.to_dict()


def test_bfcl_rows_per_category_pooled_and_the_mean_of_categories():
    board = _bfcl_board()
    rows = scoring_tab.matrix_rows(board["cells"])
    head = scoring_tab.MATRIX_HEADERS
    table = [dict(zip(head, row, strict=True)) for row in rows]
    assert [r["category"] for r in table] == ["simple_python", "irrelevance", "all (pooled)", "mean of categories"]
    assert [r["runs"] for r in table] == [4, 3, 7, 7]
    assert [r["expected (BFCL) %"] for r in table] == [75.0, 33.3, 57.1, 54.2]  # 3/4, 1/3, 4/7, (75 + 33.3) / 2
    assert [r["parsed %"] for r in table] == [100.0, 66.7, 85.7, 83.3]
    assert table[3]["note"] == "mean of 2 categories' percentages"
    irrelevance, caption = scoring_tab.cell_runs(board, 1)
    assert [r["case"] for r in irrelevance] == ["irrelevance_0"] * 3 and "(grammar off, irrelevance): 3 runs" in caption
    for row in (2, 3):  # pooled and mean open every run of the cell
        assert len(scoring_tab.cell_runs(board, row)[0]) == 7
    assert scoring_tab.cell_runs(board, 4) == ([], "Run a scoreboard, then click a row.")


def test_the_page_runs_bfcl_from_a_data_folder_with_a_case_limit_per_category(tmp_path):
    assert {"bfcl:simple_python", "bfcl:live_relevance", "bfcl:all", "memgpt"} <= set(scoring_tab.suite_choices())
    data = write_sample(tmp_path / "bfcl")
    *_, (status, rows, board, files) = scoring_tab.run(_embedded(), "bfcl:all", ["qwen2.5"], ["deterministic"], "off", 1, 1, 8,
                                                        cases=1, bfcl_dir=data)
    assert status.startswith("✅ 11/11 runs"), status  # one case of each of the 11 categories, not all 16
    assert board["categories"] == list(bfcl.CATEGORIES)
    assert [r["case"] for r in board["runs"]][:3] == ["simple_python_0", "multiple_0", "parallel_0"]
    assert [row[-1] for row in rows] == [*bfcl.CATEGORIES, "all (pooled)", "mean of categories"]
    *_, last = scoring_tab.run(_embedded(), "bfcl:simple_python", ["qwen2.5"], ["deterministic"], "off", 1, 1, 8,
                               bfcl_dir=str(tmp_path / "nowhere"))
    assert last[0].startswith("❌") and "holds no BFCL data" in last[0]


def test_a_server_failing_is_seen_in_the_page_and_its_runs_finish_elsewhere(llama_server):
    dead = f"http://127.0.0.1:{free_port()}"
    config = panels.PanelConfig.from_values({"backend_type": "llamacpp", "url": llama_server, "timeout": 60,
                                             "wrapper": "qwen2.5"})
    updates = list(scoring_tab.run(config, "tools", ["qwen2.5"], ["deterministic"], "off", 1, 1, 16,
                                   pool=f"{llama_server}\n{dead}", cases=3))
    status, rows, board, files = updates[-1]
    assert status.startswith("✅ 3/3 runs"), status
    by_url = {s["url"]: s for s in board["servers"]}
    assert by_url[dead]["failed"].startswith("left the pool after 0 runs: cannot connect to")
    assert by_url[llama_server]["runs"] == 3 and all(r["server"] == llama_server and not r["error"] for r in board["runs"])
    assert f"- `{dead}`: 0 runs done, ❌ left the pool after 0 runs" in status
    assert f"- `{llama_server}`: 3 runs done" in status
    assert any(f"- `{llama_server}`:" in u[0] and u[0].startswith("⏳") for u in updates)  # progress per server while it runs
