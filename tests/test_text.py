"""Text on its way out: lone surrogates (which no UTF-8 output can carry) become U+FFFD, counted."""

import json

from core.text import replace_surrogates, surrogates_note


def test_lone_surrogates_are_replaced_wherever_they_sit():
    value = json.loads('{"a\\udfff": ["x\\ud800", {"k": "\\udbff\\udc00 pair, \\ud800 lone"}], "n": 1, "t": ["ok"]}')
    cleaned, count = replace_surrogates(value)
    assert cleaned == {"a\ufffd": ["x\ufffd", {"k": "\U0010fc00 pair, \ufffd lone"}], "n": 1, "t": ["ok"]}
    assert count == 3  # a valid pair is one character, kept
    json.dumps(cleaned, ensure_ascii=False).encode("utf-8")  # now it can be sent


def test_text_without_any_comes_back_as_it_was():
    value = {"a": ["b", ("c", 1)], "é": "ü"}
    assert replace_surrogates(value) == (value, 0) and replace_surrogates(value)[0] is value
    assert surrogates_note(0) == ""
    assert surrogates_note(2).startswith("2 invalid characters")
