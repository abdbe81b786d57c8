"""The Gradio layer: layout and event wiring only; the logic is in `playground`."""
