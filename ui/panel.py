"""One panel of the workbench: its layout (backend, wrapper, sampling, prompt, output, tokens) and its
events. Its controls are built under the names of `workbench.panels.CONTROL_NAMES`; every handler
gets them back as {name: value}.

What the browser pays for: on every message of every event from then on, Gradio's page looks up, in
the component tree (depth first), each component that has been an input of an event or has shown an
event's progress; and each output a message updates. So the tree stays small (what is rarely opened
is built when opened, `built_when_opened`); what events read and write but nobody sees comes first in
the tree (`Panel`); a panel's many controls reach the server packed into one value in the browser
(`with_settings`); events name the few components that show their progress (`private`); and a
streamed update carries only what changed."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from typing import Callable

import gradio as gr

import backends
import presets
import wrappers
from flow.admission import QUEUE, BackendSlots, Busy
from flow.startup import StartupConfig
from flow import call_start
from workbench import cross_checks, panels, turns
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

# A browser pays for every streamed message; tokens that arrive faster than this are sent together.
STREAM_UPDATE_SECONDS = 0.1


@dataclass
class Shared:
    """What every panel's events use besides the panel's own components."""

    conversation: gr.Code
    variables: gr.Code
    now: gr.Textbox
    run_all: gr.Button
    quiet: gr.Markdown  # the page's title: the progress target of events that show none (found first in the tree)
    sessions: Sessions
    slots: BackendSlots

    @property
    def inputs(self) -> list:
        """The conversation and what the template sees besides it, as handlers take them (conv, var, day)."""
        return [self.conversation, self.variables, self.now]


def private(*progress_on, **kw) -> dict:
    """Page-only events (not in the API), with the components that show their progress: Gradio's page looks each
    one up in the whole tree on every streamed message from then on (and every child of a layout block), so name
    few; an event that shows none names the page's `Shared.quiet`. Queued page events are not limited in number
    (the backend ones say otherwise, `backend_queue`)."""
    assert progress_on, "name the components that show this event's progress"
    return {"api_visibility": "private", "show_progress_on": list(progress_on), "concurrency_limit": None, **kw}


def hidden(shared: Shared, **kw) -> dict:
    """A page-only event that shows no progress."""
    return private(shared.quiet, show_progress="hidden", **kw)


def backend_queue(slots: BackendSlots) -> dict:
    """Events that wait on a backend go in one queue that runs at most `slots.overall` at once (the page shows a
    waiting event's place, "queue: 3/12", on its progress); the page's other events never wait behind them."""
    return {"concurrency_id": QUEUE, "concurrency_limit": slots.overall}


def in_session_slot(slots: BackendSlots, fn: Callable, busy: Callable[[str], object]):
    """`fn(request, *inputs)` run while it holds one of its session's places for backend requests; with none
    left, the outputs get `busy(sentence)` at once. A generator holds its place until it ends."""
    if inspect.isgeneratorfunction(fn):
        def held(request: gr.Request, *inputs):
            try:
                with slots.hold(request.session_hash):
                    yield from fn(request, *inputs)
            except Busy as e:
                yield busy(f"❌ {e}")
    else:
        def held(request: gr.Request, *inputs):
            try:
                with slots.hold(request.session_hash):
                    return fn(request, *inputs)
            except Busy as e:
                return busy(f"❌ {e}")
    return held


def built_when_opened(opening, build: Callable, shared: Shared, on_open: Callable = lambda: True, inputs=()) -> None:
    """`build(value, *values of inputs)` makes components and their events when `opening` (an Accordion's
    expand, a Tab's select) fires, `value` being what `on_open` returns then; it is built again when that
    value changes. Until then none of it is in the page's tree. Inputs built there say `interactive=True`: a
    render may show them before their events are attached."""
    opened = gr.State(None)

    @gr.render(inputs=[opened, *inputs], triggers=[opened.change])
    def contents(value, *values):
        if value is not None:
            build(value, *values)

    # queued: a State's change event fires only for a queued event's update
    opening(on_open, None, [opened], **hidden(shared))


class Panel:
    """The components of one panel; `controls` maps each of CONTROL_NAMES to its component. Made where the
    page wants its invisible parts (first in the tree); `build_panel` lays out the rest later."""

    def __init__(self, index: int, visible: bool):
        self.index = index
        self.controls: dict[str, gr.components.Component] = {}
        self.settings = gr.JSON(None, visible=False)  # the controls as {name: value}, packed by `with_settings`
        self.last_run = gr.State(None)  # the last finished run's record
        self.column_visible = gr.State(visible)  # whether Run all includes this panel

    @property
    def inputs(self) -> list:
        """The panel's controls as event inputs, in CONTROL_NAMES order."""
        return [self.controls[name] for name in panels.CONTROL_NAMES]


_PACK = """(...values) => {
  const names = %s, packed = [];
  for (let k = 0; k < values.length; k += names.length)
    packed.push(Object.fromEntries(names.map((name, i) => [name, values[k + i]])));
  return packed.length === 1 ? packed[0] : packed;
}""" % json.dumps(panels.CONTROL_NAMES)


def with_settings(trigger, some: list[Panel]):
    """An event on `trigger` that packs the controls of `some` panels into their `settings`, in the browser;
    chain the event that reads them with `.then`. A browser-only event has no progress, so Gradio's page never
    looks its (many) inputs up again, as it would after a server event that took them."""
    return trigger(None, [c for p in some for c in p.inputs], [p.settings for p in some], js=_PACK, queue=False,
                   show_progress="hidden", api_visibility="private")


def build_panel(p: Panel, startup: StartupConfig, wrapper_name: str, shared: Shared) -> None:
    """Lay out the panel's visible parts (the column shown when `p.column_visible` is)."""
    n, c = p.index + 1, p.controls
    template0, info0 = panels.wrapper_view(wrapper_name)
    preset0 = panels.preset_values(startup.preset)
    url_hint, ignored0 = panels.backend_defaults(startup.backend_type)
    with gr.Column(visible=p.column_visible.value, min_width=380, elem_id=f"panel-{n}") as p.column:
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
                c["timeout"] = gr.Number(startup.backend_timeout, label="Timeout (s)", minimum=1, maximum=3600,
                                         info="The most the whole generation (or any request) may take, wall clock.")
            with gr.Row():
                c["first_token_timeout"] = gr.Number(0, label="First token within (s)", minimum=0, maximum=3600,
                                                     info="0: only the timeout above.")
                c["token_timeout"] = gr.Number(0, label="Between tokens (s)", minimum=0, maximum=3600,
                                               info="Longest gap between two tokens; 0: only the timeout.")
                c["legacy_stream_port"] = gr.Number(startup.legacy_stream_port, label="Streaming port", minimum=1, maximum=65535, precision=0,
                                                    info="webui-legacy only: its streaming websocket.")
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
        with gr.Accordion("Tokens", open=False) as tokens:
            built_when_opened(tokens.expand, lambda _, record: _tokens_view(p, shared, record), shared, inputs=[p.last_run])
        with gr.Accordion("Same seed, N runs", open=False) as same_seed:
            built_when_opened(same_seed.expand, lambda _: _stability_view(p, shared), shared)
        with gr.Accordion("Cross-checks", open=False) as checks:
            built_when_opened(checks.expand, lambda _: _cross_checks_view(p, shared), shared)
    assert set(c) == set(panels.CONTROL_NAMES), "every control of the schema has one component"


def _tokens_view(p: Panel, shared: Shared, record: dict | None) -> None:
    """The last finished run's output tokens (click one for the alternatives) and the prompt's tokens."""
    n = p.index + 1
    heatmap_now, caption_now = _token_view(record)
    heatmap = gr.HighlightedText(heatmap_now, label="Output tokens (redder = less likely; click one for its alternatives)",
                                 show_legend=False, combine_adjacent=False, elem_id=f"heatmap-{n}")
    caption = gr.Markdown(caption_now)
    alternatives = gr.Dataframe(headers=["token", "logprob", "p", "chosen"], interactive=False, elem_id=f"alternatives-{n}")
    why_now, chances_now = cross_checks.call_start_view(record)
    why = gr.Markdown(why_now, elem_id=f"call-start-{n}")
    chances = gr.Dataframe(chances_now, headers=call_start.ROW_HEADERS, interactive=False, max_height=220,
                           label="Where a call could have started (likeliest first)", elem_id=f"call-chances-{n}")
    tokenize = gr.Button("Tokenize the prompt", size="sm", elem_id=f"tokenize-{n}")
    summary = gr.Markdown("", elem_id=f"tokens-summary-{n}")
    table = gr.Dataframe(headers=["#", "id", "piece"], interactive=False, max_height=300, elem_id=f"prompt-tokens-{n}")
    p.last_run.change(lambda run: (*_token_view(run), *cross_checks.call_start_view(run)), [p.last_run],
                      [heatmap, caption, why, chances], **private(caption))

    def alternatives_for(run, event: gr.SelectData):
        index = event.index if isinstance(event.index, int) else event.index[0]
        return panels.token_alternatives((run or {}).get("tokens"), index)

    heatmap.select(alternatives_for, [p.last_run], [alternatives, caption], **private(caption))

    def tokenized(_request, conv, var, day, settings):
        return panels.prompt_tokens(panels.PanelConfig.from_values(settings), conv, var, day)

    with_settings(tokenize.click, [p]).then(in_session_slot(shared.slots, tokenized, lambda busy: ([], busy)),
                                            [*shared.inputs, p.settings], [table, summary],
                                            **private(summary, show_progress="minimal", **backend_queue(shared.slots)))


def _cross_checks_view(p: Panel, shared: Shared) -> None:
    """The server's own render beside the wrapper's, the last output streamed again, the run as a failing case."""
    n = p.index + 1
    gr.Markdown("Does what the page shows match what happens? The **server's render** builds the prompt from the same "
                "conversation with the server's own chat template (llama.cpp, vLLM, embedded) and checks the wrapper's "
                "prompt with the server's tokenizer. **Stream again** feeds the last output to the incremental parse in "
                "chunks of 1, 2, 7 characters and whole. **Failing case** exports the last run as a test fixture and "
                "a report for an upstream issue.")
    render = gr.Button("Server's render", size="sm", elem_id=f"server-render-{n}")
    render_status = gr.Markdown("", elem_id=f"server-render-status-{n}")
    render_diff = gr.HighlightedText(label="Wrapper's prompt → server's (− only in the wrapper's, + only in the server's)",
                                     combine_adjacent=True, show_legend=True, color_map={"-": "red", "+": "green"},
                                     elem_id=f"server-render-diff-{n}")
    server_prompt = gr.Textbox(label="The server's prompt (exact)", lines=6, max_lines=20, interactive=False,
                               buttons=["copy"], elem_classes=["mono"], elem_id=f"server-prompt-{n}")

    def rendered(_request, conv, var, day, settings):
        prompt, pairs, status = cross_checks.server_render_view(panels.PanelConfig.from_values(settings), conv, var, day)
        return prompt, pairs, status

    with_settings(render.click, [p]).then(in_session_slot(shared.slots, rendered, lambda busy: ("", [], busy)),
                                          [*shared.inputs, p.settings], [server_prompt, render_diff, render_status],
                                          **private(render_status, show_progress="minimal", **backend_queue(shared.slots)))
    again = gr.Button("Stream the last output again", size="sm", elem_id=f"replay-{n}")
    replayed = gr.Markdown("", elem_id=f"replay-status-{n}")
    again.click(cross_checks.replay_view, [p.last_run, *shared.inputs], [replayed], **private(replayed))
    expected = gr.Textbox("", label="Expected calls (JSON)", lines=2, interactive=True, elem_id=f"expected-{n}",
                          placeholder='[{"name": "send_message", "arguments": {"message": "Hi"}}]',
                          info="What the output should have parsed to; empty leaves it for you to fill in the file.")
    export = gr.Button("Export as a failing case", size="sm", elem_id=f"failing-case-{n}")
    export_status = gr.Markdown("", elem_id=f"failing-case-status-{n}")
    case_json = gr.Code("", language="json", label="Test fixture (a parser corpus line with its context)", lines=6,
                        max_lines=20, interactive=False, elem_id=f"failing-case-json-{n}")
    report = gr.Code("", language="markdown", label="Report for an upstream issue", lines=6, max_lines=20,
                     interactive=False, elem_id=f"failing-case-report-{n}")
    export.click(cross_checks.failing_case_view,
                 [p.last_run, p.controls["wrapper"], p.controls["template"], *shared.inputs, expected],
                 [case_json, report, export_status], **private(export_status))


def _token_view(record: dict | None) -> tuple[list, str]:
    """(heat-map spans, caption) of a finished run's output tokens."""
    tokens = (record or {}).get("tokens")
    if not tokens:
        return [], "Set Token probabilities above 0 under Backend, then generate."
    return panels.token_heatmap(tokens), f"The run finished at {record.get('time')}: click a token for its alternatives."


def _stability_view(p: Panel, shared: Shared) -> None:
    """Generate N times with the same settings and count what came back."""
    n = p.index + 1
    with gr.Row():
        runs = gr.Number(5, label="Runs", minimum=1, maximum=100, precision=0, info="How many generations.", interactive=True)
        expected = gr.Textbox("", label="Expected function", placeholder="send_message", interactive=True,
                              info="Counted when the first call has this name.")
    start = gr.Button("Run N times", size="sm", elem_id=f"stability-{n}")
    status = gr.Markdown("", elem_id=f"stability-status-{n}")

    def stable(_request, count, expected_name, conv, var, day, settings):
        try:
            request = panels.PanelConfig.from_values(settings).request(conv, var, day)
            for tally in turns.stability(request, count, expected_name):
                yield turns.tally_text(tally, int(count), expected_name)
        except Exception as e:  # noqa: BLE001 — any failure ends the loop with its sentence
            yield f"❌ {e}"

    with_settings(start.click, [p]).then(in_session_slot(shared.slots, stable, lambda busy: busy),
                                         [runs, expected, *shared.inputs, p.settings], [status],
                                         **private(status, **backend_queue(shared.slots)))


def show_prompt(wrapper_name, template, conv, var, day, marked):
    text, status = panels.preview(wrapper_name, template, conv, var, day)
    return (panels.mark_whitespace(text) if marked else text), status


def wire_panel(p: Panel, shared: Shared) -> list:
    """Wire one panel's events; returns its generation events (for Stop all)."""
    c, sessions = p.controls, shared.sessions
    preview_inputs = [c["wrapper"], c["template"], *shared.inputs, p.show_ws]
    for trigger in (c["template"].input, shared.conversation.change, shared.variables.input, shared.now.input,
                    p.show_ws.change):
        trigger(show_prompt, preview_inputs, [p.prompt, p.prompt_status], queue=False, trigger_mode="always_last",
                **hidden(shared))

    # .input (the user picked it), not .change: a restored session sets wrapper and template together
    def picked_wrapper(name):
        template, info = panels.wrapper_view(name)
        editable = wrappers.get(name).editable  # a Python plugin shows its source read-only
        return gr.Code(template, interactive=editable, language="jinja2" if editable else "python"), info

    c["wrapper"].input(picked_wrapper, [c["wrapper"]], [c["template"], p.wrapper_info], queue=False,
                       **hidden(shared)).then(show_prompt, preview_inputs, [p.prompt, p.prompt_status], queue=False,
                                              **hidden(shared))

    def saved(base, name, text):
        names, selected, status = panels.save_wrapper(base, name, text)
        return gr.Dropdown(choices=names, value=selected), status

    p.save.click(saved, [c["wrapper"], p.save_name, c["template"]], [c["wrapper"], p.save_status], **private(p.save_status))
    _wire_presets(p, shared)
    _wire_backend(p, shared)

    def run(request: gr.Request, visible, conv, var, day, settings):
        if not visible:  # Run all skips hidden panels
            return
        stop = sessions.stop_flag(request.session_hash, f"panel {p.index}")
        cleared = False  # the last run's parse and request go on the first update; later ones leave them alone
        config = panels.PanelConfig.from_values(settings)
        for raw, parsed, sent, status, record in panels.run_generation(config, conv, var, day, stop, STREAM_UPDATE_SECONDS):
            if record is not None:
                record = {**record, "panel": p.index + 1}
                sessions.add_run(request.session_hash, record)
                yield {p.raw: raw, p.parsed: parsed, p.request: sent, p.run_status: status, p.last_run: record,
                       p.response: record.get("response")}
            elif cleared:  # the parse so far, once it has something
                yield {p.raw: raw, p.run_status: status, **({p.parsed: parsed} if parsed is not None else {})}
            else:
                cleared = True
                yield {p.raw: raw, p.parsed: parsed, p.request: sent, p.run_status: status}

    run_inputs = [p.column_visible, *shared.inputs, p.settings]
    run_outputs = [p.raw, p.parsed, p.request, p.run_status, p.last_run, p.response]
    held_run = in_session_slot(shared.slots, run, lambda busy: {p.run_status: busy})
    own, together = (with_settings(trigger, [p]).then(held_run, run_inputs, run_outputs,
                                                      **private(p.raw, **backend_queue(shared.slots)))
                     for trigger in (p.generate.click, shared.run_all.click))

    def stopped(request: gr.Request):
        # the generator sees the flag at its next chunk and closes the backend stream itself; cancelling the
        # events too covers a generator that is waiting for its first chunk
        sessions.stop(request.session_hash, f"panel {p.index}")
        return panels.STOPPED

    p.stop_btn.click(stopped, None, [p.run_status], cancels=[own, together], queue=False, **hidden(shared))
    return [own, together]


def _wire_presets(p: Panel, shared: Shared) -> None:
    c = p.controls
    preset_outputs = [c[name] for name in panels.PRESET_CONTROLS]

    def filled(name):
        return {c[key]: value for key, value in panels.preset_values(name).items()}

    c["preset"].change(filled, [c["preset"]], preset_outputs, queue=False, **private(p.preset_status))
    p.preset_restore.click(filled, [c["preset"]], preset_outputs, queue=False, **private(p.preset_status))
    p.neutralize.click(lambda: {c[key]: value for key, value in panels.neutral_values().items()}, None,
                       [c[name] for name in panels.SLIDER_KEYS], queue=False, **private(p.preset_status))

    def preset_saved(name, *values):
        names, selected, status = panels.save_preset(name, dict(zip(panels.PRESET_CONTROLS, values, strict=True)))
        return gr.Dropdown(choices=names, value=selected or gr.skip()), status

    p.preset_save.click(preset_saved, [p.preset_name, *preset_outputs], [c["preset"], p.preset_status],
                        **private(p.preset_status))

    def preset_deleted(name):
        names, selected, status = panels.delete_preset(name)
        return gr.Dropdown(choices=names, value=selected), status

    p.preset_delete.click(preset_deleted, [c["preset"]], [c["preset"], p.preset_status], **private(p.preset_status))


def _wire_backend(p: Panel, shared: Shared) -> None:
    """The Backend section's events; those that ask the server wait in the backend queue."""
    c, slots = p.controls, shared.slots

    def picked_type(kind, model):
        url, status, names, value = panels.picked_backend(kind, model)
        return gr.Textbox(placeholder=url), status, gr.Dropdown(choices=names, value=value)

    c["backend_type"].input(picked_type, [c["backend_type"], c["model"]], [c["url"], p.backend_status, c["model"]],
                            queue=False, **private(p.backend_status))

    def checked(_request, kind, url, model, key, secs):
        status, names = panels.check_backend(kind, url, model, key, secs)
        value = model or (names[0] if len(names) == 1 else None)
        return status, gr.Dropdown(choices=names, value=value)

    asks_server = private(p.backend_status, show_progress="minimal", **backend_queue(slots))
    p.check.click(in_session_slot(slots, checked, lambda busy: (busy, gr.skip())),
                  [c["backend_type"], c["url"], c["model"], c["api_key"], c["timeout"]], [p.backend_status, c["model"]],
                  **asks_server)

    def detected(_request, url):
        kind, status = panels.detect_backend(url)
        return (kind or gr.skip()), status

    p.detect.click(in_session_slot(slots, detected, lambda busy: (gr.skip(), busy)), [c["url"]],
                   [c["backend_type"], p.backend_status], **asks_server)

    def fetched(_request, settings):
        template, status = panels.server_template(panels.PanelConfig.from_values(settings))
        return gr.Code(template, visible=bool(template)), gr.Button(visible=bool(template)), status

    with_settings(p.fetch_template.click, [p]).then(in_session_slot(slots, fetched, lambda busy: (gr.skip(), gr.skip(), busy)),
                                                    [p.settings], [p.server_template, p.use_server_template,
                                                                   p.backend_status], **asks_server)

    def adopted(template, kind):
        _, parser, _, status = panels.load_model_template(None, template, f"{kind}-server-template")
        return status + (f" Suggested parser: {parser}" if parser else ""), gr.Dropdown(choices=wrappers.names())

    p.use_server_template.click(adopted, [p.server_template, c["backend_type"]], [p.backend_status, c["wrapper"]],
                                **private(p.backend_status))
