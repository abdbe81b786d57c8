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
