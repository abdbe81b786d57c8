"""The one error type every backend raises."""

from __future__ import annotations

from core.errors import UserError


class BackendError(UserError):
    """One clear sentence for the user: what failed, where, and what to check.

    `partial_text` is the text a stream had delivered before it failed ("" if none): the faces show it
    beside the error, so a cut stream loses nothing."""

    def __init__(self, message: str, partial_text: str = ""):
        super().__init__(message)
        self.partial_text = partial_text
