"""The page: layout and wiring only. Every handler is a function of `playground.page`."""

from __future__ import annotations

import argparse

import gradio as gr

import backends
import presets
import wrappers
from playground import page
from playground.config import StartupConfig
from playground.conversation import EXAMPLE_PATH
from ui import api

SLIDERS = {  # key: (label, minimum, maximum, step, info)
    "max_new_tokens": ("Max new tokens", 1, 4096, 1, "Longest completion the backend may write."),
    "temperature": ("Temperature", 0.0, 2.0, 0.01, "0 picks the likeliest token; higher is more random."),
    "top_p": ("top_p", 0.0, 1.0, 0.01, "Keep the smallest set of tokens whose probabilities add up to this (1 = off)."),
    "top_k": ("top_k", 0, 200, 1, "Keep only the k likeliest tokens (0 = off, 1 = greedy)."),
    "min_p": ("min_p", 0.0, 1.0, 0.01, "Drop tokens less likely than this fraction of the top token (0 = off)."),
    "typical_p": ("typical_p", 0.0, 1.0, 0.01, "Locally typical sampling (1 = off)."),
    "repetition_penalty": ("Repetition penalty", 0.5, 2.0, 0.01, "Above 1 discourages repeating tokens (1 = off)."),
    "presence_penalty": ("Presence penalty", -2.0, 2.0, 0.01, "Penalise tokens that already appeared (0 = off)."),
    "frequency_penalty": ("Frequency penalty", -2.0, 2.0, 0.01, "Penalise tokens by how often they appeared (0 = off)."),
}

CSS = """
#prompt textarea, #raw textarea { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
"""


def build_demo(startup: StartupConfig) -> gr.Blocks:
    example = EXAMPLE_PATH.read_text(encoding="utf-8")
    template0, info0 = page.wrapper_view(startup.wrapper)
    preset0 = page.preset_values(startup.preset)
    url_hint, ignored0 = page.backend_defaults(startup.backend_type)

    with gr.Blocks(title="Prompt Format Playground", analytics_enabled=False) as demo:
        gr.Markdown("## Prompt Format Playground\nPick a backend and a wrapper, edit the template, and see the exact "
                    "prompt sent, the raw output and the parsed function call.")
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=420):
                with gr.Accordion("Backend", open=True):
                    with gr.Row():
                        backend_type = gr.Dropdown(backends.names(), value=startup.backend_type, label="Type",
                                                   info="embedded runs llama.cpp in this app; openai talks to any /v1/completions server.",
                                                   elem_id="backend-type")
                        backend_url = gr.Textbox(startup.backend_url, label="URL", placeholder=url_hint,
                                                 info="The server's address as it prints it, e.g. http://127.0.0.1:8080.",
                                                 elem_id="backend-url")
                    with gr.Row():
                        backend_model = gr.Dropdown([], value=startup.backend_model or None, allow_custom_value=True,
                                                    label="Model", info="Filled from the server's model list by Check; a GGUF path for embedded.")
                        api_key = gr.Textbox("", type="password", label="API key",
                                             info="Sent as a bearer token; never shown in the request view.")
                        timeout = gr.Number(120, label="Timeout (s)", minimum=1, maximum=3600,
                                            info="How long to wait for the server's next byte.")
                    with gr.Row():
                        check = gr.Button("Check connection", size="sm", scale=0)
                        backend_status = gr.Markdown(ignored0, elem_id="backend-status")
                with gr.Accordion("Wrapper", open=True):
                    wrapper = gr.Dropdown(wrappers.names(), value=startup.wrapper, label="Wrapper",
                                          info="The prompt format: a Jinja template plus the parser for the model's answer.",
                                          elem_id="wrapper")
                    wrapper_info = gr.Markdown(info0)
                    template = gr.Code(template0, language="jinja2", interactive=True, lines=14, max_lines=28,
                                       label="Template (Jinja, edit live)", elem_id="template")
                    with gr.Row():
                        save_name = gr.Textbox("", label="Save as…", placeholder="my-wrapper", scale=3,
                                               info="Stores your edited wrapper in your user folder; built-ins stay as they are.")
                        save = gr.Button("Save as…", size="sm", scale=1)
                    save_status = gr.Markdown("")
                with gr.Accordion("Sampling parameters", open=False):
                    preset = gr.Dropdown(presets.names(), value=startup.preset, label="Preset",
                                         info="A preset fills these values; change any of them after.")
                    sliders = [gr.Slider(lo, hi, value=preset0[i], step=step, label=label, info=info,
                                         elem_id=key.replace("_", "-"))
                               for i, (key, (label, lo, hi, step, info)) in enumerate(SLIDERS.items())]
                    seed = gr.Number(preset0[len(SLIDERS)], label="Seed", precision=0, info="-1 picks a random seed; the one used is shown in the request.")
                    stop = gr.Textbox(preset0[-1], label="Stop strings (JSON list)",
                                      placeholder="empty: the wrapper's own stop strings",
                                      info='e.g. ["\\nUSER:", "<|im_end|>"]. Empty uses the wrapper\'s list.')
                    extra = gr.Code("", language="json", lines=2, label="Extra request fields (JSON object, merged into the request)")
                with gr.Accordion("Conversation", open=False):
                    conversation = gr.Code(example, language="json", interactive=True, lines=16, max_lines=40,
                                           label="Messages and functions (OpenAI shape)", elem_id="conversation")
                    with gr.Row():
                        variables = gr.Code("", language="json", lines=2, label="Template variables (JSON object, e.g. {\"first_message\": true})")
                        now = gr.Textbox("", label="Date the template sees", placeholder="2024-07-26",
                                         info="ISO date for strftime_now; empty = today.")
            with gr.Column(scale=6, min_width=420):
                prompt = gr.Textbox(label="Prompt sent (exact)", lines=18, max_lines=36, interactive=False,
                                    buttons=["copy"], elem_id="prompt")
                with gr.Row():
                    prompt_status = gr.Markdown("", elem_id="prompt-status")
                    show_ws = gr.Checkbox(False, label="Mark whitespace", scale=0,
                                          info="Show spaces as ·, tabs as →, line ends as ↵.")
                with gr.Row():
                    generate = gr.Button("Generate", variant="primary", elem_id="generate")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="stop")
                run_status = gr.Markdown("", elem_id="run-status")
                raw = gr.Textbox(label="Raw output (streamed)", lines=8, max_lines=24, interactive=False,
                                 buttons=["copy"], elem_id="raw")
                parsed = gr.JSON(label="Parsed call", open=True, elem_id="parsed")
                with gr.Accordion("Request sent", open=False):
                    request = gr.JSON(label="Exact request (secrets masked)", open=True, elem_id="request")

        preview_inputs = [wrapper, template, conversation, variables, now]

        def show_prompt(*args):
            text, status = page.preview(*args[:-1])
            return (page.mark_whitespace(text) if args[-1] else text), status

        for trigger in (template.input, conversation.input, variables.input, now.input, show_ws.change):
            trigger(show_prompt, preview_inputs + [show_ws], [prompt, prompt_status], queue=False,
                    trigger_mode="always_last", show_progress="hidden", api_visibility="private")
        wrapper.change(page.wrapper_view, [wrapper], [template, wrapper_info], queue=False,
                       api_visibility="private").then(show_prompt, preview_inputs + [show_ws], [prompt, prompt_status],
                                                      queue=False, show_progress="hidden", api_visibility="private")
        demo.load(show_prompt, preview_inputs + [show_ws], [prompt, prompt_status], queue=False, api_visibility="private")

        def saved(base, name, text):
            names, selected, status = page.save_wrapper(base, name, text)
            return gr.Dropdown(choices=names, value=selected), status

        save.click(saved, [wrapper, save_name, template], [wrapper, save_status], api_visibility="private")
        preset.change(page.preset_values, [preset], sliders + [seed, stop], queue=False, api_visibility="private")

        def picked_type(kind):
            url, ignored = page.backend_defaults(kind)
            return gr.Textbox(placeholder=url), ignored

        backend_type.change(picked_type, [backend_type], [backend_url, backend_status], queue=False, api_visibility="private")

        def checked(kind, url, model, key, secs):
            status, names = page.check_backend(kind, url, model, key, secs)
            value = model or (names[0] if len(names) == 1 else None)
            return status, gr.Dropdown(choices=names, value=value)

        check.click(checked, [backend_type, backend_url, backend_model, api_key, timeout], [backend_status, backend_model],
                    api_visibility="private")

        def run(kind, url, model, key, secs, extra_json, wrapper_name, template_text, conv, var, day, preset_name, *rest):
            *slider_values, seed_value, stop_json = rest
            yield from page.run_generation(kind, url, model, key, secs, extra_json, wrapper_name, template_text, conv,
                                           var, day, preset_name, [*slider_values, seed_value], stop_json)

        generation = generate.click(
            run, [backend_type, backend_url, backend_model, api_key, timeout, extra, *preview_inputs, preset, *sliders, seed, stop],
            [raw, parsed, request, run_status], concurrency_limit=None, api_visibility="private")
        stop_btn.click(lambda: "⏹ Stopped: the request was aborted; the output so far is kept above.", None, [run_status],
                       cancels=[generation], queue=False, api_visibility="private")
        api.register()
    return demo


def launch(demo: gr.Blocks, host: str, port: int, **extra):
    """Start serving; the same settings for `python app.py` and the tests."""
    demo.queue(default_concurrency_limit=None)
    # prompts can be private: no monitoring dashboard, no run history kept in the browser
    return demo.launch(server_name=host, server_port=port, css=CSS, enable_monitoring=False, run_history=False,
                       footer_links=["api", "settings"], show_error=True, **extra)


def serve(args: argparse.Namespace) -> int:
    startup = StartupConfig(backend_type=args.backend_type, backend_url=args.backend_url,
                            backend_model=args.backend_model or args.model, wrapper=args.wrapper,
                            preset=args.preset, host=args.host, port=args.port)
    launch(build_demo(startup), startup.host, startup.port)
    return 0
