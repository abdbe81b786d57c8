"""The one base of every error a user can cause: its message is a sentence to show as is.

The faces catch `UserError` alone (the CLI prints it and exits 2, the API raises it as gr.Error,
the endpoint answers it in OpenAI's error shape); anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Something the user can fix; `str(error)` says what and how."""
