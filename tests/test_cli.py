"""The command line, run as a user runs it: `python app.py ...` in a subprocess."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

EXAMPLE = str(ROOT / "core" / "example_conversation.json")


def app(*args, stdin="", env=None):
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, timeout=300, env=env)


def test_render_prints_the_prompt_exactly_with_nothing_appended():
    done = app("render", "--wrapper", "chatml", "--conversation", EXAMPLE)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("<|im_start|>system\n") and done.stdout.endswith('<|im_start|>assistant\n{\n  "function":')


def test_render_with_a_template_file(tmp_path):
    template = tmp_path / "t.jinja"
    template.write_text("{% for m in messages %}[{{ m.role }}]{% endfor %}")
    done = app("render", "--wrapper", "chatml", "--conversation", EXAMPLE, "--template", str(template))
    assert done.stdout == "[system][user]"


def test_parse_reads_stdin_and_prints_the_result_json():
    raw = ' "send_message",\n  "params": {\n    "inner_thoughts": "He corrected me.",\n    "message": "Sorry, Brad!"\n  }\n}'
    done = app("parse", "--wrapper", "chatml", stdin=raw)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["function_call"] == {"name": "send_message", "arguments": {"message": "Sorry, Brad!"}}
    assert result["inner_thoughts"] == "He corrected me." and result["error"] is None


def test_parse_failure_is_a_result_with_an_error_not_a_crash():
    done = app("parse", "--wrapper", "chatml", stdin="I am not JSON at all")
    assert done.returncode == 0
    assert json.loads(done.stdout)["error"]["message"]


def test_wrappers_lists_names():
    names = app("wrappers").stdout.split()
    assert "chatml" in names and "airoboros-l2-70b-2.1" in names


def test_generate_on_the_embedded_model_prints_prompt_raw_parsed_request_usage():
    done = app("generate", "--backend-type", "embedded", "--wrapper", "chatml", "--conversation", EXAMPLE,
               "--preset", "deterministic", "--param", "max_new_tokens=16", "--param", 'stop=["\\nUSER:"]')
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert {"prompt", "raw", "parsed", "request", "usage"} <= set(out)
    assert out["request"]["json"]["stop"] == ["\nUSER:"]  # --param replaces the wrapper's stop list
    assert out["request"]["json"]["max_tokens"] == 16 and out["request"]["json"]["top_k"] == 1
    assert out["usage"]["completion_tokens"] <= 16 and out["usage"]["prompt_tokens"] > 100


def test_generate_against_a_real_openai_compatible_server(llama_cpp_server):
    done = app("generate", "--backend-type", "openai", "--backend-url", llama_cpp_server, "--wrapper", "chatml",
               "--conversation", EXAMPLE, "--param", "max_new_tokens=8")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["request"]["url"] == llama_cpp_server + "/v1/completions"
    assert out["raw"] and out["request"]["json"]["prompt"] == out["prompt"]


@pytest.mark.parametrize("args, stdin, message", [
    (["render", "--wrapper", "no-such-wrapper", "--conversation", EXAMPLE], "", "unknown wrapper 'no-such-wrapper'"),
    (["render", "--wrapper", "chatml", "--conversation", "/no/such/file.json"], "", "cannot read the conversation file"),
    (["parse", "--wrapper", "chatml", "--functions", "/no/such.json"], "x", "cannot read the functions file"),
    (["generate", "--backend-type", "openai", "--backend-url", "http://127.0.0.1:9", "--wrapper", "chatml",
      "--conversation", EXAMPLE], "", "cannot connect to http://127.0.0.1:9/v1/completions"),
    (["generate", "--backend-type", "embedded", "--wrapper", "chatml", "--conversation", EXAMPLE, "--param", "warmth=2"],
     "", "unknown sampling parameter 'warmth'"),
    (["generate", "--backend-type", "martian", "--wrapper", "chatml", "--conversation", EXAMPLE], "", "unknown backend type 'martian'"),
])
def test_errors_are_one_sentence_on_stderr_with_status_2(args, stdin, message):
    done = app(*args, stdin=stdin)
    assert done.returncode == 2
    assert message in done.stderr and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_bad_conversation_json_and_template_errors_exit_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"messages": [}')
    done = app("render", "--wrapper", "chatml", "--conversation", str(bad))
    assert done.returncode == 2 and "not valid JSON" in done.stderr
    template = tmp_path / "t.jinja"
    template.write_text("a\n{{ raise_exception('no tools here') }}")
    done = app("render", "--wrapper", "chatml", "--conversation", EXAMPLE, "--template", str(template))
    assert done.returncode == 2 and "no tools here (template line 2)" in done.stderr


@pytest.mark.parametrize("flag, message", [
    (["--wrapper", "nope"], "unknown wrapper 'nope'"),
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["--backend-type", "nope"], "unknown backend type 'nope'"),
])
def test_serving_with_a_wrong_choice_stops_with_a_sentence(flag, message):
    done = app(*flag)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_environment_presets_the_backend_like_memgpt():
    from flow.startup import from_environment

    assert from_environment({}).backend_type == "embedded"
    config = from_environment({"OPENAI_API_BASE": "http://127.0.0.1:5000/v1"})
    assert (config.backend_type, config.backend_url) == ("openai", "http://127.0.0.1:5000/v1")
    assert from_environment({"BACKEND_TYPE": "openai"}).backend_type == "openai"


LONE = '{"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "bad \\ud800 here"}], "functions": []}'


def test_lone_surrogates_are_printed_as_u_fffd_with_a_note(tmp_path):
    conversation = tmp_path / "lone.json"
    conversation.write_text(LONE)
    done = app("render", "--wrapper", "chatml", "--conversation", str(conversation))
    assert done.returncode == 0, done.stderr
    assert "user\nbad \ufffd here<|im_end|>" in done.stdout
    assert done.stderr.startswith("note: 1 invalid character (a lone UTF-16 surrogate") and "U+FFFD" in done.stderr
    done = app("parse", "--format", "hermes", stdin='<tool_call>{"name": "f", "arguments": {"a": "x\\ud800y"}}</tool_call>')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tool_calls"][0]["arguments"] == {"a": "x\ufffdy"} and "U+FFFD" in done.stderr
