"""The page: layout and wiring only. Every handler is a function of `playground.page`."""

from __future__ import annotations

import argparse

import gradio as gr

from playground.config import StartupConfig
from ui import api
from ui.workbench import CSS, build_workbench


def build_demo(startup: StartupConfig) -> gr.Blocks:
    """The whole page: the workbench, plus the named API endpoints."""
    with build_workbench(startup) as demo:
        api.register()
    return demo


def launch(demo: gr.Blocks, host: str, port: int, **extra):
    """Start serving; the same settings for `python app.py` and the tests."""
    demo.queue(default_concurrency_limit=None)
    # prompts can be private: no monitoring dashboard, no run history kept in the browser (docs/SECURITY.md)
    return demo.launch(server_name=host, server_port=port, css=CSS, enable_monitoring=False, run_history=False,
                       footer_links=["api", "settings"], show_error=True, **extra)


def serve(args: argparse.Namespace) -> int:
    """Serve the page; `playground.cli` has already refused an exposed address without --auth."""
    startup = StartupConfig(backend_type=args.backend_type, backend_url=args.backend_url,
                            backend_model=args.backend_model or args.model, wrapper=args.wrapper,
                            preset=args.preset, host=args.host, port=args.port)
    extra = {}
    if getattr(args, "auth", None):
        extra["auth"] = [tuple(args.auth)]
        extra["auth_message"] = "Prompt Format Playground: sign in with the user name and password given to --auth."
    if getattr(args, "share", False):
        extra["share"] = True
    launch(build_demo(startup), startup.host, startup.port, **extra)
    return 0
