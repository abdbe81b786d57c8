"""The wrapper registry: every built-in loads and names a registered parser; user files are checked."""

import pytest

import parsers
import wrappers
from core.conversation import EXAMPLE_PATH, Conversation


@pytest.mark.parametrize("name", wrappers.names())
def test_every_builtin_loads_with_a_registered_parser(name):
    wrapper = wrappers.get(name)
    assert wrapper.builtin and wrapper.description
    assert wrapper.parser in parsers.names()


def test_wrapper_yaml_round_trips_through_save(user_home):
    base = wrappers.get("chatml")
    saved = wrappers.save_as(base, "copy", "{# edited #}" + base.template)
    again = wrappers.get("copy")
    assert again.template == saved.template and again.stop == base.stop
    assert again.assistant_prefix == base.assistant_prefix
    assert again.assistant_prefix_first_message == base.assistant_prefix_first_message
    conversation = Conversation.from_file(EXAMPLE_PATH)
    assert again.render(conversation) == base.render(conversation)


def test_broken_user_wrapper_is_reported_by_name_and_line(user_home):
    folder = user_home / "wrappers"
    folder.mkdir(parents=True)
    (folder / "broken.yaml").write_text("name: broken\ntemplate: [unclosed\n")
    (folder / "good.yaml").write_text("template: 'hi {{ messages | length }}'\n")
    assert "good" in wrappers.names()
    errors = wrappers.load_errors()
    assert len(errors) == 1 and "broken.yaml is not valid YAML at line" in errors[0]
    with pytest.raises(wrappers.WrapperError, match="broken.yaml"):
        wrappers.get("broken")


def test_user_files_cannot_shadow_or_escape(user_home):
    folder = user_home / "wrappers"
    folder.mkdir(parents=True)
    (folder / "chatml.yaml").write_text("template: 'HIJACKED'\n")
    assert wrappers.get("chatml").builtin  # a built-in name always means the built-in
    with pytest.raises(wrappers.WrapperError):
        wrappers.get("../wrappers/chatml")


@pytest.mark.parametrize("name", wrappers.names())
def test_every_builtin_survives_save_as_unchanged(name, user_home):
    base = wrappers.get(name)
    copy = wrappers.save_as(base, f"copy-of-{name}"[:64], base.template)
    again = wrappers.get(copy.name)
    assert (again.template, again.stop, again.variables, again.parser_options, again.assistant_prefix) == (
        base.template, base.stop, base.variables, base.parser_options, base.assistant_prefix)
