"""The Traffic tab: every request to the /v1 endpoint as it happens (a row from its arrival, "in progress"
until it ends), newest first, and Open in panel to replay one with the request's own sampling values.

Few components, and a timer that runs only once the tab was opened and redraws only when the
ring changed, so the page stays as fast as without it.
"""

from __future__ import annotations

import json

import gradio as gr

import wrappers
from core.errors import UserError
from flow import traffic
from workbench import panels

REFRESH_SECONDS = 1.0


def _table(entries: list[dict]) -> dict:
    return {"headers": traffic.HEADERS, "data": traffic.rows(entries) or [[""] * len(traffic.HEADERS)]}


def build(conversation: gr.Code, controls: dict) -> None:
    """The tab, inside the page's gr.Tabs; Open in panel sets the shared conversation and panel 1's `controls`
    (by name: its wrapper and template, and the sampling values the request ran with)."""
    private = {"api_visibility": "private"}
    with gr.Tab("Traffic", id="traffic") as tab:
        gr.Markdown("Requests to the OpenAI-compatible endpoint `/v1/chat/completions` on this server, as they arrive "
                    "(point an agent at it: `OPENAI_API_BASE=<this page's address>/v1`, the model is a wrapper name). "
                    "Click a row to see it; *Open in panel* puts its conversation, wrapper and sampling values into panel 1.")
        table = gr.Dataframe(_table([]), interactive=False, max_height=320, elem_id="traffic-table")
        with gr.Row():
            chosen = gr.Number(None, label="Request #", precision=0, minimum=1, elem_id="traffic-chosen", scale=1)
            open_in_panel = gr.Button("Open in panel 1", elem_id="traffic-open", scale=1)
            load = gr.Button("Load log", elem_id="traffic-load", scale=1)
        status = gr.Markdown("", elem_id="traffic-status")
        with gr.Row(equal_height=False):
            prompt = gr.Textbox(label="Prompt sent", lines=8, max_lines=20, interactive=False, elem_classes=["mono"],
                                elem_id="traffic-prompt")
            raw = gr.Textbox(label="Raw output", lines=8, max_lines=20, interactive=False, elem_classes=["mono"],
                             elem_id="traffic-raw")
        details = gr.JSON(label="Messages, functions, parse, response body, backend request", open=False, elem_id="traffic-detail")
        seen = gr.State(-1)
    timer = gr.Timer(REFRESH_SECONDS, active=False)

    def refreshed(version):
        ring = traffic.ring()
        if ring.version == version:
            return gr.skip(), version
        return _table(ring.entries()), ring.version

    tab.select(lambda: gr.Timer(active=True), None, [timer], queue=False, show_progress="hidden", **private).then(
        refreshed, [seen], [table, seen], queue=False, show_progress="hidden", **private)
    timer.tick(refreshed, [seen], [table, seen], queue=False, show_progress="hidden", **private)

    def shown(entry_id):
        entry = traffic.ring().get(int(entry_id or 0))
        if entry is None:
            return gr.skip(), gr.skip(), gr.skip(), f"❌ Request #{entry_id} is not in the traffic kept in memory."
        return entry.get("prompt", ""), entry.get("raw", ""), traffic.detail(entry), f"Request #{entry_id}: {entry.get('verdict', '')}"

    def picked(event: gr.SelectData):
        return (event.row_value or [None])[0]

    table.select(picked, None, [chosen], queue=False, **private).then(shown, [chosen], [prompt, raw, details, status],
                                                                       queue=False, **private)
    chosen.submit(shown, [chosen], [prompt, raw, details, status], queue=False, **private)

    sliders = [controls[name] for name in panels.SLIDER_KEYS]
    boxes = [controls["stop_json"], controls["grammar"], controls["json_schema"]]

    def opened(entry_id):
        entry = traffic.ring().get(int(entry_id or 0))
        skipped = [gr.skip()] * (3 + len(sliders) + len(boxes))
        if entry is None or not entry.get("conversation"):
            return *skipped, f"❌ Request #{entry_id} has no conversation to open (it was refused before one was read)."
        name = entry.get("wrapper") or ""
        if name not in wrappers.names():
            return *skipped, f"❌ The wrapper '{name}' of request #{entry_id} no longer exists."
        text, _ = panels.wrapper_view(name)
        values = traffic.sampling(entry)
        schema = values.get("json_schema")
        shown = [json.dumps(values["stop"], ensure_ascii=False) if "stop" in values else gr.skip(),
                 values.get("grammar", gr.skip()), json.dumps(schema, indent=2) if schema else ("" if values else gr.skip())]
        said = " and its sampling values" if values else " (no sampling values were recorded)"
        return (json.dumps(entry["conversation"], indent=2, ensure_ascii=False), name, text,
                *[values.get(key, gr.skip()) for key in panels.SLIDER_KEYS], *shown,
                f"✅ Request #{entry_id} opened in panel 1 (Workbench tab) with wrapper **{name}**{said}: run it, "
                "or pick another wrapper.")

    open_in_panel.click(opened, [chosen], [conversation, controls["wrapper"], controls["template"], *sliders, *boxes, status],
                        **private)

    def loaded():
        try:
            count = traffic.ring().load()
        except UserError as e:
            return gr.skip(), f"❌ {e}"
        return _table(traffic.ring().entries()), f"✅ Loaded {count} requests from {traffic.ring().log_path}."

    load.click(loaded, None, [table, status], queue=False, **private)
