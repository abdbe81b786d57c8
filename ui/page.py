"""The workbench page: the shared conversation, side-by-side panels (`ui.panel`) and the tabs beside
them (`ui.tabs`). Layout and wiring only; every handler is a plain function of `workbench` (no
Gradio there). What a browser session keeps on the server (`workbench.sessions`) goes when its page
closes."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import gradio as gr
from gradio.routes import App

import wrappers
from core.conversation import EXAMPLE_PATH, ConversationError
from flow.admission import BackendSlots
from flow.startup import StartupConfig
from ui import tabs, traffic_tab
from ui.panel import Panel, Shared, build_panel, built_when_opened, hidden, private, wire_panel, with_settings
from workbench import panels as panel_logic
from workbench import turns
from workbench.sessions import Sessions

MAX_PANELS = 3
START_PANELS = 2
SECOND_WRAPPER = "hermes-2-pro"  # the second panel starts on a native tool-call format to compare with

CSS = """
.mono textarea { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
"""
CTRL_ENTER = """() => {
  document.addEventListener('keydown', (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') { e.preventDefault(); document.querySelector('#run-all')?.click(); }
  });
}"""
TITLE = ("## Prompt Format Playground\nOne conversation, side-by-side configurations: the exact prompt each wrapper "
         "sends, the raw output and the parsed call. **Ctrl+Enter** runs every panel.")

SESSIONS = Sessions()  # every page of this process; a session's entries go when its page closes


def _conversation_section(startup: StartupConfig, example: str):
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
                accept_from = gr.Dropdown(tabs.panel_numbers(MAX_PANELS), value="1", label="Accept from panel",
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
    return locals()


def _wire_turns(s: dict, panels: list[Panel], shared: Shared) -> None:
    conversation, first_wrapper, turn_status = s["conversation"], panels[0].controls["wrapper"], s["turn_status"]
    conversation.change(turns.chat_view, [conversation, first_wrapper], [s["chat"]], queue=False, **hidden(shared))

    def turn(fn, *args):
        try:
            return fn(*args), "✅ Added to the conversation."
        except ConversationError as e:
            return gr.skip(), f"❌ {e}"

    def accepted(values: dict):  # inputs given as a set: values by component
        record = values[panels[int(values[s["accept_from"]]) - 1].last_run] or {}
        # in the shape of the wrapper that wrote the answer
        return turn(turns.accept_call, values[conversation], record.get("parsed"), record.get("wrapper", ""),
                    record.get("raw", ""))

    s["accept"].click(accepted, {s["accept_from"], conversation, *[p.last_run for p in panels]},
                      [conversation, turn_status], **private(turn_status))

    def canned_for(conv):
        pending = turns.pending_calls(conv)
        return turns.canned_result(pending[0]) if pending else gr.skip()

    s["canned"].click(canned_for, [conversation], [s["result"]], queue=False, **hidden(shared))
    s["add_result"].click(lambda conv, text, w: turn(turns.add_function_result, conv, text, w),
                          [conversation, s["result"], first_wrapper], [conversation, turn_status], **private(turn_status))
    s["send_user"].click(lambda conv, text, w: turn(turns.add_user_message, conv, text, w),
                         [conversation, s["user_text"], first_wrapper], [conversation, turn_status], **private(turn_status))


@contextmanager
def _server_app_built_at_launch() -> Iterator[None]:
    """Gradio 6.31 builds its server app (FastAPI, ~80 routes) in `Blocks()` and again when the Blocks closes,
    then builds the one it serves in `launch()`. The first two are never served; skipping them saves about
    0.25 s of start-up (bench/startup.py). Only while the page is built, at start-up."""
    build = App.__dict__["create_app"]  # the staticmethod itself, put back as it was
    App.create_app = staticmethod(lambda *args, **kwargs: None)
    try:
        yield
    finally:
        App.create_app = build


def build_page(startup: StartupConfig, slots: BackendSlots, add_api: Callable[[], None] = lambda: None) -> gr.Blocks:
    """The page; `add_api` adds another face's endpoints to the same Blocks while it is built (entering a built
    Blocks again would make Gradio build its server app once more: ~0.3 s of start-up)."""
    example = EXAMPLE_PATH.read_text(encoding="utf-8")
    second = SECOND_WRAPPER if SECOND_WRAPPER in wrappers.names() else startup.wrapper
    with _server_app_built_at_launch(), gr.Blocks(title="Prompt Format Playground", analytics_enabled=False) as demo:
        # first in the tree: the progress target of the events that show none (see ui.panel.private)
        title = gr.Markdown(TITLE + "".join(f"\n\nℹ {note}" for note in startup.notes), elem_id="title")
        # what events read and write but nobody sees, found first (see ui.panel); the browser's copy of the
        # workbench stays mounted (outside the hidden column): it reads and writes localStorage itself
        stored = gr.BrowserState(None, storage_key="prompt-format-playground-session")
        with gr.Column(visible=False):
            panels = [Panel(i, i < START_PANELS) for i in range(MAX_PANELS)]
            panel_count = gr.State(START_PANELS)
        with gr.Row():
            run_all = gr.Button("Run all panels", variant="primary", elem_id="run-all", scale=2, size="md")
            stop_all = gr.Button("Stop all", variant="stop", scale=1, elem_id="stop-all", size="md")
            add_panel = gr.Button("Add panel", scale=1, elem_id="add-panel", size="md")
            remove_panel = gr.Button("Remove last panel", scale=1, elem_id="remove-panel", size="md")
        with gr.Tabs():
            with gr.Tab("Workbench", id="workbench"):
                section = _conversation_section(startup, example)
                shared = Shared(section["conversation"], section["variables"], section["now"], run_all, title, SESSIONS,
                                slots)
                with gr.Row(equal_height=False):
                    for p in panels:
                        build_panel(p, startup, startup.wrapper if p.index == 0 else second, shared)
            tabs.compare_tab(panels, shared)
            tabs.model_template_tab(panels, shared)
            tabs.scoreboard_tab(panels[0], shared)
            tabs.history_tab(panels, shared)
            tabs.export_tab(panels, shared)
            with gr.Tab("Session", id="session") as session_tab:
                gr.Markdown("Save the whole workbench (conversation, panels, templates, parameters; never API keys) as one "
                            "JSON file, or load one. The page also keeps it in this browser across reloads.")
            traffic_tab.build(shared.conversation, panels[0].controls)

        events = []
        for p in panels:
            events += wire_panel(p, shared)

        def stopped_all(request: gr.Request):
            SESSIONS.stop(request.session_hash, *(f"panel {p.index}" for p in panels))
            return [panel_logic.STOPPED] * MAX_PANELS

        stop_all.click(stopped_all, None, [p.run_status for p in panels], cancels=events, queue=False, **hidden(shared))

        def show_panels(count):
            return {panel_count: count, **{p.column: gr.Column(visible=p.index < count) for p in panels},
                    **{p.column_visible: p.index < count for p in panels}}

        visibility_outputs = [panel_count] + [p.column for p in panels] + [p.column_visible for p in panels]
        add_panel.click(lambda c: show_panels(min(MAX_PANELS, c + 1)), [panel_count], visibility_outputs, queue=False,
                        **hidden(shared))
        remove_panel.click(lambda c: show_panels(max(1, c - 1)), [panel_count], visibility_outputs, queue=False,
                           **hidden(shared))
        _wire_turns(section, panels, shared)

        # the saved session and the restore: the page's three shared inputs, then each panel's controls by name
        snapshot_inputs = [*shared.inputs, panel_count, *(p.settings for p in panels)]
        restore_outputs = [*shared.inputs, *(c for p in panels for c in p.inputs), *visibility_outputs,
                           *(c for p in panels for c in (p.prompt, p.prompt_status, p.wrapper_info))]

        def snapshot(conv, var, day, count, *settings):
            return panel_logic.session_state(conv, var, day, count, list(settings))

        def restored(state):
            """The saved workbench, or (none saved) the page as built, with each panel's prompt rendered (not at
            start-up: it would delay serving the page)."""
            if not state:
                built = [{name: p.controls[name].value for name in ("wrapper", "template")} for p in panels]
                return prompts(example, "", "", built)
            conv, var, day = state.get("conversation", ""), state.get("template_variables", ""), state.get("now", "")
            out = {shared.conversation: conv, shared.variables: var, shared.now: day}
            saved = panel_logic.restore_panels(state)
            for p, values in zip(panels, saved, strict=False):  # fewer saved: the rest stay
                out.update({p.controls[name]: value for name, value in values.items()})
            return {**out, **prompts(conv, var, day, saved), **show_panels(int(state.get("panels", START_PANELS)))}

        def prompts(conv, var, day, per_panel: list[dict]) -> dict:
            out = {}
            for p, values in zip(panels, per_panel, strict=False):
                prompt, status = panel_logic.preview(values["wrapper"], values["template"], conv, var, day)
                out.update({p.prompt: prompt, p.prompt_status: status, p.wrapper_info: panel_logic.wrapper_info(values["wrapper"])})
            return out

        def session_view(_):
            with gr.Row():
                save = gr.Button("Save session", elem_id="session-save")
                file = gr.File(label="Session file", interactive=False, elem_id="session-file")
                upload = gr.UploadButton("Load session…", file_types=[".json"], elem_id="session-load")
            status = gr.Markdown("", elem_id="session-status")

            def saved_session(*values):
                state = snapshot(*values)
                return tabs.session_file_path(state), state, "✅ Session saved: download it above."

            with_settings(save.click, panels).then(saved_session, snapshot_inputs, [file, stored, status],
                                                   **private(status))

            def loaded_file(path):
                try:
                    with open(path, encoding="utf-8") as f:
                        state = turns.load_session(f.read())
                except (OSError, ConversationError) as e:
                    return {status: f"❌ {e}"}
                return {**restored(state), status: "✅ Session loaded."}

            upload.upload(loaded_file, [upload], restore_outputs + [status], **private(status))

        built_when_opened(session_tab.select, session_view, shared)
        demo.load(restored, [stored], restore_outputs, **hidden(shared))
        # the browser copy: after a run (not on the click, which would delay the run's first chunk) and on every
        # conversation change
        for trigger in [event.then for event in events] + [shared.conversation.change]:
            with_settings(trigger, panels).then(snapshot, snapshot_inputs, [stored], queue=False, **hidden(shared))
        demo.load(None, js=CTRL_ENTER)

        def forget(request: gr.Request):
            SESSIONS.forget(request.session_hash)

        demo.unload(forget)
        add_api()
    return demo
