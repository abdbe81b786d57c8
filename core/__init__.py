"""The bottom layer: conversations, the user folder and the user-facing error base.

Imports nothing of the app; everything else may import it.
"""
