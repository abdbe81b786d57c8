"""One panel of the workbench: its layout (backend, wrapper, sampling, prompt, output, tokens) and its
events. Its controls are built under the names of `workbench.panels.CONTROL_NAMES`; every handler
gets them back as {name: value}."""

from __future__ import annotations

import gradio as gr

import backends
import presets
import wrappers
from flow.startup import StartupConfig
from workbench import panels, turns
from workbench.sessions import Sessions

SLIDERS = {  # control name: (label, minimum, maximum, step, info)
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
PRESET_CONTROLS = [*panels.SLIDER_KEYS, "stop_json", "grammar"]  # what panels.preset_values fills, in its order

# A browser pays for every streamed message; tokens that arrive faster than this are sent together.
STREAM_UPDATE_SECONDS = 0.1


def private(*progress_on, **kw) -> dict:
    """Page-only events (not in the API). `progress_on`: the components that show the event's progress, when
    not all its outputs: Gradio's page refreshes the loading status of every component that has ever shown
    progress on each streamed message, and of every child of a layout block, so keep that set small."""
    return {"api_visibility": "private", **({"show_progress_on": list(progress_on)} if progress_on else {}), **kw}


def named(values) -> dict:
    """A panel's control values, as the events pass them (CONTROL_NAMES order), by name."""
    return dict(zip(panels.CONTROL_NAMES, values, strict=True))


class Panel:
    """The components of one panel; `controls` maps each of CONTROL_NAMES to its component."""

    def __init__(self, index: int):
        self.index = index
        self.controls: dict[str, gr.components.Component] = {}

    @property
    def inputs(self) -> list:
        """The panel's controls as event inputs, in CONTROL_NAMES order (see `named`)."""
        return [self.controls[name] for name in panels.CONTROL_NAMES]


def build_panel(i: int, startup: StartupConfig, wrapper_name: str, visible: bool) -> Panel:
    p, n = Panel(i), i + 1
    c = p.controls
    template0, info0 = panels.wrapper_view(wrapper_name)
    preset0 = dict(zip(PRESET_CONTROLS, panels.preset_values(startup.preset), strict=True))
    url_hint, ignored0 = panels.backend_defaults(startup.backend_type)
    with gr.Column(visible=visible, min_width=380, elem_id=f"panel-{n}") as p.column:
        gr.Markdown(f"### Panel {n}")
        with gr.Accordion("Backend", open=False):
            c["backend_type"] = gr.Dropdown(backends.names(), value=startup.backend_type, label="Type", elem_id=f"backend-type-{n}",
                                            info="embedded runs llama.cpp in this app; the others talk to your server.")
            with gr.Row():
                c["url"] = gr.Textbox(startup.backend_url, label="URL", placeholder=url_hint, elem_id=f"backend-url-{n}", scale=4,
                                      info="The server's address as it prints it, e.g. http://127.0.0.1:8080.")
                p.detect = gr.Button("Detect type", size="sm", scale=1, elem_id=f"detect-{n}")
            c["model"] = gr.Dropdown(panels.model_choices(startup.backend_type), value=startup.backend_model or None,
                                     allow_custom_value=True, label="Model",
                                     info="Filled from the server's list by Check; for embedded, the built-in model, the "
                                          "start-up --model or a .gguf file of the models folder.")
            with gr.Row():
                c["api_key"] = gr.Textbox("", type="password", label="API key", info="Sent as a bearer token; never shown or saved.")
                c["timeout"] = gr.Number(120, label="Timeout (s)", minimum=1, maximum=3600, info="How long to wait for the server's next byte.")
            c["probabilities"] = gr.Number(0, label="Token probabilities", minimum=0, maximum=20, precision=0, elem_id=f"probabilities-{n}",
                                           info="Alternatives to ask for per output token (0 = off); shown under Tokens.")
            with gr.Row():
                p.check = gr.Button("Check connection", size="sm")
                p.fetch_template = gr.Button("Server's chat template", size="sm", elem_id=f"server-template-{n}")
            p.backend_status = gr.Markdown(ignored0, elem_id=f"backend-status-{n}")
            p.server_template = gr.Code("", language="jinja2", interactive=False, visible=False, lines=6, max_lines=16,
                                        label="The loaded model's own chat template", elem_id=f"server-template-view-{n}")
            p.use_server_template = gr.Button("Load this template as a wrapper", size="sm", visible=False)
        with gr.Accordion("Wrapper", open=True):
            c["wrapper"] = gr.Dropdown(wrappers.names(), value=wrapper_name, label="Wrapper", elem_id=f"wrapper-{n}",
                                       info="The prompt format: a Jinja template plus the parser for the model's answer.")
            p.wrapper_info = gr.Markdown(info0)
            c["template"] = gr.Code(template0, language="jinja2", interactive=True, lines=10, max_lines=24,
                                    label="Template (Jinja, edit live)", elem_id=f"template-{n}")
            with gr.Row():
                p.save_name = gr.Textbox("", label="Save as…", placeholder="my-wrapper", scale=3,
                                         info="Stores your edited wrapper in your user folder; built-ins stay as they are.")
                p.save = gr.Button("Save as…", size="sm", scale=1)
            p.save_status = gr.Markdown("")
        with gr.Accordion("Sampling parameters", open=False):
            c["preset"] = gr.Dropdown(presets.names(), value=startup.preset, label="Preset", elem_id=f"preset-{n}",
                                      info="Fills the values below; change any of them after.")
            with gr.Row():
                p.preset_name = gr.Textbox("", label="Preset name", placeholder="my-preset", scale=2,
                                           info="Save stores the values below under this name (your folder).")
                p.preset_save = gr.Button("Save preset", size="sm", scale=1)
            with gr.Row():
                p.preset_delete = gr.Button("Delete preset", size="sm")
                p.preset_restore = gr.Button("Restore preset", size="sm")
                p.neutralize = gr.Button("Neutralize samplers", size="sm")
            p.preset_status = gr.Markdown("")
            for key, (label, lo, hi, step, info) in SLIDERS.items():
                c[key] = gr.Slider(lo, hi, value=preset0[key], step=step, label=label, info=info, elem_id=f"{key.replace('_', '-')}-{n}")
            c["seed"] = gr.Number(preset0["seed"], label="Seed", precision=0, elem_id=f"seed-{n}",
                                  info="-1 picks a random seed; the one used is shown in the request.")
            c["stop_json"] = gr.Textbox(preset0["stop_json"], label="Stop strings (JSON list)", elem_id=f"stop-{n}",
                                        placeholder="empty: the wrapper's own stop strings",
                                        info='e.g. ["\\nUSER:", "<|im_end|>"]. Empty uses the wrapper\'s list.')
            c["grammar"] = gr.Code(preset0["grammar"], language=None, lines=3, label="GBNF grammar (sent to backends that accept one)")
            c["json_schema"] = gr.Code("", language="json", lines=3,
                                       label="JSON schema the output must follow (sent to backends that accept one)")
            c["extra_json"] = gr.Code("", language="json", lines=2, label="Extra request fields (JSON object merged into the request)")
        p.prompt = gr.Textbox(label="Prompt sent (exact)", lines=10, max_lines=30, interactive=False, buttons=["copy"],
                              elem_id=f"prompt-{n}", elem_classes=["mono"])
        with gr.Row():
            p.prompt_status = gr.Markdown("", elem_id=f"prompt-status-{n}")
            p.show_ws = gr.Checkbox(False, label="Mark whitespace", scale=0, info="Spaces as ·, tabs as →, line ends as ↵.")
        with gr.Row():
            p.generate = gr.Button("Generate", variant="primary", elem_id=f"generate-{n}")
            p.stop_btn = gr.Button("Stop", variant="stop", elem_id=f"stop-btn-{n}")
        p.run_status = gr.Markdown("", elem_id=f"run-status-{n}")
        p.raw = gr.Textbox(label="Raw output (streamed)", lines=6, max_lines=20, interactive=False, buttons=["copy"],
                           elem_id=f"raw-{n}", elem_classes=["mono"])
        p.parsed = gr.JSON(label="Parsed call", open=True, elem_id=f"parsed-{n}")
        with gr.Accordion("Request sent", open=False):
            p.request = gr.JSON(label="Exact request (secrets masked)", open=True, elem_id=f"request-{n}")
            p.response = gr.JSON(label="The server's last raw response (or final stream event)", open=False, elem_id=f"response-{n}")
        with gr.Accordion("Tokens", open=False):
            p.heatmap = gr.HighlightedText(label="Output tokens (redder = less likely; click one for its alternatives)",
                                           show_legend=False, combine_adjacent=False, elem_id=f"heatmap-{n}")
            p.alternatives_caption = gr.Markdown("Set Token probabilities above 0 under Backend, then generate.")
            p.alternatives = gr.Dataframe(headers=["token", "logprob", "p", "chosen"], interactive=False, elem_id=f"alternatives-{n}")
            p.tokenize = gr.Button("Tokenize the prompt", size="sm", elem_id=f"tokenize-{n}")
            p.tokens_summary = gr.Markdown("", elem_id=f"tokens-summary-{n}")
            p.prompt_token_table = gr.Dataframe(headers=["#", "id", "piece"], interactive=False, max_height=300,
                                                elem_id=f"prompt-tokens-{n}")
        with gr.Accordion("Same seed, N runs", open=False):
            with gr.Row():
                p.runs = gr.Number(5, label="Runs", minimum=1, maximum=100, precision=0, info="How many generations.")
                p.expected = gr.Textbox("", label="Expected function", placeholder="send_message",
                                        info="Counted when the first call has this name.")
            p.stability = gr.Button("Run N times", size="sm", elem_id=f"stability-{n}")
            p.stability_status = gr.Markdown("", elem_id=f"stability-status-{n}")
        p.last_run = gr.State(None)
    p.column_visible = gr.State(visible)  # whether Run all includes this panel
    assert set(c) == set(panels.CONTROL_NAMES), "every control of the schema has one component"
    return p


def show_prompt(wrapper_name, template, conv, var, day, marked):
    text, status = panels.preview(wrapper_name, template, conv, var, day)
    return (panels.mark_whitespace(text) if marked else text), status


def wire_panel(p: Panel, conversation, variables, now, history_table, run_all, sessions: Sessions) -> list:
    """Wire one panel's events; returns its generation events (for Stop all)."""
    c = p.controls
    preview_inputs = [c["wrapper"], c["template"], conversation, variables, now, p.show_ws]
    for trigger in (c["template"].input, conversation.change, variables.input, now.input, p.show_ws.change):
        trigger(show_prompt, preview_inputs, [p.prompt, p.prompt_status], queue=False, trigger_mode="always_last",
                show_progress="hidden", **private())

    # .input (the user picked it), not .change: a restored session sets wrapper and template together
    def picked_wrapper(name):
        template, info = panels.wrapper_view(name)
        editable = wrappers.get(name).editable  # a Python plugin shows its source read-only
        return gr.Code(template, interactive=editable, language="jinja2" if editable else "python"), info

    c["wrapper"].input(picked_wrapper, [c["wrapper"]], [c["template"], p.wrapper_info], queue=False, **private()).then(
        show_prompt, preview_inputs, [p.prompt, p.prompt_status], queue=False, show_progress="hidden", **private())

    def saved(base, name, text):
        names, selected, status = panels.save_wrapper(base, name, text)
        return gr.Dropdown(choices=names, value=selected), status

    p.save.click(saved, [c["wrapper"], p.save_name, c["template"]], [c["wrapper"], p.save_status], **private())
    _wire_presets(p)
    _wire_backend(p)

    def run(request: gr.Request, visible, conv, var, day, *controls):
        if not visible:  # Run all skips hidden panels
            return
        config = panels.PanelConfig.from_values(named(controls))
        stop = sessions.stop_flag(request.session_hash, f"panel {p.index}")
        cleared = False  # the last run's parse and request go on the first update; later ones leave them alone
        for raw, parsed, sent, status, record in panels.run_generation(config, conv, var, day, stop, STREAM_UPDATE_SECONDS):
            if record is not None:
                record = {**record, "panel": p.index + 1}
                sessions.add_run(request.session_hash, record)
                yield raw, parsed, sent, status, record, panels.token_heatmap(record.get("tokens")), record.get("response")
            elif cleared:
                yield raw, gr.skip(), gr.skip(), status, gr.skip(), gr.skip(), gr.skip()
            else:
                cleared = True
                yield raw, parsed, sent, status, gr.skip(), gr.skip(), gr.skip()

    def refresh_history(request: gr.Request):
        # a plain event, not the streams: concurrent streams send diffs that must not share an output
        return turns.history_table(sessions.runs(request.session_hash))

    run_inputs = [p.column_visible, conversation, variables, now, *p.inputs]
    run_outputs = [p.raw, p.parsed, p.request, p.run_status, p.last_run, p.heatmap, p.response]
    own = p.generate.click(run, run_inputs, run_outputs, concurrency_limit=None, **private(p.raw))
    together = run_all.click(run, run_inputs, run_outputs, concurrency_limit=None, **private(p.raw))
    for event in (own, together):
        event.then(refresh_history, None, [history_table], queue=False, show_progress="hidden", **private())

    def stopped(request: gr.Request):
        # the generator sees the flag at its next chunk and closes the backend stream itself; cancelling the
        # events too covers a generator that is waiting for its first chunk
        sessions.stop(request.session_hash, f"panel {p.index}")
        return panels.STOPPED

    p.stop_btn.click(stopped, None, [p.run_status], cancels=[own, together], queue=False, **private())

    def alternatives_for(record, event: gr.SelectData):
        index = event.index if isinstance(event.index, int) else event.index[0]
        return panels.token_alternatives((record or {}).get("tokens"), index)

    p.heatmap.select(alternatives_for, [p.last_run], [p.alternatives, p.alternatives_caption], **private())

    def tokenized(conv, var, day, *controls):
        return panels.prompt_tokens(panels.PanelConfig.from_values(named(controls)), conv, var, day)

    p.tokenize.click(tokenized, [conversation, variables, now, *p.inputs], [p.prompt_token_table, p.tokens_summary],
                     show_progress="minimal", **private())

    def stable(runs, expected, conv, var, day, *controls):
        config = panels.PanelConfig.from_values(named(controls))
        try:
            request = config.request(conv, var, day)
            for tally in turns.stability(request, runs, expected):
                yield turns.tally_text(tally, int(runs), expected)
        except Exception as e:  # noqa: BLE001 — any failure ends the loop with its sentence
            yield f"❌ {e}"

    p.stability.click(stable, [p.runs, p.expected, conversation, variables, now, *p.inputs], [p.stability_status],
                      concurrency_limit=None, **private())
    return [own, together]


def _wire_presets(p: Panel) -> None:
    c = p.controls
    preset_outputs = [c[name] for name in PRESET_CONTROLS]
    c["preset"].change(panels.preset_values, [c["preset"]], preset_outputs, queue=False, **private(p.preset_status))
    p.preset_restore.click(panels.preset_values, [c["preset"]], preset_outputs, queue=False, **private(p.preset_status))
    p.neutralize.click(panels.neutral_values, None, [c[name] for name in panels.SLIDER_KEYS], queue=False,
                       **private(p.preset_status))

    def preset_saved(name, *values):
        *sliders, stop_json, grammar = values
        names, selected, status = panels.save_preset(name, sliders, stop_json, grammar)
        return gr.Dropdown(choices=names, value=selected or gr.skip()), status

    p.preset_save.click(preset_saved, [p.preset_name, *preset_outputs], [c["preset"], p.preset_status], **private())

    def preset_deleted(name):
        names, selected, status = panels.delete_preset(name)
        return gr.Dropdown(choices=names, value=selected), status

    p.preset_delete.click(preset_deleted, [c["preset"]], [c["preset"], p.preset_status], **private())


def _wire_backend(p: Panel) -> None:
    c = p.controls

    def picked_type(kind, model):
        url, status, names, value = panels.picked_backend(kind, model)
        return gr.Textbox(placeholder=url), status, gr.Dropdown(choices=names, value=value)

    c["backend_type"].input(picked_type, [c["backend_type"], c["model"]], [c["url"], p.backend_status, c["model"]],
                            queue=False, **private())

    def checked(kind, url, model, key, secs):
        status, names = panels.check_backend(kind, url, model, key, secs)
        value = model or (names[0] if len(names) == 1 else None)
        return status, gr.Dropdown(choices=names, value=value)

    p.check.click(checked, [c["backend_type"], c["url"], c["model"], c["api_key"], c["timeout"]], [p.backend_status, c["model"]],
                  show_progress="minimal", **private())

    def detected(url):
        kind, status = panels.detect_backend(url)
        return (kind or gr.skip()), status

    p.detect.click(detected, [c["url"]], [c["backend_type"], p.backend_status], show_progress="minimal", **private())

    def fetched(*controls):
        template, status = panels.server_template(panels.PanelConfig.from_values(named(controls)))
        return gr.Code(template, visible=bool(template)), gr.Button(visible=bool(template)), status

    p.fetch_template.click(fetched, p.inputs, [p.server_template, p.use_server_template, p.backend_status],
                           show_progress="minimal", **private())

    def adopted(template, kind):
        _, parser, _, status = panels.load_model_template(None, template, f"{kind}-server-template")
        return status + (f" Suggested parser: {parser}" if parser else ""), gr.Dropdown(choices=wrappers.names())

    p.use_server_template.click(adopted, [p.server_template, c["backend_type"]], [p.backend_status, c["wrapper"]], **private())
