"""Prompt Format Playground. `python app.py` serves the page on http://127.0.0.1:7860;
`python app.py --help` lists the commands (render, parse, generate, wrappers)."""

import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # never send telemetry

from playground.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
