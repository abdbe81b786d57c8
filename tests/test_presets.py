"""Presets: deltas over neutral values, merge order, CLI --param values, bad files reported."""

import pytest

import presets
from presets import PresetError


def test_shipped_presets_load_and_include_memgpt_stop_list():
    assert {"memgpt-default", "deterministic", "creative"} <= set(presets.names())
    memgpt = presets.load("memgpt-default")
    assert memgpt["stop"][0] == "\nUSER:" and "  }\n}\n" in memgpt["stop"]
    assert presets.load("deterministic")["top_k"] == 1


def test_merge_order_neutral_then_wrapper_stop_then_preset_then_overrides():
    values = presets.resolve("deterministic", ["<|im_end|>"], {"temperature": 0.5})
    assert values["top_k"] == 1  # from the preset
    assert values["temperature"] == 0.5  # override beats preset
    assert values["stop"] == ["<|im_end|>"]  # the preset sets no stop: the wrapper's list
    assert values["typical_p"] == presets.NEUTRAL["typical_p"]
    assert presets.resolve("memgpt-default", ["<|im_end|>"])["stop"][0] == "\nUSER:"
    assert presets.resolve("memgpt-default", ["x"], {"stop": ["\nUSER:"]})["stop"] == ["\nUSER:"]


def test_param_values_are_json_when_they_parse():
    assert presets.parse_param('stop=["\\nUSER:"]') == ("stop", ["\nUSER:"])
    assert presets.parse_param("temperature=0.2") == ("temperature", 0.2)
    assert presets.parse_param("top_k=5") == ("top_k", 5)
    assert presets.parse_param("stop=END") == ("stop", ["END"])


@pytest.mark.parametrize("text, message", [
    ("temperature", "key=value"),
    ("warmth=1", "unknown sampling parameter 'warmth'"),
    ("temperature=hot", "must be a number"),
    ("stop=[1, 2]", "list of strings"),
])
def test_bad_params_say_what_is_wrong(text, message):
    with pytest.raises(PresetError, match=message):
        presets.parse_param(text)


def test_user_preset_loads_and_a_malformed_one_is_reported_by_name_and_line(user_home):
    folder = user_home / "presets"
    folder.mkdir(parents=True)
    (folder / "mine.yaml").write_text("temperature: 0.3\n")
    (folder / "broken.yaml").write_text("temperature: 0.3\ntop_p: [unclosed\n")
    assert presets.load("mine")["temperature"] == 0.3
    with pytest.raises(PresetError, match=r"broken.yaml is not valid YAML at line \d"):
        presets.load("broken")


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(PresetError, match="known presets: .*deterministic"):
        presets.load("nope")


# --- names are checked at the module boundary, for save and delete alike (issue 14) ---------------

HOSTILE_NAMES = ["../wrappers/mine", "../../victim", "../../../presets/deterministic", "/etc/passwd", "a\\b", "x" * 300, ""]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_delete_refuses_names_that_are_not_plain_file_names(user_home, name):
    import wrappers

    home = user_home
    (home / "wrappers").mkdir(parents=True, exist_ok=True)
    mine = home / "wrappers" / "mine.yaml"
    mine.write_text("template: hi\n")
    victim = home.parent / "victim.yaml"
    victim.write_text("keep me\n")
    builtin_preset = presets.BUILTIN_DIR / "deterministic.yaml"
    builtin_wrapper = wrappers.BUILTIN_DIR / "chatml.yaml"
    with pytest.raises(PresetError) as info:
        presets.delete(name)
    message = str(info.value)
    assert "not a usable name" in message
    assert "Errno" not in message and str(presets.BUILTIN_DIR) not in message
    assert len(message) < 300
    assert mine.is_file() and victim.is_file() and builtin_preset.is_file() and builtin_wrapper.is_file()


def test_delete_of_a_path_into_the_builtins_is_refused(user_home):
    import os

    relative = os.path.relpath(presets.BUILTIN_DIR / "deterministic", user_home / "presets")
    with pytest.raises(PresetError, match="not a usable name"):
        presets.delete(relative)
    assert (presets.BUILTIN_DIR / "deterministic.yaml").is_file()


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_save_refuses_the_same_names(user_home, name):
    with pytest.raises(PresetError, match="not a usable name"):
        presets.save(name, {"temperature": 0.5})


def test_a_300_character_name_gives_a_sentence_not_an_os_error(user_home):
    import wrappers

    for call in (lambda: presets.delete("x" * 300), lambda: presets.save("x" * 300, {}), lambda: presets.load("x" * 300),
                 lambda: wrappers.get("x" * 300), lambda: wrappers.save_as(wrappers.get("chatml"), "x" * 300, "t")):
        with pytest.raises(Exception) as info:
            call()
        assert "Errno" not in str(info.value) and "/" not in str(info.value).split("known wrappers")[0]
        assert "(300 characters)" in str(info.value) or "unknown preset" in str(info.value)


@pytest.mark.parametrize("name", ["../wrappers/chatml", "../../victim", "..", "x" * 300])
def test_wrapper_get_never_reads_outside_the_user_folder(user_home, name):
    import wrappers

    (user_home.parent / "victim.yaml").write_text("template: stolen\n")
    with pytest.raises(wrappers.WrapperError, match="unknown wrapper"):
        wrappers.get(name)


def test_a_user_preset_still_deletes(user_home):
    presets.save("mine", {"temperature": 0.5})
    presets.delete("mine")
    assert "mine" not in presets.names()


def test_a_preset_file_changed_on_disk_is_read_again(user_home):
    presets.save("mine", {"temperature": 0.5})
    assert presets.load("mine") == {"temperature": 0.5}
    loaded = presets.load("mine")
    loaded["temperature"] = 9  # a caller's change does not reach the next load
    assert presets.load("mine") == {"temperature": 0.5}
    presets.save("mine", {"temperature": 0.7})
    assert presets.load("mine") == {"temperature": 0.7}
