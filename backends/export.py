"""Copy the last request as curl or as Python: the recorded call, secrets masked as in the record.

The API key never appears: a masked Authorization header becomes a reference to the environment
variable BACKEND_API_KEY, which the user sets before running the command.
"""

from __future__ import annotations

import json
import shlex

from .base import SECRET_MASK

KEY_VAR = "BACKEND_API_KEY"


def _headers(record: dict) -> dict:
    return dict(record.get("headers") or {})


def _is_masked(value: str) -> bool:
    return SECRET_MASK in value


def as_curl(record: dict) -> str:
    """A shell command reproducing `record` ({"method", "url", "headers", "json"})."""
    method = (record.get("method") or "POST").upper()
    if method == "EMBEDDED":
        return "# the embedded backend runs in this process: there is no HTTP request (see 'copy as Python')"
    if method == "WEBSOCKET":
        body = json.dumps(record.get("json"), ensure_ascii=False)
        return (f"# a websocket request: curl cannot send it; with websocat:\n"
                f"echo {shlex.quote(body)} | websocat {shlex.quote(record.get('url', ''))}")
    parts = ["curl", "-sS", "-N"] if (record.get("json") or {}).get("stream") else ["curl", "-sS"]
    if method != "GET" or record.get("json") is not None:
        parts += ["-X", method]
    parts.append(shlex.quote(record.get("url", "")))
    for name, value in _headers(record).items():
        if _is_masked(str(value)):
            parts += ["-H", f'"{name}: {str(value).replace(SECRET_MASK, "$" + KEY_VAR)}"']
        else:
            parts += ["-H", shlex.quote(f"{name}: {value}")]
    if record.get("json") is not None:
        parts += ["--data-raw", shlex.quote(json.dumps(record["json"], ensure_ascii=False))]
    return " \\\n  ".join(parts)


def as_python(record: dict) -> str:
    """A Python script (requests) reproducing `record`; it prints the raw response as it arrives."""
    method = (record.get("method") or "POST").upper()
    body = json.dumps(record.get("json"), ensure_ascii=False, indent=2)
    if method == "EMBEDDED":
        return ("from llama_cpp import Llama\n\n"
                f"llm = Llama(model_path={record.get('model')!r}, n_ctx=4096, verbose=False)\n"
                f"args = json.loads({body!r})\n"
                "for chunk in llm.create_completion(**args, stream=True):\n"
                "    print(chunk['choices'][0]['text'], end='', flush=True)\n").replace(
                    "from llama_cpp", "import json\n\nfrom llama_cpp", 1)
    lines = ["import json", "import os", ""]
    if method == "WEBSOCKET":
        lines += ["from websockets.sync.client import connect", "",
                  f"body = json.loads({body!r})",
                  f"with connect({record.get('url', '')!r}) as ws:",
                  "    ws.send(json.dumps(body))",
                  "    for frame in ws:",
                  "        event = json.loads(frame)",
                  "        print(event.get('text', ''), end='', flush=True)",
                  "        if event.get('event') == 'stream_end':",
                  "            break", ""]
        return "\n".join(lines)
    lines += ["import requests", ""]
    headers = []
    for name, value in _headers(record).items():
        if _is_masked(str(value)):
            prefix, _, suffix = str(value).partition(SECRET_MASK)
            headers.append(f"    {name!r}: {prefix!r} + os.environ[{KEY_VAR!r}] + {suffix!r},")
        else:
            headers.append(f"    {name!r}: {value!r},")
    lines += ["headers = {", *headers, "}"]
    stream = bool((record.get("json") or {}).get("stream"))
    if record.get("json") is not None:
        lines.append(f"body = json.loads({body!r})")
        call = f"requests.request({method!r}, {record.get('url', '')!r}, headers=headers, json=body, stream={stream})"
    else:
        call = f"requests.request({method!r}, {record.get('url', '')!r}, headers=headers)"
    lines += [f"response = {call}", "response.raise_for_status()"]
    if stream:
        lines += ["for line in response.iter_lines(decode_unicode=True):", "    print(line, flush=True)"]
    else:
        lines += ["print(response.text)"]
    return "\n".join(lines) + "\n"
