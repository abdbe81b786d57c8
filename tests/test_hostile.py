"""Hostile and bad input: templates, file names, faults while saving, secrets.

Each hostile case asserts the sentence the user sees and that the next, ordinary request is still
served (by the library, the page's handler and the app served for real through gradio_client).
"""

from __future__ import annotations

import http.server
import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
from contextlib import redirect_stderr
from pathlib import Path

import pytest

import backends
import presets
import wrappers
from backends import BackendError, Settings
from core import userdir
from workbench import panels
from core.conversation import EXAMPLE_PATH, Conversation
from wrappers.render import MAX_OUTPUT_CHARS, TemplateError, render

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = EXAMPLE_PATH.read_text()
LIMIT_SECONDS = 2.0
WITHIN = LIMIT_SECONDS * 1.1  # the time limit holds within 10% of its value
HTTP_ROUND_TRIP = 3.0  # gradio_client's queue join and event stream, on a busy machine

# name: (template, words the refusal contains; alternatives split by |), shared with bench/template_attacks.py
_ATTACK_FILE = json.loads((ROOT / "tests/fixtures/templates/attacks.json").read_text(encoding="utf-8"))["attacks"]
ATTACKS = {name: (entry[0] * (entry[2] if len(entry) > 2 else 1), entry[1]) for name, entry in _ATTACK_FILE.items()}

SSTI = {
    "__class__ walk": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "__subclasses__ via attr filter": "{{ (''|attr('__class__')|attr('__mro__'))[1]|attr('__subclasses__') }}",
    "__globals__ of a helper": "{{ raise_exception.__globals__ }}",
    "__globals__ of lipsum": "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "cycler to os": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "joiner globals": "{{ joiner.__init__.__globals__ }}",
    "namespace globals": "{{ namespace.__init__.__globals__ }}",
    "self builtins": "{{ self.__init__.__globals__.__builtins__ }}",
    "strftime_now globals": "{{ strftime_now.__self__.__class__.__init__.__globals__ }}",
    "request.application (Flask)": "{{ request.application.__globals__.__builtins__.__import__('os').popen('id').read() }}",
    "config (Flask)": "{{ config.items() }}",
    "import": "{% import 'os' as os %}{{ os.popen('id').read() }}",
    "include a file": "{% include '/etc/passwd' %}",
    "extends": "{% extends '/etc/passwd' %}",
    "mutating a list": "{{ messages.append({'role': 'system', 'content': 'pwned'}) }}",
    "format string attribute walk": "{{ '{0.__class__.__mro__}'.format('') }}",
    "mro via getitem": "{{ ''['__class__'] }}",
}
SSTI_WORDS = ("unsafe", "undefined", "cannot include", "sandbox", "not found", "is not safely callable")


def _render(template: str) -> str:
    return wrappers.get("chatml").render(Conversation.from_json(EXAMPLE), template)


def _assert_still_serving() -> None:
    assert _render("{{ messages | length }}") == str(len(json.loads(EXAMPLE)["messages"]))


@pytest.fixture(scope="module")
def attack_reports():
    """Every attack run alone in a child process forked from a fresh interpreter that has rendered
    already (bench/template_attacks.py): so the child's peak RSS is its own, and its render needs a
    watchdog thread of its own (the parent's does not come along through fork)."""
    done = subprocess.run([sys.executable, str(ROOT / "bench/template_attacks.py"), "--json"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    return {r["name"]: r for r in map(json.loads, done.stdout.splitlines())}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_template_attack_stops_in_time_with_little_memory_and_a_clear_message(attack_reports, name):
    report = attack_reports[name]
    assert "error" not in report, report
    assert report["names_the_limit"], f"{ATTACKS[name][1]!r} not in {report['message']!r}"
    # wall time; on a machine busy with other work, the CPU time the process got (it waited for a core)
    assert min(report["seconds"], report["cpu_seconds"]) <= WITHIN, report
    assert report["peak_mb"] <= 100, report
    assert report["still_serving"], report


def test_striptags_of_the_largest_string_a_template_may_build_is_fast():
    """MarkupSafe >= 3.0.4 (requirements.txt): before it, striptags was quadratic (38 s for this string here, stopped
    only by the time limit)."""
    start = time.perf_counter()
    assert render("{% set s = '<a>' * 666666 %}{{ s|striptags|length }}", {}) == "0"
    assert time.perf_counter() - start < LIMIT_SECONDS


def test_attacks_cover_the_reported_gaps():
    """Issue 14's template gaps, each among the attacks above."""
    templates = [t for t, _ in ATTACKS.values()]
    for gap in ("[1]|batch(10**8, 'x')|list|length", "('a'.encode() * 10**9)|length", "'a'.encode() * 10**9 }}",
                "[1]|slice(10**7)|list|length", "'a'.encode().zfill(10**8)", "'a'.encode().center(10**8)",
                "'a'.encode().ljust(10**8)"):
        assert any(gap in t for t in templates), gap


@pytest.mark.parametrize("name", list(SSTI))
def test_template_injection_is_refused_by_the_sandbox(name):
    with pytest.raises(TemplateError) as caught:
        render(SSTI[name], {"messages": []})
    message = str(caught.value)
    assert any(w in message for w in SSTI_WORDS), message
    assert "uid=" not in message and "root:" not in message
    _assert_still_serving()


def test_unsafe_attribute_is_named_not_printed_as_empty():
    with pytest.raises(TemplateError, match=r"blocked by the template sandbox: access to attribute '__globals__'"):
        render("{{ raise_exception.__globals__ }}", {})


def test_printing_a_name_the_template_was_never_given_is_an_error():
    # Flask-style probes name what is missing instead of printing nothing
    for name in ("config", "request", "settings"):
        with pytest.raises(TemplateError, match=rf"'{name}' is undefined"):
            render("{{ %s }}" % name, {})
    # as in transformers, a missing key, attribute or argument prints as nothing, and an undefined
    # name is falsy and takes a default
    assert render("{{ m.missing }}|{{ [] | first }}|{{ 'a' if false }}|{% if config %}x{% endif %}|"
                  "{{ config | default('d') }}|{% if config is defined %}x{% endif %}", {"m": {}}) == "||||d|"
    assert render("{% macro f(a) %}[{{ a }}]{% endmacro %}{{ f() }}", {}) == "[]"


def test_page_preview_shows_the_limit_in_place_of_the_prompt():
    text, status = panels.preview("chatml", ATTACKS["string multiplication"][0], EXAMPLE)
    assert text.startswith("Template error at line 1:") and "over 2,000,000 characters" in text
    assert status.startswith("❌ Template error")
    text, status = panels.preview("chatml", ATTACKS["nested loops"][0], EXAMPLE)
    assert "longer than 2 s" in status
    text, status = panels.preview("chatml", "{{ messages[0].role }}", EXAMPLE)
    assert text == "system" and status.startswith("✅")


def test_the_limits_leave_ordinary_big_prompts_alone():
    assert len(render("{{ 'a' * n }}", {"n": MAX_OUTPUT_CHARS})) == MAX_OUTPUT_CHARS
    text = render("{% for i in range(100000) %}{{ i % 10 }}{% endfor %}", {})
    assert len(text) == 100000
    assert render("{{ '%5.2f|%-4s|' % (3.14159, 'ab') }}{{ '{:>6}'.format('x') }}", {}) == ' 3.14|ab  |     x'
    assert render("{{ 2 ** 64 }}", {}) == str(2 ** 64)
    assert render("{% set ns = namespace(s='') %}{% for m in messages %}{% set ns.s = ns.s ~ m %}{% endfor %}{{ ns.s }}",
                  {"messages": ["a", "b"]}) == "ab"


def test_limits_hold_in_concurrent_renders():
    results, seconds = {}, {}

    def run(i):
        start = time.monotonic()
        try:
            results[i] = render(ATTACKS["nested loops"][0] if i % 2 else "{{ n }}", {"n": i})
        except TemplateError as e:
            results[i] = e
        seconds[i] = time.monotonic() - start

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(6):
        if i % 2:  # each runaway render stops at its own deadline, though three share the interpreter
            assert isinstance(results[i], TemplateError) and "longer than 2 s" in str(results[i])
            assert seconds[i] <= WITHIN + 0.5, seconds  # three CPU-bound threads take turns on the GIL
        else:
            assert results[i] == str(i)


def test_a_stopped_render_leaves_nothing_pending_in_its_thread():
    """The watchdog stops a render by raising in its thread; nothing of it may land after render returns."""
    with pytest.raises(TemplateError, match="longer than 2 s"):
        render(ATTACKS["nested loops"][0], {})
    total = 0
    for i in range(3_000_000):  # ~0.5 s of plain Python in the same thread, past where a late stop would land
        total += i
    assert total == 3_000_000 * 2_999_999 // 2
    assert render("{{ 1 + 1 }}", {}) == "2"


# --- the same, through the app served for real ---------------------------------------------------------

@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    c = Client(app_url, verbose=False)
    yield c
    c.close()


@pytest.mark.parametrize("name", ["nested loops", "string multiplication", "recursive macro", "block capture",
                                  "batch with a fill value", "bytes multiplication"])
def test_app_refuses_a_runaway_template_and_serves_the_next_request(client, name):
    template, words = ATTACKS[name]
    start = time.monotonic()
    with pytest.raises(Exception) as caught:
        client.predict("chatml", EXAMPLE, template, api_name="/render")
    assert time.monotonic() - start < WITHIN + HTTP_ROUND_TRIP
    assert words in str(caught.value)
    assert client.predict("chatml", EXAMPLE, "{{ messages[0].role }}", api_name="/render") == "system"


@pytest.mark.parametrize("name", ["__class__ walk", "cycler to os", "import", "config (Flask)"])
def test_app_refuses_template_injection_and_serves_the_next_request(client, name):
    with pytest.raises(Exception) as caught:
        client.predict("chatml", EXAMPLE, SSTI[name], api_name="/render")
    assert any(w in str(caught.value) for w in SSTI_WORDS), str(caught.value)
    assert client.predict("chatml", EXAMPLE, "{{ messages[0].role }}", api_name="/render") == "system"


def test_app_parses_hostile_output_and_serves_the_next_request(client):
    hostile = "{" * 50_000 + b"\xff\xfe\xc3".decode("utf-8", errors="replace") + "\x00" + '"function": "x"' + "]" * 50_000
    result = client.predict(hostile, "chatml", None, None, api_name="/parse")
    assert isinstance(result, dict) and "error" in result
    ok = client.predict(' "send_message", "params": {"message": "hi"}}', "chatml", None, None, api_name="/parse")
    assert ok["tool_calls"][0]["name"] == "send_message"


# --- files ---------------------------------------------------------------------------------------------

BAD_NAMES = {
    "../../x": "not a usable name",
    "..": "not a usable name",
    "../wrappers/chatml": "not a usable name",
    "/etc/passwd": "not a usable name",
    "a/b": "not a usable name",
    "a\\b": "not a usable name",
    ".hidden": "not a usable name",
    "a..b": "not a usable name",
    "": "not a usable name",
    "x" * 65: "not a usable name",
    "name\x00.yaml": "not a usable name",
    "new\nline": "not a usable name",
    "CON": "reserved file name",
    "nul.txt": "reserved file name",
    "com1": "reserved file name",
    "Lpt9": "reserved file name",
    " chatml": "starts or ends with a space",
    "chatml ": "starts or ends with a space",
}


@pytest.mark.parametrize("name", list(BAD_NAMES))
def test_wrapper_save_refuses_bad_names_and_writes_nothing(user_home, name):
    names, selected, status = panels.save_wrapper("chatml", name, "MINE")
    assert status.startswith("❌") and BAD_NAMES[name] in status
    assert selected == "chatml"
    written = [p for p in user_home.rglob("*") if p.is_file()] if user_home.exists() else []
    assert written == []
    assert wrappers.get("chatml").template != "MINE"
    _, _, ok = panels.save_wrapper("chatml", "fine-name", "MINE")  # the next save still works
    assert ok.startswith("✅")


@pytest.mark.parametrize("name", ["../../x", "CON", "a/b", " deterministic"])
def test_preset_save_refuses_bad_names(user_home, name):
    with pytest.raises(presets.PresetError) as caught:
        presets.save(name, {"temperature": 0.5})
    assert BAD_NAMES.get(name, "starts or ends with a space") in str(caught.value)
    assert not (user_home / "presets").exists() or list((user_home / "presets").iterdir()) == []


@pytest.mark.parametrize("name", ["chatml", "llama3", "qwen3"])
def test_a_builtin_wrapper_cannot_be_overwritten(user_home, name):
    original = wrappers.get(name).template
    names, selected, status = panels.save_wrapper("chatml", name, "OVERWRITE")
    assert status.startswith("❌") and "built-in name" in status
    assert wrappers.get(name).template == original
    assert not (user_home / "wrappers" / f"{name}.yaml").exists()


def test_a_builtin_preset_cannot_be_overwritten(user_home):
    before = presets.load("deterministic")
    with pytest.raises(presets.PresetError, match="built-in name"):
        presets.save("deterministic", {"temperature": 1.7})
    assert presets.load("deterministic") == before


def test_a_user_file_planted_under_a_builtin_name_never_shadows_it(user_home):
    folder = user_home / "wrappers"
    folder.mkdir(parents=True)
    (folder / "chatml.yaml").write_text("name: chatml\ntemplate: PLANTED\n")
    assert wrappers.get("chatml").template != "PLANTED"
    assert wrappers.names().count("chatml") == 1


def test_check_name_keeps_good_names():
    for name in ("my-wrapper", "a", "chatml.v2", "x+y_z", "A1" * 32):
        assert userdir.check_name(name, taken_by_builtin=False) == name


def test_atomic_write_replaces_the_whole_file(tmp_path):
    path = tmp_path / "w" / "a.yaml"
    userdir.atomic_write(path, "old")
    userdir.atomic_write(path, "new")
    assert path.read_text() == "new"
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.yaml"]  # no temporary left


@pytest.mark.parametrize("fault", ["replace", "fsync", "write"])
def test_a_crash_during_save_keeps_the_old_file_whole(tmp_path, monkeypatch, fault):
    path = tmp_path / "a.yaml"
    userdir.atomic_write(path, "old content\n" * 100)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("simulated crash")  # BaseException, like a kill between write and rename

    target = {"replace": (os, "replace"), "fsync": (os, "fsync")}.get(fault)
    if target:
        monkeypatch.setattr(*target, crash)
        with pytest.raises(KeyboardInterrupt):
            userdir.atomic_write(path, "new content\n" * 100)
    else:
        with pytest.raises(TypeError):
            userdir.atomic_write(path, 12345)  # not text: the write itself fails
    monkeypatch.undo()
    assert path.read_text() == "old content\n" * 100
    assert [p.name for p in tmp_path.iterdir()] == ["a.yaml"]  # the temporary file was cleaned up
    userdir.atomic_write(path, "new content\n")  # and the next save works
    assert path.read_text() == "new content\n"


CRASHER = r"""
import os, sys, signal
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from core import userdir
real_replace = os.replace
def replace(src, dst):
    print("WRITTEN", src, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # killed between the write and the rename
os.replace = replace
userdir.atomic_write(Path(sys.argv[2]), "NEW " * 100000)
"""


def test_a_process_killed_between_write_and_rename_loses_nothing(tmp_path):
    path = tmp_path / "my.yaml"
    userdir.atomic_write(path, "OLD " * 100000)
    done = subprocess.run([sys.executable, "-c", CRASHER, str(ROOT), str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == -9, done.stderr
    temp = Path(done.stdout.split("WRITTEN ", 1)[1].strip())
    assert path.read_text() == "OLD " * 100000  # the old content, whole
    assert temp.read_text() == "NEW " * 100000  # and the new content, whole, in the temporary beside it
    assert temp.parent == path.parent and temp.name.startswith(".my.yaml.") and temp.name.endswith(".tmp")
    assert "my" in [p.stem for p in tmp_path.glob("*.yaml")] and len(list(tmp_path.glob("*.yaml"))) == 1  # not listed


def test_concurrent_saves_leave_one_whole_version(tmp_path):
    path = tmp_path / "race.yaml"
    texts = [f"{i}" * 200_000 for i in range(8)]
    threads = [threading.Thread(target=userdir.atomic_write, args=(path, t)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert path.read_text() in texts
    assert [p.name for p in tmp_path.iterdir()] == ["race.yaml"]


# --- secrets -------------------------------------------------------------------------------------------

SECRET = "sk-test-SECRET-d3adb33f-never-show"


class _EchoHandler(http.server.BaseHTTPRequestHandler):
    """A server refusing the key; under /echo its error bodies quote the Authorization header back."""

    def log_message(self, *args):
        pass

    def _reply(self, status: int, body: dict):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self):
        echoed = f": {self.headers.get('Authorization')}" if self.path.startswith("/echo") else ""
        self._reply(401, {"error": {"message": f"invalid api key{echoed}"}})

    def do_GET(self):
        self._refuse()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.endswith("/ok/v1/completions"):
            data = (b'data: {"choices": [{"text": "hi", "finish_reason": "stop"}]}\n\n' b"data: [DONE]\n\n")
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(data)
            return
        self._refuse()


@pytest.fixture(scope="module")
def echo_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _settings(url: str) -> Settings:
    return Settings(url=url, api_key=SECRET, timeout=10)


def test_api_key_is_masked_in_the_request_view(echo_server):
    completion = backends.create("openai", _settings(echo_server + "/ok")).complete("Hi", {"max_new_tokens": 4})
    assert completion.text == "hi"
    assert SECRET not in json.dumps(completion.to_dict())
    assert completion.request["headers"]["Authorization"] != f"Bearer {SECRET}"


def _failing_calls(url: str) -> list[str]:
    messages = []
    for call in (lambda b: b.complete("Hi", {}), lambda b: b.check(), lambda b: b.models()):
        with pytest.raises(BackendError) as caught:
            call(backends.create("openai", _settings(url)))
        messages.append(str(caught.value))
    assert all("401" in m for m in messages), messages
    return messages


def test_api_key_never_appears_in_logs_or_stderr(echo_server, caplog):
    caplog.set_level(logging.DEBUG)
    stderr = io.StringIO()
    with redirect_stderr(stderr):
        messages = _failing_calls(echo_server)
        _failing_calls(echo_server + "/echo")
    assert caplog.text  # httpx did log the requests
    assert SECRET not in caplog.text and SECRET not in stderr.getvalue()
    assert not any(SECRET in m for m in messages)


def test_api_key_never_appears_in_error_messages_even_when_the_server_echoes_it(echo_server):
    for message in _failing_calls(echo_server + "/echo"):
        assert SECRET not in message, message


def test_api_key_never_appears_in_the_page_status_export_or_saved_session(echo_server):
    def controls_for(url: str) -> dict:
        known = {"backend_type": "openai", "url": url, "model": "", "api_key": SECRET, "timeout": 10, "extra_json": "",
                 "wrapper": "chatml", "template": wrappers.get("chatml").template, "preset": "deterministic",
                 **panels.preset_values("deterministic"), "stop_json": "", "grammar": ""}
        return known  # controls added later: their defaults

    controls = controls_for(echo_server)
    config = panels.PanelConfig.from_values(controls)
    outputs = list(panels.run_generation(config, EXAMPLE))
    assert outputs[-1][3].startswith("❌") and "401" in outputs[-1][3]
    assert SECRET not in json.dumps(outputs, default=str)
    good = panels.PanelConfig.from_values(controls_for(echo_server + "/ok"))
    *_, last = panels.run_generation(good, EXAMPLE)
    record = last[4]
    assert record is not None and SECRET not in json.dumps(last, default=str)
    exported = panels.export_panel(record, "chatml", wrappers.get("chatml").template)
    assert SECRET not in json.dumps(exported)
    state = panels.session_state(EXAMPLE, "", "", 1, [controls])
    assert SECRET not in json.dumps(state)


def test_api_key_never_appears_in_a_cli_run(echo_server, tmp_path):
    conversation = tmp_path / "c.json"
    conversation.write_text(EXAMPLE)
    env = {**os.environ, "OPENAI_API_KEY": SECRET, "PFP_LOG_LEVEL": "DEBUG"}
    done = subprocess.run([sys.executable, "app.py", "generate", "--backend-type", "openai", "--backend-url", echo_server,
                           "--wrapper", "chatml", "--conversation", str(conversation), "--timeout", "10"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("error: ")
    assert SECRET not in done.stdout + done.stderr
