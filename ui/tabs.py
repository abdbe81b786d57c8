"""The tabs beside the workbench: Compare prompts, Model template, Scoreboard, History, Export (the
page itself builds Session).

Each is built when first opened (`lazy_tab`): every component on the page costs the browser on each
streamed message (Gradio looks up the components that show progress in the whole tree), so the first
screen holds the workbench and little else."""

from __future__ import annotations

import tempfile
from typing import Callable

import gradio as gr

import presets
import wrappers
from ui.panel import Panel, Shared, backend_queue, built_when_opened, in_session_slot, private, with_settings
from workbench import panels as panel_logic
from workbench import turns


def panel_numbers(count: int) -> list[str]:
    return [str(n) for n in range(1, count + 1)]


def lazy_tab(label: str, tab_id: str, build: Callable[[], None], shared: Shared) -> None:
    """A tab whose contents `build` makes (components and their events) the first time it is opened."""
    with gr.Tab(label, id=tab_id) as tab:
        built_when_opened(tab.select, lambda _: build(), shared)


def compare_tab(panels: list[Panel], shared: Shared) -> None:
    def build():
        with gr.Row():
            diff_a = gr.Dropdown(panel_numbers(len(panels)), value="1", label="Panel A")
            diff_b = gr.Dropdown(panel_numbers(len(panels)), value="2", label="Panel B")
            diff_go = gr.Button("Compare", elem_id="compare-go")
        diff_summary = gr.Markdown("", elem_id="diff-summary")
        diff_view = gr.HighlightedText(label="Prompt A → B (- only in A, + only in B)", combine_adjacent=True, show_legend=True,
                                       color_map={"-": "red", "+": "green"}, elem_id="diff-view")

        def compared(a, b, *texts):
            return panel_logic.prompt_diff(texts[int(a) - 1], texts[int(b) - 1])

        diff_go.click(compared, [diff_a, diff_b, *[p.prompt for p in panels]], [diff_view, diff_summary],
                      **private(diff_summary))

    lazy_tab("Compare prompts", "compare", build, shared)


def model_template_tab(panels: list[Panel], shared: Shared) -> None:
    def build():
        gr.Markdown("Load a model's own chat template — from a GGUF file (its `tokenizer.chat_template`), a "
                    "`tokenizer_config.json`, a `chat_template.jinja`, a text-generation-webui instruction-template "
                    "YAML, or pasted text — as a wrapper. It renders in the same sandbox with the same variables as "
                    "Hugging Face transformers; pick it in any panel and compare it with a hand-written wrapper.")
        with gr.Row():
            template_file = gr.File(label="Template file", type="filepath", elem_id="model-template-file",
                                    file_types=[".gguf", ".json", ".jinja", ".yaml", ".yml", ".txt"])
            template_paste = gr.Code("", language="jinja2", lines=6, label="…or paste a template", elem_id="model-template-paste")
        with gr.Row():
            template_name = gr.Textbox("", label="Wrapper name", placeholder="from the file name",
                                       info="The loaded template is saved under this name in your wrapper folder.")
            template_load = gr.Button("Load as wrapper", variant="primary", elem_id="model-template-load")
        template_status = gr.Markdown("", elem_id="model-template-status")
        template_parser = gr.Markdown("", elem_id="model-template-parser")
        template_notes = gr.Markdown("")
        template_view = gr.Code("", language="jinja2", interactive=False, label="The loaded template", lines=12, max_lines=30)

        def loaded_template(path, pasted, name):
            text, parser, notes, status = panel_logic.load_model_template(path, pasted, name)
            names = wrappers.names()
            return [text, parser, notes, status] + [gr.Dropdown(choices=names) for _ in panels]

        template_load.click(loaded_template, [template_file, template_paste, template_name],
                            [template_view, template_parser, template_notes, template_status]
                            + [p.controls["wrapper"] for p in panels], show_progress="minimal", **private(template_status))

    lazy_tab("Model template", "model-template", build, shared)


def styled_matrix(rows: list[list], headers: list[str]):
    """The matrix with its percentage columns colour-scaled from red (0 %) to green (100 %)."""
    import pandas as pd  # only when a scoreboard is shown (it costs start-up time)

    frame = pd.DataFrame(rows, columns=headers)

    def shade(value):
        if not isinstance(value, (int, float)) or pd.isna(value):
            return ""
        hue = int(120 * value / 100)
        return f"background-color: hsla({hue}, 70%, 50%, 0.35)"

    return frame.style.map(shade, subset=[h for h in headers if h.endswith(" %")])


def scoreboard_tab(first: Panel, shared: Shared) -> None:
    def build():
        # imported when the tab opens, not at start-up: the scoreboard brings jsonschema and its suites
        from workbench import scoring_tab

        gr.Markdown("Which wrapper, preset and grammar work with your model? Runs every case of a suite with "
                    "panel 1's backend, for each wrapper × preset (× grammar off/on), and counts how many answers "
                    "parsed, were schema-valid and called what the case expects.")
        with gr.Row():
            suite = gr.Dropdown(scoring_tab.suite_choices(), value="memgpt", label="Suite", interactive=True,
                                info="memgpt: MemGPT's functions; tools: weather/calculator/search calls; "
                                     "bfcl:…: BFCL's categories (bfcl-eval installed, or its data folder below).")
            names = gr.Dropdown(wrappers.names(), value=["chatml", "airoboros-l2-70b-2.1"], multiselect=True, interactive=True,
                                label="Wrappers", info="Each becomes a row of the matrix.", elem_id="score-wrappers")
            preset_names = gr.Dropdown(presets.names(), value=["deterministic"], multiselect=True, label="Presets", interactive=True,
                                       info="Each becomes a column group.", elem_id="score-presets")
        with gr.Row():
            grammar = gr.Radio(["off", "on", "both"], value="off", label="Grammar", interactive=True,
                               info="on: a GBNF grammar derived from the functions lets the model write only well-formed calls.")
            repeat = gr.Number(1, label="Repeat", minimum=1, maximum=20, precision=0, info="Runs per case.", interactive=True)
            concurrency = gr.Number(0, label="Concurrency", minimum=0, maximum=16, precision=0, interactive=True,
                                    info="Requests at once per server; 0: the server's slots (/props).")
            tokens = gr.Number(96, label="Max new tokens", minimum=8, maximum=1024, precision=0, interactive=True,
                               info="Per answer; calls are short.")
        pool = gr.Textbox("", label="Server pool", lines=2, elem_id="score-pool", interactive=True,
                          placeholder="one URL per line; empty: panel 1's backend URL",
                          info="Runs are spread over these servers (same backend type); a failing one leaves the pool.")
        with gr.Row():
            cases = gr.Number(20, label="Cases per category", minimum=0, precision=0, interactive=True, elem_id="score-cases",
                              info="The first N cases of each category, in BFCL's order; 0: all (BFCL has thousands).")
            bfcl_dir = gr.Textbox("", label="BFCL data folder", elem_id="score-bfcl-dir", interactive=True,
                                  placeholder="empty: the installed bfcl-eval package's",
                                  info="Holds BFCL_v4_<category>.json and possible_answer/.")
        with gr.Row():
            go = gr.Button("Run scoreboard", variant="primary", elem_id="score-run")
            stop = gr.Button("Stop", variant="stop", elem_id="score-stop")
        status = gr.Markdown("", elem_id="score-status")
        matrix = gr.Dataframe(headers=scoring_tab.MATRIX_HEADERS, interactive=False, elem_id="score-matrix")
        files = gr.File(label="Results (JSON and CSV)", file_count="multiple", interactive=False)
        caption = gr.Markdown("")
        cell_runs = gr.JSON(label="The cell's runs", open=False)
        board = gr.State(None)

        def scored(request: gr.Request, suite, names, preset_names, grammar, repeat, concurrency, tokens, pool, cases,
                   bfcl_dir, settings):
            flag = shared.sessions.stop_flag(request.session_hash, "scoreboard")
            config = panel_logic.PanelConfig.from_values(settings)
            for text, rows, result, paths in scoring_tab.run(config, suite, names, preset_names, grammar, repeat,
                                                             concurrency, tokens, flag, pool, cases, bfcl_dir):
                if result is None:
                    yield text, gr.skip(), gr.skip(), gr.skip()
                else:
                    yield text, styled_matrix(rows, scoring_tab.MATRIX_HEADERS), result, paths

        with_settings(go.click, [first]).then(in_session_slot(shared.slots, scored, lambda busy: {status: busy}),
                                              [suite, names, preset_names, grammar, repeat, concurrency, tokens, pool,
                                               cases, bfcl_dir, first.settings], [status, matrix, board, files],
                                              **private(status, **backend_queue(shared.slots)))

        def stopped_scoring(request: gr.Request):
            shared.sessions.stop(request.session_hash, "scoreboard")
            return "⏹ Stopping after the runs in flight; the finished ones are kept…"

        stop.click(stopped_scoring, None, [status], queue=False, **private(status))

        def opened_cell(result, event: gr.SelectData):
            runs, text = scoring_tab.cell_runs(result, event.index[0])
            one = runs[0] if runs else {}
            return (text, runs, one.get("prompt", gr.skip()), one.get("raw", gr.skip()), one.get("parsed", gr.skip()),
                    one.get("request", gr.skip()))

        matrix.select(opened_cell, [board], [caption, cell_runs, first.prompt, first.raw, first.parsed, first.request],
                      **private(caption))

    lazy_tab("Scoreboard", "scoreboard", build, shared)


def history_tab(panels: list[Panel], shared: Shared) -> None:
    """The History tab: this session's runs, as of its opening and then after every run that finishes."""
    sessions = shared.sessions

    def history(request: gr.Request):
        return turns.history_table(sessions.runs(request.session_hash))

    def build(table_now):
        table = gr.Dataframe(table_now, interactive=False, elem_id="history-table")
        with gr.Row():
            reopen_index = gr.Number(1, label="Run #", precision=0, minimum=1, interactive=True)
            reopen_into = gr.Dropdown(panel_numbers(len(panels)), value="1", label="Open in panel", interactive=True)
            reopen = gr.Button("Reopen run", elem_id="reopen")
        reopen_status = gr.Markdown("")
        # a plain event, not the streams: concurrent streams send diffs that must not share an output
        gr.on([p.last_run.change for p in panels], history, None, [table], queue=False, **private(reopen_status,
                                                                                                 show_progress="hidden"))

        def reopened(index, into, request: gr.Request):
            past = sessions.runs(request.session_hash)
            i = int(index or 0) - 1
            if not 0 <= i < len(past):
                return {reopen_status: f"❌ There is no run #{index} in this session's history."}
            run, target = past[i], panels[int(into) - 1]
            return {target.prompt: run["prompt"], target.raw: run["raw"], target.parsed: run["parsed"],
                    target.request: run["request"], reopen_status: f"✅ Run #{index} reopened in panel {into}."}

        reopen.click(reopened, [reopen_index, reopen_into],
                     [c for p in panels for c in (p.prompt, p.raw, p.parsed, p.request)] + [reopen_status],
                     **private(reopen_status))

    with gr.Tab("History", id="history") as tab:
        built_when_opened(tab.select, build, shared, on_open=history)


def export_tab(panels: list[Panel], shared: Shared) -> None:
    def build():
        with gr.Row():
            export_from = gr.Dropdown(panel_numbers(len(panels)), value="1", label="Panel")
            export_go = gr.Button("Export", elem_id="export-go")
        export_status = gr.Markdown("")
        export_curl = gr.Code(label="The last request as curl", language="shell", elem_id="export-curl")
        export_python = gr.Code(label="The last request as Python (requests)", language="python", elem_id="export-python")
        export_yaml = gr.Code(label="The wrapper with your edits, as a YAML file to drop into another user's folder",
                              language="yaml", elem_id="export-yaml")

        def exported(values: dict):  # inputs given as a set: values by component
            chosen = panels[int(values[export_from]) - 1]
            return panel_logic.export_panel(values[chosen.last_run], values[chosen.controls["wrapper"]],
                                            values[chosen.controls["template"]])

        export_go.click(exported, {export_from, *(c for p in panels for c in (p.last_run, p.controls["wrapper"],
                                                                             p.controls["template"]))},
                        [export_curl, export_python, export_yaml, export_status], **private(export_status))

    lazy_tab("Export", "export", build, shared)


def session_file_path(state: dict) -> str:
    """The session written to a temporary file for the browser to download."""
    path = tempfile.NamedTemporaryFile(prefix="playground-session-", suffix=".json", delete=False).name
    with open(path, "w", encoding="utf-8") as f:
        f.write(turns.session_file(state))
    return path
