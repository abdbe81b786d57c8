"""The page face's logic, in plain functions that know nothing of Gradio (`ui/` wires them).

panels: one panel's control schema, preview, presets, backend checks, generation; turns: multi-turn
editing, the chat view, history and session files; sessions: what the server keeps per browser
session (runs, Stop flags), dropped when its page closes; scoring_tab: the Scoreboard tab's runs.
"""
