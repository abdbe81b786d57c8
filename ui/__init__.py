"""The page face's Gradio layer: layout and event wiring only; the logic is in `workbench`."""
