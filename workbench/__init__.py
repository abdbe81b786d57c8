"""The page face's logic, in plain functions that know nothing of Gradio (`ui/` wires them).

panels: one panel's preview, presets, backend checks, generation; turns: multi-turn editing, the
chat view, history and sessions; scoring_tab: the Scoreboard tab's runs.
"""
