"""Protocol-faithful test servers for every backend type, written from the servers' documented wire formats.

Each fake records the exact requests it received, answers with the server's own response shapes,
stream framing, end markers, error bodies and version quirks, and can inject failures.
"""

from .servers import FakeServer, fake_server  # noqa: F401
