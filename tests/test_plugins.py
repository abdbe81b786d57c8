"""Python wrappers with MemGPT's interface, dropped into the user folder's plugins/."""

from __future__ import annotations

import json
import os
import textwrap
import time

import pytest

import wrappers
from core.conversation import Conversation, example
from wrappers import TemplateError, WrapperError
from wrappers.lint import lint

PLUGIN = textwrap.dedent('''
    """ChatML with MemGPT's JSON calls, as a Python wrapper."""
    import json

    from wrappers.plugins import LLMChatCompletionWrapper


    class ChatMLPlugin(LLMChatCompletionWrapper):
        """A hand-written ChatML wrapper."""

        supports_first_message = True
        stop = ["<|im_end|>"]

        def chat_completion_to_prompt(self, messages, functions, first_message=False, function_documentation=None):
            names = ", ".join(f["name"] for f in functions)
            prompt = "".join(f"<|im_start|>{m['role']}\\n{m['content']}<|im_end|>\\n" for m in messages)
            prompt += f"<|im_start|>assistant\\n# functions: {names}\\n" + '{\\n  "function":'
            return prompt + (' "send_message",' if first_message else "")

        def output_to_chat_completion_response(self, raw_llm_output):
            data = json.loads('{\\n  "function":' + raw_llm_output)
            params = data["params"]
            thoughts = params.pop("inner_thoughts", None)
            return {"role": "assistant", "content": thoughts,
                    "function_call": {"name": data["function"], "arguments": json.dumps(params)}}
''')

DUCK = textwrap.dedent('''
    class Plain:
        def chat_completion_to_prompt(self, messages, functions):
            return "\\n".join(m["content"] for m in messages) + "\\nASSISTANT:"

        def output_to_chat_completion_response(self, raw_llm_output):
            return {"role": "assistant", "content": raw_llm_output.strip(), "function_call": None}

    class Other(Plain):
        def output_to_chat_completion_response(self, raw_llm_output):
            raise ValueError("cannot read " + raw_llm_output[:5])
''')


@pytest.fixture
def plugins_dir(user_home):
    path = user_home / "plugins"
    path.mkdir(parents=True)
    return path


def write(path, text):
    path.write_text(text, encoding="utf-8")
    # make sure a rewrite within the same clock tick is seen as a change
    stamp = time.time() + (hash(text) % 1000)
    os.utime(path, (stamp, stamp))
    return path


def test_plugin_is_listed_and_renders_and_parses(plugins_dir):
    write(plugins_dir / "chatml_plugin.py", PLUGIN)
    assert "chatml_plugin" in wrappers.names()
    assert wrappers.names()[-1] == "chatml_plugin"  # after the built-ins
    w = wrappers.get("chatml_plugin")
    assert w.kind == "python" and not w.editable and w.source == str(plugins_dir / "chatml_plugin.py")
    assert w.template == PLUGIN and w.stop == ["<|im_end|>"]
    assert "A hand-written ChatML wrapper." in w.description
    conv = example()
    prompt = w.render(conv)
    names = ", ".join(f["name"] for f in conv.functions)
    assert prompt.startswith("<|im_start|>system\n")
    assert prompt.endswith(f'<|im_start|>assistant\n# functions: {names}\n{{\n  "function":')
    assert w.render(conv, template=w.template) == prompt  # the page sends the shown source back unchanged
    first = Conversation(messages=conv.messages, functions=conv.functions, template_variables={"first_message": True})
    assert w.render(first).endswith('"function": "send_message",')

    raw = ' "send_message",\n  "params": {"inner_thoughts": "Apologise.", "message": "Sorry, Brad!"}\n}'
    r = w.parse(raw, conv)
    assert r.error is None and r.inner_thoughts == "Apologise." and r.content == "Apologise."
    assert r.to_dict()["function_call"] == {"name": "send_message", "arguments": {"message": "Sorry, Brad!"}}
    assert r.checks == []


def test_plugin_parse_gets_validation_and_memgpt_checks(plugins_dir):
    write(plugins_dir / "chatml_plugin.py", PLUGIN)
    w = wrappers.get("chatml_plugin")
    raw = ' "core_memory_append",\n  "params": {"inner_thoughts": "Noting (name)", "name": "human", "content": 3}\n}'
    conv = example()
    first = Conversation(messages=conv.messages, functions=conv.functions, template_variables={"first_message": True})
    sources = [c.source for c in w.parse(raw, first).checks]
    assert sources.count("schema") == 2  # content type + missing request_heartbeat
    assert sources.count("memgpt_first_message") == 2 and sources.count("memgpt_heartbeat") == 1


def test_plugin_errors_become_parse_errors_and_template_errors(plugins_dir):
    write(plugins_dir / "duck.py", DUCK)
    names = wrappers.names()
    assert "duck-Plain" in names and "duck-Other" in names  # several classes: file-Class
    r = wrappers.get("duck-Other").parse("garbage")
    assert r.error.message == "Failed to parse JSON from local LLM response - error: ValueError: cannot read garba"
    plain = wrappers.get("duck-Plain")
    assert plain.parse(" Hello ").content == "Hello" and plain.parse("x").tool_calls == []
    with pytest.raises(TemplateError, match="Python wrapper"):
        plain.render(example(), template="{{ edited }}")
    with pytest.raises(WrapperError, match="Python wrapper"):
        wrappers.save_as(plain, "copy", plain.template)
    assert [x for x in lint(plain, example()) if x.startswith("warning")] == []  # lint works on Python wrappers too


def test_render_exception_is_a_template_error_with_the_plugin_line(plugins_dir):
    write(plugins_dir / "bad_render.py", textwrap.dedent('''
        class W:
            def chat_completion_to_prompt(self, messages, functions):
                return messages[0]["nope"]

            def output_to_chat_completion_response(self, raw_llm_output):
                return {}
    '''))
    with pytest.raises(TemplateError) as e:
        wrappers.get("bad_render").render(example())
    assert "KeyError" in e.value.message and e.value.line == 4


def test_broken_plugins_are_reported_by_name_and_never_break_the_listing(plugins_dir, user_home):
    write(plugins_dir / "good.py", PLUGIN)
    write(plugins_dir / "syntax.py", "def f(:\n")
    write(plugins_dir / "raises.py", "raise RuntimeError('boom')\n")
    write(plugins_dir / "exits.py", "import sys\nsys.exit(3)\n")
    write(plugins_dir / "empty.py", "X = 1\n")
    write(plugins_dir / "needs_args.py", PLUGIN.replace("supports_first_message = True",
                                                        "def __init__(self, x):\n            pass"))
    write(plugins_dir / "chatml.py", PLUGIN)  # a built-in's name
    (user_home / "wrappers").mkdir()
    (user_home / "wrappers" / "good.yaml").write_text("template: x\n")  # a YAML wrapper's name
    write(plugins_dir / "_private.py", "raise RuntimeError('never imported')\n")

    names = wrappers.names()
    assert names.count("chatml") == 1 and names.count("good") == 1
    assert not {"syntax", "raises", "exits", "empty", "needs_args", "_private"} & set(names)
    assert wrappers.get("chatml").kind == "jinja" and wrappers.get("good").kind == "jinja"
    errors = "\n".join(wrappers.load_errors())
    assert "plugin syntax.py has a syntax error at line 1" in errors
    assert "plugin raises.py could not be loaded (line 1): RuntimeError: boom" in errors
    assert "plugin exits.py could not be loaded" in errors and "SystemExit" in errors
    assert "plugin empty.py" in errors and "defines no class" in errors
    assert "plugin needs_args.py" in errors and "no arguments" in errors
    assert "plugin chatml.py: the name 'chatml' is already taken" in errors
    assert "plugin good.py: the name 'good' is already taken" in errors
    assert "_private" not in errors
    with pytest.raises(WrapperError, match="unknown wrapper 'raises'"):
        wrappers.get("raises")


def test_plugins_reload_when_the_file_changes(plugins_dir):
    path = write(plugins_dir / "live.py", DUCK.replace("class Other(Plain):", "class Other:").split("class Other:")[0])
    assert wrappers.get("live").render(Conversation(messages=[{"role": "user", "content": "a"}])) == "a\nASSISTANT:"
    write(path, DUCK.split("class Other")[0].replace("ASSISTANT:", "BOT:"))
    assert wrappers.get("live").render(Conversation(messages=[{"role": "user", "content": "a"}])) == "a\nBOT:"
    write(path, "def broken(:\n")
    assert "live" not in wrappers.names() and any("live.py" in e for e in wrappers.load_errors())


def test_no_plugins_folder_is_fine(user_home):
    assert wrappers.names()[: 3] == wrappers.names()[:3] and not any("plugin" in e for e in wrappers.load_errors())
    json.dumps(wrappers.names())


def test_plugin_wrapper_dict_holds_only_wrapper_fields(plugins_dir):
    # the page copies wrappers with Wrapper(**w.__dict__) (export): that must keep working
    write(plugins_dir / "chatml_plugin.py", PLUGIN)
    w = wrappers.get("chatml_plugin")
    assert set(vars(w)) == set(wrappers.Wrapper.__dataclass_fields__)
    copy = wrappers.Wrapper(**{**w.__dict__, "builtin": False})
    assert copy.kind == "python" and copy.to_yaml()
