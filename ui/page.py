"""The workbench page: the shared conversation, side-by-side panels, compare, history, export,
sessions. Layout and wiring only; every handler is a plain function of `workbench` (no Gradio there)."""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass

import gradio as gr

import backends
import presets
import wrappers
import scoreboard
from workbench import panels, scoring_tab, turns
from ui import traffic_tab
from flow.startup import StartupConfig
from core.conversation import EXAMPLE_PATH, ConversationError

MAX_PANELS = 3
START_PANELS = 2
SECOND_WRAPPER = "hermes-2-pro"  # the second panel starts on a native tool-call format to compare with

CONTROLS = {  # key: (label, minimum, maximum, step, info); SLIDER_KEYS order
    "max_new_tokens": ("Max new tokens", 1, 4096, 1, "Longest completion the backend may write."),
    "temperature": ("Temperature", 0.0, 2.0, 0.01, "0 picks the likeliest token; higher is more random."),
    "top_p": ("top_p", 0.0, 1.0, 0.01, "Keep the smallest set of tokens whose probabilities add up to this (1 = off)."),
    "top_k": ("top_k", 0, 200, 1, "Keep only the k likeliest tokens (0 = off, 1 = greedy)."),
    "min_p": ("min_p", 0.0, 1.0, 0.01, "Drop tokens less likely than this fraction of the top token (0 = off)."),
    "typical_p": ("typical_p", 0.0, 1.0, 0.01, "Locally typical sampling (1 = off)."),
    "repetition_penalty": ("Repetition penalty", 0.5, 2.0, 0.01, "Above 1 discourages repeating tokens (1 = off)."),
    "presence_penalty": ("Presence penalty", -2.0, 2.0, 0.01, "Penalise tokens that already appeared (0 = off)."),
    "frequency_penalty": ("Frequency penalty", -2.0, 2.0, 0.01, "Penalise tokens by how often they appeared (0 = off)."),
    "mirostat_mode": ("Mirostat mode", 0, 2, 1, "0 off; 1 or 2 keep surprise near tau and replace top_k/top_p/min_p."),
    "mirostat_tau": ("Mirostat tau", 0.0, 10.0, 0.1, "Target surprise for Mirostat."),
    "mirostat_eta": ("Mirostat eta", 0.0, 1.0, 0.01, "Mirostat learning rate."),
}
assert list(CONTROLS) + ["seed"] == panels.SLIDER_KEYS, "the page's controls must follow SLIDER_KEYS"

# A browser pays for every streamed message; tokens that arrive faster than this are sent together.
STREAM_UPDATE_SECONDS = 0.1
CSS = """
.mono textarea { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
"""
CTRL_ENTER = """() => {
  document.addEventListener('keydown', (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') { e.preventDefault(); document.querySelector('#run-all')?.click(); }
  });
}"""


@dataclass
class Panel:
    index: int
    column: gr.Column
    config: list  # the controls, in PanelConfig order
    backend_type: gr.Dropdown
    url: gr.Textbox
    model: gr.Dropdown
    api_key: gr.Textbox
    timeout: gr.Number
    check: gr.Button
    backend_status: gr.Markdown
    wrapper: gr.Dropdown
    wrapper_info: gr.Markdown
    template: gr.Code
    save_name: gr.Textbox
    save: gr.Button
    save_status: gr.Markdown
    preset: gr.Dropdown
    preset_name: gr.Textbox
    preset_save: gr.Button
    preset_delete: gr.Button
    preset_restore: gr.Button
    neutralize: gr.Button
    preset_status: gr.Markdown
    values: list
    stop: gr.Textbox
    grammar: gr.Code
    extra: gr.Code
    prompt: gr.Textbox
    prompt_status: gr.Markdown
    show_ws: gr.Checkbox
    generate: gr.Button
    stop_btn: gr.Button
    run_status: gr.Markdown
    raw: gr.Textbox
    parsed: gr.JSON
    request: gr.JSON
    last_run: gr.State
    runs: gr.Number
    expected: gr.Textbox
    stability: gr.Button
    stability_status: gr.Markdown
    column_visible: gr.State  # whether Run all includes this panel
    detect: gr.Button
    fetch_template: gr.Button
    server_template: gr.Code
    use_server_template: gr.Button
    heatmap: gr.HighlightedText
    alternatives_caption: gr.Markdown
    alternatives: gr.Dataframe
    tokenize: gr.Button
    tokens_summary: gr.Markdown
    prompt_token_table: gr.Dataframe
    response: gr.JSON


def _panel(i: int, startup: StartupConfig, wrapper_name: str, visible: bool) -> Panel:
    n = i + 1
    template0, info0 = panels.wrapper_view(wrapper_name)
    preset0 = panels.preset_values(startup.preset)
    url_hint, ignored0 = panels.backend_defaults(startup.backend_type)
    with gr.Column(visible=visible, min_width=380, elem_id=f"panel-{n}") as column:
        gr.Markdown(f"### Panel {n}")
        with gr.Accordion("Backend", open=False):
            backend_type = gr.Dropdown(backends.names(), value=startup.backend_type, label="Type", elem_id=f"backend-type-{n}",
                                       info="embedded runs llama.cpp in this app; the others talk to your server.")
            with gr.Row():
                url = gr.Textbox(startup.backend_url, label="URL", placeholder=url_hint, elem_id=f"backend-url-{n}", scale=4,
                                 info="The server's address as it prints it, e.g. http://127.0.0.1:8080.")
                detect = gr.Button("Detect type", size="sm", scale=1, elem_id=f"detect-{n}")
            model = gr.Dropdown(panels.model_choices(startup.backend_type), value=startup.backend_model or None,
                                allow_custom_value=True, label="Model",
                                info="Filled from the server's list by Check; for embedded, the built-in model, the "
                                     "start-up --model or a .gguf file of the models folder.")
            with gr.Row():
                api_key = gr.Textbox("", type="password", label="API key", info="Sent as a bearer token; never shown or saved.")
                timeout = gr.Number(120, label="Timeout (s)", minimum=1, maximum=3600, info="How long to wait for the server's next byte.")
            probabilities = gr.Number(0, label="Token probabilities", minimum=0, maximum=20, precision=0, elem_id=f"probabilities-{n}",
                                      info="Alternatives to ask for per output token (0 = off); shown under Tokens.")
            with gr.Row():
                check = gr.Button("Check connection", size="sm")
                fetch_template = gr.Button("Server's chat template", size="sm", elem_id=f"server-template-{n}")
            backend_status = gr.Markdown(ignored0, elem_id=f"backend-status-{n}")
            server_template = gr.Code("", language="jinja2", interactive=False, visible=False, lines=6, max_lines=16,
                                      label="The loaded model's own chat template", elem_id=f"server-template-view-{n}")
            use_server_template = gr.Button("Load this template as a wrapper", size="sm", visible=False)
        with gr.Accordion("Wrapper", open=True):
            wrapper = gr.Dropdown(wrappers.names(), value=wrapper_name, label="Wrapper", elem_id=f"wrapper-{n}",
                                  info="The prompt format: a Jinja template plus the parser for the model's answer.")
            wrapper_info = gr.Markdown(info0)
            template = gr.Code(template0, language="jinja2", interactive=True, lines=10, max_lines=24,
                               label="Template (Jinja, edit live)", elem_id=f"template-{n}")
            with gr.Row():
                save_name = gr.Textbox("", label="Save as…", placeholder="my-wrapper", scale=3,
                                       info="Stores your edited wrapper in your user folder; built-ins stay as they are.")
                save = gr.Button("Save as…", size="sm", scale=1)
            save_status = gr.Markdown("")
        with gr.Accordion("Sampling parameters", open=False):
            preset = gr.Dropdown(presets.names(), value=startup.preset, label="Preset", elem_id=f"preset-{n}",
                                 info="Fills the values below; change any of them after.")
            with gr.Row():
                preset_name = gr.Textbox("", label="Preset name", placeholder="my-preset", scale=2,
                                         info="Save stores the values below under this name (your folder).")
                preset_save = gr.Button("Save preset", size="sm", scale=1)
            with gr.Row():
                preset_delete = gr.Button("Delete preset", size="sm")
                preset_restore = gr.Button("Restore preset", size="sm")
                neutralize = gr.Button("Neutralize samplers", size="sm")
            preset_status = gr.Markdown("")
            values = [gr.Slider(lo, hi, value=preset0[k], step=step, label=label, info=info, elem_id=f"{key.replace('_', '-')}-{n}")
                      for k, (key, (label, lo, hi, step, info)) in enumerate(CONTROLS.items())]
            values.append(gr.Number(preset0[len(CONTROLS)], label="Seed", precision=0, elem_id=f"seed-{n}",
                                    info="-1 picks a random seed; the one used is shown in the request."))
            stop = gr.Textbox(preset0[-2], label="Stop strings (JSON list)", placeholder="empty: the wrapper's own stop strings",
                              info='e.g. ["\\nUSER:", "<|im_end|>"]. Empty uses the wrapper\'s list.', elem_id=f"stop-{n}")
            grammar = gr.Code(preset0[-1], language=None, lines=3, label="GBNF grammar (sent to backends that accept one)")
            json_schema = gr.Code("", language="json", lines=3, label="JSON schema the output must follow (sent to backends that accept one)")
            extra = gr.Code("", language="json", lines=2, label="Extra request fields (JSON object merged into the request)")
        prompt = gr.Textbox(label="Prompt sent (exact)", lines=10, max_lines=30, interactive=False, buttons=["copy"],
                            elem_id=f"prompt-{n}", elem_classes=["mono"])
        with gr.Row():
            prompt_status = gr.Markdown("", elem_id=f"prompt-status-{n}")
            show_ws = gr.Checkbox(False, label="Mark whitespace", scale=0, info="Spaces as ·, tabs as →, line ends as ↵.")
        with gr.Row():
            generate = gr.Button("Generate", variant="primary", elem_id=f"generate-{n}")
            stop_btn = gr.Button("Stop", variant="stop", elem_id=f"stop-btn-{n}")
        run_status = gr.Markdown("", elem_id=f"run-status-{n}")
        raw = gr.Textbox(label="Raw output (streamed)", lines=6, max_lines=20, interactive=False, buttons=["copy"],
                         elem_id=f"raw-{n}", elem_classes=["mono"])
        parsed = gr.JSON(label="Parsed call", open=True, elem_id=f"parsed-{n}")
        with gr.Accordion("Request sent", open=False):
            request = gr.JSON(label="Exact request (secrets masked)", open=True, elem_id=f"request-{n}")
            response = gr.JSON(label="The server's last raw response (or final stream event)", open=False, elem_id=f"response-{n}")
        with gr.Accordion("Tokens", open=False):
            heatmap = gr.HighlightedText(label="Output tokens (redder = less likely; click one for its alternatives)",
                                         show_legend=False, combine_adjacent=False, elem_id=f"heatmap-{n}")
            alternatives_caption = gr.Markdown("Set Token probabilities above 0 under Backend, then generate.")
            alternatives = gr.Dataframe(headers=["token", "logprob", "p", "chosen"], interactive=False, elem_id=f"alternatives-{n}")
            tokenize = gr.Button("Tokenize the prompt", size="sm", elem_id=f"tokenize-{n}")
            tokens_summary = gr.Markdown("", elem_id=f"tokens-summary-{n}")
            prompt_token_table = gr.Dataframe(headers=["#", "id", "piece"], interactive=False, max_height=300, elem_id=f"prompt-tokens-{n}")
        with gr.Accordion("Same seed, N runs", open=False):
            with gr.Row():
                runs = gr.Number(5, label="Runs", minimum=1, maximum=100, precision=0, info="How many generations.")
                expected = gr.Textbox("", label="Expected function", placeholder="send_message",
                                      info="Counted when the first call has this name.")
            stability = gr.Button("Run N times", size="sm", elem_id=f"stability-{n}")
            stability_status = gr.Markdown("", elem_id=f"stability-status-{n}")
        last_run = gr.State(None)
    column_visible = gr.State(visible)
    config = [backend_type, url, model, api_key, timeout, extra, wrapper, template, preset, *values, stop, grammar, probabilities,
              json_schema]
    return Panel(i, column, config, backend_type, url, model, api_key, timeout, check, backend_status, wrapper, wrapper_info,
                 template, save_name, save, save_status, preset, preset_name, preset_save, preset_delete, preset_restore,
                 neutralize, preset_status, values, stop, grammar, extra, prompt, prompt_status, show_ws, generate, stop_btn,
                 run_status, raw, parsed, request, last_run, runs, expected, stability, stability_status, column_visible,
                 detect, fetch_template, server_template, use_server_template, heatmap, alternatives_caption, alternatives,
                 tokenize, tokens_summary, prompt_token_table, response)


def _private(*progress_on, **kw) -> dict:
    """Page-only events (not in the API). `progress_on`: the components that show the event's progress, when
    not all its outputs: Gradio's page refreshes the loading status of every component that has ever shown
    progress on each streamed message, and of every child of a layout block, so keep that set small."""
    return {"api_visibility": "private", **({"show_progress_on": list(progress_on)} if progress_on else {}), **kw}


def _wire_panel(p: Panel, conversation, variables, now, history_table, run_all) -> list:
    """Wire one panel's events; returns the generation events (for Stop all)."""
    preview_inputs = [p.wrapper, p.template, conversation, variables, now, p.show_ws]

    def show_prompt(wrapper_name, template, conv, var, day, marked):
        text, status = panels.preview(wrapper_name, template, conv, var, day)
        return (panels.mark_whitespace(text) if marked else text), status

    for trigger in (p.template.input, conversation.change, variables.input, now.input, p.show_ws.change):
        trigger(show_prompt, preview_inputs, [p.prompt, p.prompt_status], queue=False, trigger_mode="always_last",
                show_progress="hidden", **_private())
    # .input (the user picked it), not .change: a restored session sets wrapper and template together
    def picked_wrapper(name):
        template, info = panels.wrapper_view(name)
        editable = wrappers.get(name).editable  # a Python plugin shows its source read-only
        return gr.Code(template, interactive=editable, language="jinja2" if editable else "python"), info

    p.wrapper.input(picked_wrapper, [p.wrapper], [p.template, p.wrapper_info], queue=False, **_private()).then(
        show_prompt, preview_inputs, [p.prompt, p.prompt_status], queue=False, show_progress="hidden", **_private())

    def saved(base, name, text):
        names, selected, status = panels.save_wrapper(base, name, text)
        return gr.Dropdown(choices=names, value=selected), status

    p.save.click(saved, [p.wrapper, p.save_name, p.template], [p.wrapper, p.save_status], **_private())

    preset_outputs = [*p.values, p.stop, p.grammar]
    p.preset.change(panels.preset_values, [p.preset], preset_outputs, queue=False, **_private(p.preset_status))
    p.preset_restore.click(panels.preset_values, [p.preset], preset_outputs, queue=False, **_private(p.preset_status))
    p.neutralize.click(panels.neutral_values, None, p.values, queue=False, **_private(p.preset_status))

    def preset_saved(name, *rest):
        *vals, stop_json, grammar = rest
        names, selected, status = panels.save_preset(name, vals, stop_json, grammar)
        return gr.Dropdown(choices=names, value=selected or gr.skip()), status

    p.preset_save.click(preset_saved, [p.preset_name, *p.values, p.stop, p.grammar], [p.preset, p.preset_status], **_private())

    def preset_deleted(name):
        names, selected, status = panels.delete_preset(name)
        return gr.Dropdown(choices=names, value=selected), status

    p.preset_delete.click(preset_deleted, [p.preset], [p.preset, p.preset_status], **_private())

    def picked_type(kind, model):
        url, status, names, value = panels.picked_backend(kind, model)
        return gr.Textbox(placeholder=url), status, gr.Dropdown(choices=names, value=value)

    p.backend_type.input(picked_type, [p.backend_type, p.model], [p.url, p.backend_status, p.model], queue=False,
                         **_private())

    def checked(kind, url, model, key, secs):
        status, names = panels.check_backend(kind, url, model, key, secs)
        value = model or (names[0] if len(names) == 1 else None)
        return status, gr.Dropdown(choices=names, value=value)

    p.check.click(checked, [p.backend_type, p.url, p.model, p.api_key, p.timeout], [p.backend_status, p.model],
                  show_progress="minimal", **_private())

    def run(request: gr.Request, visible, conv, var, day, *controls):
        if not visible:  # Run all skips hidden panels
            return
        config = panels.PanelConfig.from_controls(list(controls))
        stop = _run_stops[(request.session_hash, p.index)] = threading.Event()
        cleared = False  # the last run's parse and request go on the first update; later ones leave them alone
        for raw, parsed, sent, status, record in panels.run_generation(config, conv, var, day, stop, STREAM_UPDATE_SECONDS):
            if record is not None:
                record = {**record, "panel": p.index + 1}
                _history.add(request.session_hash, record)
                yield raw, parsed, sent, status, record, panels.token_heatmap(record.get("tokens")), record.get("response")
            elif cleared:
                yield raw, gr.skip(), gr.skip(), status, gr.skip(), gr.skip(), gr.skip()
            else:
                cleared = True
                yield raw, parsed, sent, status, gr.skip(), gr.skip(), gr.skip()

    def refresh_history(request: gr.Request):
        # a plain event, not the streams: concurrent streams send diffs that must not share an output
        return _history_table(_history.runs(request.session_hash))

    run_inputs = [p.column_visible, conversation, variables, now, *p.config]
    run_outputs = [p.raw, p.parsed, p.request, p.run_status, p.last_run, p.heatmap, p.response]
    own = p.generate.click(run, run_inputs, run_outputs, concurrency_limit=None, **_private(p.raw))
    together = run_all.click(run, run_inputs, run_outputs, concurrency_limit=None, **_private(p.raw))
    for event in (own, together):
        event.then(refresh_history, None, [history_table], queue=False, show_progress="hidden", **_private())
    def stopped(request: gr.Request):
        # the generator sees the flag at its next chunk and closes the backend stream itself; cancelling the
        # events too covers a generator that is waiting for its first chunk
        flag = _run_stops.get((request.session_hash, p.index))
        if flag is not None:
            flag.set()
        return panels.STOPPED

    p.stop_btn.click(stopped, None, [p.run_status], cancels=[own, together], queue=False, **_private())

    def alternatives_for(record, event: gr.SelectData):
        return panels.token_alternatives((record or {}).get("tokens"), event.index if isinstance(event.index, int) else event.index[0])

    p.heatmap.select(alternatives_for, [p.last_run], [p.alternatives, p.alternatives_caption], **_private())

    def tokenized(conv, var, day, *controls):
        return panels.prompt_tokens(panels.PanelConfig.from_controls(list(controls)), conv, var, day)

    p.tokenize.click(tokenized, [conversation, variables, now, *p.config], [p.prompt_token_table, p.tokens_summary],
                     show_progress="minimal", **_private())

    def detected(url):
        kind, status = panels.detect_backend(url)
        return (kind or gr.skip()), status

    p.detect.click(detected, [p.url], [p.backend_type, p.backend_status], show_progress="minimal", **_private())

    def fetched(*controls):
        template, status = panels.server_template(panels.PanelConfig.from_controls(list(controls)))
        return gr.Code(template, visible=bool(template)), gr.Button(visible=bool(template)), status

    p.fetch_template.click(fetched, p.config, [p.server_template, p.use_server_template, p.backend_status],
                           show_progress="minimal", **_private())

    def adopted(template, kind):
        _, parser, _, status = panels.load_model_template(None, template, f"{kind}-server-template")
        names = wrappers.names()
        return status + (f" Suggested parser: {parser}" if parser else ""), gr.Dropdown(choices=names)

    p.use_server_template.click(adopted, [p.server_template, p.backend_type], [p.backend_status, p.wrapper], **_private())

    def stable(runs, expected, conv, var, day, *controls):
        config = panels.PanelConfig.from_controls(list(controls))
        try:
            request = config.request(conv, var, day)
            for tally in turns.stability(request, runs, expected):
                yield _tally_text(tally, int(runs), expected)
        except Exception as e:  # noqa: BLE001 — any failure ends the loop with its sentence
            yield f"❌ {e}"

    p.stability.click(stable, [p.runs, p.expected, conversation, variables, now, *p.config], [p.stability_status],
                      concurrency_limit=None, **_private())
    return [own, together]


def _tally_text(t: dict, total: int, expected: str) -> str:
    calls = ", ".join(f"{k} ×{v}" for k, v in t["calls"].items()) or "none"
    exp = f", **{t['expected']}** called `{expected}`" if expected else ""
    return (f"{t['runs']}/{total} runs: **{t['parsed']}** parsed{exp}; {t['distinct_outputs']} distinct output(s). "
            f"Calls: {calls}.")


_history = turns.RunHistory()
_score_stops: dict[str, threading.Event] = {}  # session -> the Stop of its scoreboard run
_run_stops: dict[tuple[str, int], threading.Event] = {}  # (session, panel) -> the Stop of its generation


def _styled_matrix(rows: list[list]):
    """The matrix with its percentage columns colour-scaled from red (0 %) to green (100 %)."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=scoring_tab.MATRIX_HEADERS)

    def shade(value):
        if not isinstance(value, (int, float)) or pd.isna(value):
            return ""
        hue = int(120 * value / 100)
        return f"background-color: hsla({hue}, 70%, 50%, 0.35)"

    return frame.style.map(shade, subset=["parsed %", "valid %", "expected %"])


def _history_table(runs: list[dict]) -> dict:
    return {"headers": turns.HISTORY_HEADERS, "data": turns.history_rows(runs) or [[""] * len(turns.HISTORY_HEADERS)]}


def build_page(startup: StartupConfig) -> gr.Blocks:
    example = EXAMPLE_PATH.read_text(encoding="utf-8")
    second = SECOND_WRAPPER if SECOND_WRAPPER in wrappers.names() else startup.wrapper
    with gr.Blocks(title="Prompt Format Playground", analytics_enabled=False) as demo:
        gr.Markdown("## Prompt Format Playground\nOne conversation, side-by-side configurations: the exact prompt each "
                    "wrapper sends, the raw output and the parsed call. **Ctrl+Enter** runs every panel.")
        with gr.Row():
            run_all = gr.Button("Run all panels", variant="primary", elem_id="run-all", scale=2, size="md")
            stop_all = gr.Button("Stop all", variant="stop", scale=1, elem_id="stop-all", size="md")
            add_panel = gr.Button("Add panel", scale=1, elem_id="add-panel", size="md")
            remove_panel = gr.Button("Remove last panel", scale=1, elem_id="remove-panel", size="md")
        panel_count = gr.State(START_PANELS)
        with gr.Tabs():
            with gr.Tab("Workbench", id="workbench"):
                with gr.Accordion("Conversation", open=True):
                    with gr.Row(equal_height=False):
                        with gr.Column(scale=1, min_width=360):
                            chat = gr.Chatbot(turns.chat_view(example, startup.wrapper), label="Chat view", height=300,
                                              elem_id="chat", buttons=["copy"])
                        with gr.Column(scale=1, min_width=360):
                            conversation = gr.Code(example, language="json", interactive=True, lines=10, max_lines=30,
                                                   label="Messages and functions (OpenAI shape, editable)", elem_id="conversation")
                            with gr.Row():
                                variables = gr.Code("", language="json", lines=1, label='Template variables, e.g. {"first_message": true}')
                                now = gr.Textbox("", label="Date the template sees", placeholder="2024-07-26",
                                                 info="ISO date for strftime_now; empty = today.")
                    with gr.Row(equal_height=False):
                        with gr.Column(min_width=260):
                            accept_from = gr.Dropdown([str(n) for n in range(1, MAX_PANELS + 1)], value="1", label="Accept from panel",
                                                      info="Appends that panel's parsed answer as the assistant's turn.")
                            accept = gr.Button("Accept answer", size="sm", elem_id="accept")
                        with gr.Column(min_width=260):
                            result = gr.Textbox("", label="Function result", lines=2, elem_id="function-result",
                                                info="What the called function returned; Canned fills MemGPT's usual reply.")
                            with gr.Row():
                                canned = gr.Button("Canned", size="sm")
                                add_result = gr.Button("Add result", size="sm", elem_id="add-result")
                        with gr.Column(min_width=260):
                            user_text = gr.Textbox("", label="User says", lines=2, elem_id="user-text",
                                                   info="Appended as the next user turn (MemGPT's envelope for MemGPT wrappers).")
                            send_user = gr.Button("Add user turn", size="sm", elem_id="add-user")
                    turn_status = gr.Markdown("", elem_id="turn-status")
                with gr.Row(equal_height=False):
                    all_panels = [_panel(i, startup, startup.wrapper if i == 0 else second, i < START_PANELS) for i in range(MAX_PANELS)]
            with gr.Tab("Compare prompts", id="compare"):
                with gr.Row():
                    diff_a = gr.Dropdown([str(n) for n in range(1, MAX_PANELS + 1)], value="1", label="Panel A")
                    diff_b = gr.Dropdown([str(n) for n in range(1, MAX_PANELS + 1)], value="2", label="Panel B")
                    diff_go = gr.Button("Compare", elem_id="compare-go")
                diff_summary = gr.Markdown("", elem_id="diff-summary")
                diff_view = gr.HighlightedText(label="Prompt A → B (- only in A, + only in B)", combine_adjacent=True, show_legend=True,
                                               color_map={"-": "red", "+": "green"}, elem_id="diff-view")
            with gr.Tab("Model template", id="model-template"):
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
            with gr.Tab("Scoreboard", id="scoreboard"):
                gr.Markdown("Which wrapper, preset and grammar work with your model? Runs every case of a suite with "
                            "panel 1's backend, for each wrapper × preset (× grammar off/on), and counts how many answers "
                            "parsed, were schema-valid and called what the case expects.")
                with gr.Row():
                    score_suite = gr.Dropdown(scoreboard.suite_names(), value="memgpt", label="Suite",
                                              info="memgpt: MemGPT's functions; tools: weather/calculator/search calls; "
                                                   "bfcl:…: BFCL's categories (with bfcl-eval installed).")
                    score_wrappers = gr.Dropdown(wrappers.names(), value=["chatml", "airoboros-l2-70b-2.1"], multiselect=True,
                                                 label="Wrappers", info="Each becomes a row of the matrix.", elem_id="score-wrappers")
                    score_presets = gr.Dropdown(presets.names(), value=["deterministic"], multiselect=True, label="Presets",
                                                info="Each becomes a column group.", elem_id="score-presets")
                with gr.Row():
                    score_grammar = gr.Radio(["off", "on", "both"], value="off", label="Grammar",
                                             info="on: a GBNF grammar derived from the functions lets the model write only well-formed calls.")
                    score_repeat = gr.Number(1, label="Repeat", minimum=1, maximum=20, precision=0, info="Runs per case.")
                    score_concurrency = gr.Number(0, label="Concurrency", minimum=0, maximum=16, precision=0,
                                                  info="Requests at once per server; 0: the server's slots (/props).")
                    score_tokens = gr.Number(96, label="Max new tokens", minimum=8, maximum=1024, precision=0,
                                             info="Per answer; calls are short.")
                # --- scoreboard pool (scoreboard helper): the servers the runs are spread over ---
                score_pool = gr.Textbox("", label="Server pool", lines=2, elem_id="score-pool",
                                        placeholder="one URL per line; empty: panel 1's backend URL",
                                        info="Runs are spread over these servers (same backend type); a failing one leaves the pool.")
                # --- end scoreboard pool ---
                with gr.Row():
                    score_go = gr.Button("Run scoreboard", variant="primary", elem_id="score-run")
                    score_stop = gr.Button("Stop", variant="stop", elem_id="score-stop")
                score_status = gr.Markdown("", elem_id="score-status")
                score_matrix = gr.Dataframe(headers=scoring_tab.MATRIX_HEADERS, interactive=False, elem_id="score-matrix")
                score_files = gr.File(label="Results (JSON and CSV)", file_count="multiple", interactive=False)
                score_caption = gr.Markdown("")
                score_runs = gr.JSON(label="The cell's runs", open=False)
                score_board = gr.State(None)
            with gr.Tab("History", id="history"):
                history_table = gr.Dataframe(_history_table([]), interactive=False, elem_id="history-table")
                with gr.Row():
                    reopen_index = gr.Number(1, label="Run #", precision=0, minimum=1)
                    reopen_into = gr.Dropdown([str(n) for n in range(1, MAX_PANELS + 1)], value="1", label="Open in panel")
                    reopen = gr.Button("Reopen run", elem_id="reopen")
                reopen_status = gr.Markdown("")
            with gr.Tab("Export", id="export"):
                with gr.Row():
                    export_from = gr.Dropdown([str(n) for n in range(1, MAX_PANELS + 1)], value="1", label="Panel")
                    export_go = gr.Button("Export", elem_id="export-go")
                export_status = gr.Markdown("")
                export_curl = gr.Code(label="The last request as curl", language="shell", elem_id="export-curl")
                export_python = gr.Code(label="The last request as Python (requests)", language="python", elem_id="export-python")
                export_yaml = gr.Code(label="The wrapper with your edits, as a YAML file to drop into another user's folder",
                                      language="yaml", elem_id="export-yaml")
            with gr.Tab("Session", id="session"):
                gr.Markdown("Save the whole workbench (conversation, panels, templates, parameters; never API keys) as one "
                            "JSON file, or load one. The page also keeps it in this browser across reloads.")
                with gr.Row():
                    session_save = gr.Button("Save session", elem_id="session-save")
                    session_file = gr.File(label="Session file", interactive=False, elem_id="session-file")
                    session_upload = gr.UploadButton("Load session…", file_types=[".json"], elem_id="session-load")
                session_status = gr.Markdown("", elem_id="session-status")
            traffic_tab.build(conversation, all_panels[0].wrapper, all_panels[0].template)
        stored = gr.BrowserState(None, storage_key="prompt-format-playground-session")

        events = []
        for p in all_panels:
            events += _wire_panel(p, conversation, variables, now, history_table, run_all)
        def stopped_all(request: gr.Request):
            for (session, _), flag in list(_run_stops.items()):
                if session == request.session_hash:
                    flag.set()
            return [panels.STOPPED] * MAX_PANELS

        stop_all.click(stopped_all, None, [p.run_status for p in all_panels], cancels=events, queue=False, **_private())

        def show_panels(count):
            return [count] + [gr.Column(visible=i < count) for i in range(MAX_PANELS)] + [i < count for i in range(MAX_PANELS)]

        visibility_outputs = [panel_count] + [p.column for p in all_panels] + [p.column_visible for p in all_panels]
        add_panel.click(lambda c: show_panels(min(MAX_PANELS, c + 1)), [panel_count], visibility_outputs, queue=False,
                        show_progress="hidden", **_private(add_panel))
        remove_panel.click(lambda c: show_panels(max(1, c - 1)), [panel_count], visibility_outputs, queue=False,
                           show_progress="hidden", **_private(remove_panel))

        conversation.change(lambda conv, w: turns.chat_view(conv, w), [conversation, all_panels[0].wrapper], [chat],
                            queue=False, show_progress="hidden", **_private())

        def turn(fn, *args):
            try:
                return fn(*args), "✅ Added to the conversation."
            except ConversationError as e:
                return gr.skip(), f"❌ {e}"

        last_runs = [p.last_run for p in all_panels]
        panel_wrappers = [p.wrapper for p in all_panels]

        def accepted(which, conv, *rest):
            runs, names = rest[:MAX_PANELS], rest[MAX_PANELS:]
            i = int(which) - 1
            record = runs[i]
            record = record or {}
            return turn(turns.accept_call, conv, record.get("parsed"), names[i], record.get("raw", ""))

        accept.click(accepted, [accept_from, conversation, *last_runs, *panel_wrappers], [conversation, turn_status], **_private())

        def canned_for(conv):
            pending = turns.pending_calls(conv)
            return turns.canned_result(pending[0]) if pending else gr.skip()

        canned.click(canned_for, [conversation], [result], queue=False, **_private())
        add_result.click(lambda conv, text, w: turn(turns.add_function_result, conv, text, w),
                         [conversation, result, all_panels[0].wrapper], [conversation, turn_status], **_private())
        send_user.click(lambda conv, text, w: turn(turns.add_user_message, conv, text, w),
                        [conversation, user_text, all_panels[0].wrapper], [conversation, turn_status], **_private())

        def loaded_template(path, pasted, name):
            text, parser, notes, status = panels.load_model_template(path, pasted, name)
            names = wrappers.names()
            return [text, parser, notes, status] + [gr.Dropdown(choices=names) for _ in all_panels]

        template_load.click(loaded_template, [template_file, template_paste, template_name],
                            [template_view, template_parser, template_notes, template_status] + [p.wrapper for p in all_panels],
                            show_progress="minimal", **_private())

        def scored(request: gr.Request, suite, names, preset_names, grammar, repeat, concurrency, tokens, pool, *controls):
            stop = _score_stops[request.session_hash] = threading.Event()
            config = panels.PanelConfig.from_controls(list(controls))
            for status, rows, board, files in scoring_tab.run(config, suite, names, preset_names, grammar, repeat, concurrency,
                                                          tokens, stop, pool):
                if board is None:
                    yield status, gr.skip(), gr.skip(), gr.skip()
                else:
                    yield status, _styled_matrix(rows), board, files

        score_go.click(scored, [score_suite, score_wrappers, score_presets, score_grammar, score_repeat, score_concurrency,
                                score_tokens, score_pool, *all_panels[0].config], [score_status, score_matrix, score_board, score_files],
                       concurrency_limit=None, **_private())

        def stopped_scoring(request: gr.Request):
            if request.session_hash in _score_stops:
                _score_stops[request.session_hash].set()
            return "⏹ Stopping after the runs in flight; the finished ones are kept…"

        score_stop.click(stopped_scoring, None, [score_status], queue=False, **_private())

        def opened_cell(board, event: gr.SelectData):
            runs, caption = scoring_tab.cell_runs(board, event.index[0])
            first = runs[0] if runs else {}
            return (caption, runs, first.get("prompt", gr.skip()), first.get("raw", gr.skip()), first.get("parsed", gr.skip()),
                    first.get("request", gr.skip()))

        score_matrix.select(opened_cell, [score_board], [score_caption, score_runs, all_panels[0].prompt, all_panels[0].raw,
                                                          all_panels[0].parsed, all_panels[0].request], **_private())

        prompts = [p.prompt for p in all_panels]

        def compared(a, b, *texts):
            return panels.prompt_diff(texts[int(a) - 1], texts[int(b) - 1])

        diff_go.click(compared, [diff_a, diff_b, *prompts], [diff_view, diff_summary], **_private())

        def reopened(index, into, request: gr.Request):
            past = _history.runs(request.session_hash)
            i = int(index or 0) - 1
            if not 0 <= i < len(past):
                return [gr.skip()] * (4 * MAX_PANELS) + [f"❌ There is no run #{index} in this session's history."]
            r, target = past[i], int(into) - 1
            out = []
            for n in range(MAX_PANELS):
                out += [r["prompt"], r["raw"], r["parsed"], r["request"]] if n == target else [gr.skip()] * 4
            return out + [f"✅ Run #{index} reopened in panel {into}."]

        reopen.click(reopened, [reopen_index, reopen_into],
                     [c for p in all_panels for c in (p.prompt, p.raw, p.parsed, p.request)] + [reopen_status],
                     **_private(reopen_status))

        def exported(which, *rest):
            runs, rest = rest[:MAX_PANELS], rest[MAX_PANELS:]
            names, templates = rest[:MAX_PANELS], rest[MAX_PANELS:]
            i = int(which) - 1
            return panels.export_panel(runs[i], names[i], templates[i])

        export_go.click(exported, [export_from, *last_runs, *panel_wrappers, *[p.template for p in all_panels]],
                        [export_curl, export_python, export_yaml, export_status], **_private())

        snapshot_inputs = [conversation, variables, now, panel_count] + [c for p in all_panels for c in p.config]
        restore_outputs = [conversation, variables, now] + [c for p in all_panels for c in p.config]

        def snapshot(conv, var, day, count, *controls):
            return panels.session_state(conv, var, day, count, controls, len(all_panels[0].config))

        def saved_session(*values):
            state = snapshot(*values)
            path = tempfile.NamedTemporaryFile(prefix="playground-session-", suffix=".json", delete=False).name
            with open(path, "w", encoding="utf-8") as f:
                f.write(turns.session_file(state))
            return path, "✅ Session saved: download it above."

        session_save.click(saved_session, snapshot_inputs, [session_file, session_status], **_private())

        def restored(state, status=""):
            if not state:
                return [gr.skip()] * (len(restore_outputs) + 1 + 2 * MAX_PANELS + 1)
            values = panels.restore_controls(state, len(all_panels[0].config))
            count = int(state.get("panels", START_PANELS))
            return values + show_panels(count) + [status]

        def loaded_file(file):
            try:
                with open(file, encoding="utf-8") as f:
                    state = turns.load_session(f.read())
            except (OSError, ConversationError) as e:
                return [gr.skip()] * (len(restore_outputs) + 1 + 2 * MAX_PANELS) + [f"❌ {e}"]
            return restored(state, "✅ Session loaded.")

        prompt_inputs = [conversation, variables, now] + [c for p in all_panels for c in (p.wrapper, p.template, p.show_ws)]
        prompt_outputs = [c for p in all_panels for c in (p.prompt, p.prompt_status, p.wrapper_info)]

        def all_prompts(conv, var, day, *per_panel):
            out = []
            for k in range(0, len(per_panel), 3):
                name, template, marked = per_panel[k:k + 3]
                text, status = panels.preview(name, template, conv, var, day)
                out += [panels.mark_whitespace(text) if marked else text, status, panels.wrapper_info(name)]
            return out

        prompt_statuses = [p.prompt_status for p in all_panels]
        session_upload.upload(loaded_file, [session_upload], restore_outputs + visibility_outputs + [session_status],
                              **_private(session_status)).then(all_prompts, prompt_inputs, prompt_outputs,
                                                               **_private(*prompt_statuses))
        demo.load(lambda s: restored(s), [stored], restore_outputs + visibility_outputs + [session_status],
                  **_private(session_status)).then(all_prompts, prompt_inputs, prompt_outputs, **_private(*prompt_statuses))
        # the browser copy: after a run (not on the click, which would delay the run's first chunk), on every
        # conversation change and on Save
        for event in events:
            event.then(snapshot, snapshot_inputs, [stored], queue=False, show_progress="hidden", **_private())
        gr.on([conversation.change, session_save.click], snapshot, snapshot_inputs, [stored], queue=False,
              show_progress="hidden", **_private())
        demo.load(None, js=CTRL_ENTER)
        def forget(request: gr.Request):
            _history.forget(request.session_hash)

        demo.unload(forget)
    return demo
