"""The workbench page: the shared conversation, side-by-side panels (`ui.panel`) and the tabs beside
them (`ui.tabs`). Layout and wiring only; every handler is a plain function of `workbench` (no
Gradio there). What a browser session keeps on the server (`workbench.sessions`) goes when its page
closes."""

from __future__ import annotations

import gradio as gr

import wrappers
from core.conversation import EXAMPLE_PATH, ConversationError
from flow.startup import StartupConfig
from ui import traffic_tab
from ui import tabs
from ui.panel import Panel, build_panel, named, private, wire_panel
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


def _wire_turns(s: dict, panels: list[Panel]) -> None:
    conversation, first_wrapper = s["conversation"], panels[0].controls["wrapper"]
    conversation.change(turns.chat_view, [conversation, first_wrapper], [s["chat"]], queue=False, show_progress="hidden",
                        **private())

    def turn(fn, *args):
        try:
            return fn(*args), "✅ Added to the conversation."
        except ConversationError as e:
            return gr.skip(), f"❌ {e}"

    def accepted(which, conv, *rest):
        runs, names = rest[:MAX_PANELS], rest[MAX_PANELS:]
        i = int(which) - 1
        record = runs[i] or {}
        return turn(turns.accept_call, conv, record.get("parsed"), names[i], record.get("raw", ""))

    s["accept"].click(accepted, [s["accept_from"], conversation, *[p.last_run for p in panels],
                                 *[p.controls["wrapper"] for p in panels]], [conversation, s["turn_status"]], **private())

    def canned_for(conv):
        pending = turns.pending_calls(conv)
        return turns.canned_result(pending[0]) if pending else gr.skip()

    s["canned"].click(canned_for, [conversation], [s["result"]], queue=False, **private())
    s["add_result"].click(lambda conv, text, w: turn(turns.add_function_result, conv, text, w),
                          [conversation, s["result"], first_wrapper], [conversation, s["turn_status"]], **private())
    s["send_user"].click(lambda conv, text, w: turn(turns.add_user_message, conv, text, w),
                         [conversation, s["user_text"], first_wrapper], [conversation, s["turn_status"]], **private())


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
                shared = _conversation_section(startup, example)
                with gr.Row(equal_height=False):
                    panels = [build_panel(i, startup, startup.wrapper if i == 0 else second, i < START_PANELS)
                              for i in range(MAX_PANELS)]
            tabs.compare_tab(panels)
            tabs.model_template_tab(panels)
            tabs.scoreboard_tab(panels[0], SESSIONS)
            history_table = tabs.history_tab(panels, SESSIONS)
            tabs.export_tab(panels)
            with gr.Tab("Session", id="session"):
                gr.Markdown("Save the whole workbench (conversation, panels, templates, parameters; never API keys) as one "
                            "JSON file, or load one. The page also keeps it in this browser across reloads.")
                with gr.Row():
                    session_save = gr.Button("Save session", elem_id="session-save")
                    session_file = gr.File(label="Session file", interactive=False, elem_id="session-file")
                    session_upload = gr.UploadButton("Load session…", file_types=[".json"], elem_id="session-load")
                session_status = gr.Markdown("", elem_id="session-status")
            traffic_tab.build(shared["conversation"], panels[0].controls)
        stored = gr.BrowserState(None, storage_key="prompt-format-playground-session")
        conversation, variables, now = shared["conversation"], shared["variables"], shared["now"]

        events = []
        for p in panels:
            events += wire_panel(p, conversation, variables, now, history_table, run_all, SESSIONS)

        def stopped_all(request: gr.Request):
            SESSIONS.stop(request.session_hash, *(f"panel {p.index}" for p in panels))
            return [panel_logic.STOPPED] * MAX_PANELS

        stop_all.click(stopped_all, None, [p.run_status for p in panels], cancels=events, queue=False, **private())

        def show_panels(count):
            return {panel_count: count, **{p.column: gr.Column(visible=p.index < count) for p in panels},
                    **{p.column_visible: p.index < count for p in panels}}

        visibility_outputs = [panel_count] + [p.column for p in panels] + [p.column_visible for p in panels]
        add_panel.click(lambda c: show_panels(min(MAX_PANELS, c + 1)), [panel_count], visibility_outputs, queue=False,
                        show_progress="hidden", **private(add_panel))
        remove_panel.click(lambda c: show_panels(max(1, c - 1)), [panel_count], visibility_outputs, queue=False,
                           show_progress="hidden", **private(remove_panel))
        _wire_turns(shared, panels)

        # the saved session and the restore: the page's three shared inputs, then each panel's controls by name
        snapshot_inputs = [conversation, variables, now, panel_count] + [c for p in panels for c in p.inputs]
        restore_outputs = [conversation, variables, now] + [c for p in panels for c in p.inputs] + visibility_outputs

        def snapshot(conv, var, day, count, *controls):
            size = len(panel_logic.CONTROL_NAMES)
            per_panel = [named(controls[k:k + size]) for k in range(0, len(controls), size)]
            return panel_logic.session_state(conv, var, day, count, per_panel)

        def saved_session(*values):
            return tabs.session_file_path(snapshot(*values)), "✅ Session saved: download it above."

        session_save.click(saved_session, snapshot_inputs, [session_file, session_status], **private())

        def restored(state, status=""):
            if not state:
                return {session_status: status}
            out = {conversation: state.get("conversation", ""), variables: state.get("template_variables", ""),
                   now: state.get("now", "")}
            for p, values in zip(panels, panel_logic.restore_panels(state), strict=False):  # fewer saved: the rest stay
                out.update({p.controls[name]: value for name, value in values.items()})
            return {**out, **show_panels(int(state.get("panels", START_PANELS))), session_status: status}

        def loaded_file(file):
            try:
                with open(file, encoding="utf-8") as f:
                    state = turns.load_session(f.read())
            except (OSError, ConversationError) as e:
                return {session_status: f"❌ {e}"}
            return restored(state, "✅ Session loaded.")

        prompt_inputs = [conversation, variables, now] + [c for p in panels for c in
                                                          (p.controls["wrapper"], p.controls["template"], p.show_ws)]
        prompt_outputs = [c for p in panels for c in (p.prompt, p.prompt_status, p.wrapper_info)]

        def all_prompts(conv, var, day, *per_panel):
            out = []
            for k in range(0, len(per_panel), 3):
                name, template, marked = per_panel[k:k + 3]
                text, status = panel_logic.preview(name, template, conv, var, day)
                out += [panel_logic.mark_whitespace(text) if marked else text, status, panel_logic.wrapper_info(name)]
            return out

        prompt_statuses = [p.prompt_status for p in panels]
        session_upload.upload(loaded_file, [session_upload], restore_outputs + [session_status],
                              **private(session_status)).then(all_prompts, prompt_inputs, prompt_outputs,
                                                              **private(*prompt_statuses))
        demo.load(restored, [stored], restore_outputs + [session_status],
                  **private(session_status)).then(all_prompts, prompt_inputs, prompt_outputs, **private(*prompt_statuses))
        # the browser copy: after a run (not on the click, which would delay the run's first chunk), on every
        # conversation change and on Save
        for event in events:
            event.then(snapshot, snapshot_inputs, [stored], queue=False, show_progress="hidden", **private())
        gr.on([conversation.change, session_save.click], snapshot, snapshot_inputs, [stored], queue=False,
              show_progress="hidden", **private())
        demo.load(None, js=CTRL_ENTER)

        def forget(request: gr.Request):
            SESSIONS.forget(request.session_hash)

        demo.unload(forget)
    return demo
