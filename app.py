"""Prompt Format Playground. `python app.py` serves the page on http://127.0.0.1:7860;
`python app.py --help` lists the commands (render, parse, generate, wrappers, score).

This file is the composition root: the CLI face parses the arguments, and serving puts the page,
the API face and the OpenAI-compatible endpoint (/v1) on one server. No face imports another;
only this file sees them all.
"""

import os
import sys
import threading

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # never send telemetry

import cli  # noqa: E402
from backends import embedded  # noqa: E402  (the CLI has imported it: it costs nothing here)
from flow.admission import BackendSlots  # noqa: E402
from flow.startup import StartupConfig  # noqa: E402


def build_app(config: StartupConfig):
    """The page with the named API endpoints, as one Gradio Blocks, sharing one bound on backend requests."""
    # imported here, not at the top: the CLI's own commands (render, parse...) run without loading Gradio
    import api
    from ui.page import build_page

    slots = BackendSlots(config.max_generations, config.max_generations_per_session)
    return build_page(config, slots, add_api=lambda: api.register(slots))


def build_endpoint(config: StartupConfig) -> list:
    """The /v1 routes, with the traffic ring the page's Traffic tab reads."""
    import endpoint  # only when serving, like the page (build_app)
    from flow import traffic

    traffic.configure(config.traffic_size, config.traffic_log or None)
    return endpoint.routes(config)


def launch(blocks, host: str, port: int, auth: tuple[str, str] | None = None, share: bool = False, routes=(), **extra):
    """Start serving; the same settings for `python app.py` and the tests. `routes` go on the same server
    before Gradio's own (FastAPI's `routes` argument), so /v1 is served on the page's host and port."""
    from ui.page import CSS  # build_app has imported it already

    if auth:
        extra["auth"] = [tuple(auth)]
        extra["auth_message"] = "Prompt Format Playground: sign in with the user name and password given to --auth."
    # share is the app's own flag, never GRADIO_SHARE from the environment (which would bypass the --auth refusal);
    # prompts can be private: no monitoring dashboard, no run history kept in the browser (docs/SECURITY.md)
    # quiet: Gradio's own start-up lines would tell the user to set `share=True` in `launch()`; serve() says where
    # the app is instead (a public link, with --share, is still printed by Gradio)
    return blocks.launch(server_name=host, server_port=port, share=share, css=CSS, enable_monitoring=False,
                         run_history=False, footer_links=["api", "settings"], show_error=True, quiet=True,
                         app_kwargs={"routes": list(routes)}, **extra)


def serve(config: StartupConfig) -> int:
    """Serve the page, the API and /v1; the CLI has already refused an exposed address without --auth."""
    blocks = build_app(config)
    _, url, _ = launch(blocks, config.host, config.port, auth=config.auth, share=config.share,
                       routes=build_endpoint(config), prevent_thread_lock=True)
    print(f"Prompt Format Playground on {url} (the page and its API; the OpenAI-compatible endpoint at {url}v1). "
          "Ctrl+C stops it.", flush=True)
    if config.backend_type == "embedded":  # once the page is served: loading the model must not delay it
        threading.Thread(target=embedded.preload, args=(config.backend_model,), name="preload-model", daemon=True).start()
    blocks.block_thread()
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv, serve=serve)


if __name__ == "__main__":
    sys.exit(main())
