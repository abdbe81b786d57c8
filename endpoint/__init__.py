"""The OpenAI-compatible face: `GET /v1/models` (the wrapper names) and `POST /v1/chat/completions`.

A fifth face on the same flow: the request becomes a conversation and a `flow.GenerateRequest`
(`model` = the wrapper, the start-up backend), `flow.generate_stream` runs it, and the run goes
back in OpenAI's shapes, streamed from the incremental parse (`flow.streaming`). Every request is
recorded in the traffic ring (`flow.traffic`) that the page's Traffic tab shows.
"""

from .server import routes

__all__ = ["routes"]
