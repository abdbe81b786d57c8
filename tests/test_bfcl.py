"""BFCL suites: the data read in BFCL's own format (samples the tests write), the package found
without importing it, and BFCL's AST-checker rules, each judged right and wrong on purpose."""

from __future__ import annotations

import argparse
import json
import sys

import pytest

import wrappers
from cli.score import add_score_command, run_score
from parsers import ParseError, ParseResult, ToolCall
from parsers.validate import validate_calls
from scoreboard import bfcl, bfcl_check, load_suite
from scoreboard.runner import conversation_for
from scoreboard.suites import SuiteError
from scoreboard.verdict import judge

WEATHER = {"name": "weather.get", "description": "The weather in a city.",
           "parameters": {"type": "dict", "required": ["city"], "properties": {
               "city": {"type": "string", "description": "The city."},
               "unit": {"type": "string", "enum": ["celsius", "fahrenheit", "kelvin"], "description": "Unit."},
               "days": {"type": "integer", "description": "Days ahead."}}}}
AREA = {"name": "calculate_area", "description": "Area of a rectangle.",
        "parameters": {"type": "dict", "required": ["width", "height"], "properties": {
            "width": {"type": "float", "description": "Width."}, "height": {"type": "float", "description": "Height."},
            "point": {"type": "tuple", "items": {"type": "integer"}, "description": "A corner."},
            "tags": {"type": "array", "items": {"type": "string"}, "description": "Labels."},
            "options": {"type": "dict", "description": "Options.", "properties": {
                "precision": {"type": "integer", "description": "Digits."}, "label": {"type": "string", "description": "Name."}}},
            "anything": {"type": "any", "description": "Free."}}}}

QUESTIONS = {
    "simple_python": [
        {"id": "simple_python_0", "question": [[{"role": "user", "content": "Weather in Paris, in celsius?"}]], "function": [WEATHER]},
        {"id": "simple_python_1", "question": [[{"role": "user", "content": "Area of 2 by 3.5?"}]], "function": [AREA]},
        {"id": "simple_python_2", "question": [[{"role": "user", "content": "Weather in Oslo?"}]], "function": [WEATHER]},
        {"id": "simple_python_3", "question": [[{"role": "user", "content": "Area of 1 by 1 at (1, 2)?"}]], "function": [AREA]},
    ],
    "parallel": [
        {"id": "parallel_0", "question": [[{"role": "user", "content": "Weather in Oslo and in Rome?"}]], "function": [WEATHER]},
    ],
    "multiple": [
        {"id": "multiple_0", "question": [[{"role": "user", "content": "Area of 2 by 3?"}]], "function": [WEATHER, AREA]},
    ],
    "irrelevance": [
        {"id": "irrelevance_0", "question": [[{"role": "user", "content": "Tell me a joke."}]], "function": [WEATHER]},
    ],
    "live_relevance": [
        {"id": "live_relevance_0-0-0", "question": [[{"role": "system", "content": "Be brief."},
                                                      {"role": "user", "content": "Any weather?"}]], "function": [WEATHER]},
    ],
}
ANSWERS = {
    "simple_python": [
        {"id": "simple_python_0", "ground_truth": [{"weather.get": {"city": ["Paris", "Paris, France"], "unit": ["celsius", ""],
                                                                    "days": [""]}}]},
        {"id": "simple_python_1", "ground_truth": [{"calculate_area": {
            "width": [2.0], "height": [3.5], "point": [[0, 0], ""], "tags": [["Big Room", "blue"], ""],
            "options": [{"precision": [2], "label": ["", "main"]}, ""], "anything": ["", "x"]}}]},
        {"id": "simple_python_2", "ground_truth": [{"weather.get": {"city": ["Oslo"], "unit": ["celsius"]}}]},
        {"id": "simple_python_3", "ground_truth": [{"calculate_area": {"width": [1.0], "height": [1.0], "point": [[1, 2]]}}]},
    ],
    "parallel": [{"id": "parallel_0", "ground_truth": [{"weather.get": {"city": ["Oslo"], "unit": [""]}},
                                                       {"weather.get": {"city": ["Rome"], "unit": [""]}}]}],
    "multiple": [{"id": "multiple_0", "ground_truth": [{"calculate_area": {"width": [2.0], "height": [3.0]}}]}],
}


def write_sample(folder) -> str:
    """A BFCL data folder in BFCL's layout: BFCL_v4_<category>.json and possible_answer/, one JSON a line."""
    (folder / "possible_answer").mkdir(parents=True, exist_ok=True)
    for category, entries in QUESTIONS.items():
        (folder / f"BFCL_v4_{category}.json").write_text("".join(json.dumps(e) + "\n" for e in entries), encoding="utf-8")
    for category, entries in ANSWERS.items():
        (folder / "possible_answer" / f"BFCL_v4_{category}.json").write_text("".join(json.dumps(e) + "\n" for e in entries),
                                                                           encoding="utf-8")
    # an older version of a file, and a category whose name ends like another's: neither is read for simple_python
    (folder / "BFCL_v3_simple_python.json").write_text(json.dumps({"id": "old", "question": [], "function": []}) + "\n")
    (folder / "BFCL_v4_live_simple_python.json").write_text(json.dumps({"id": "other", "question": [], "function": []}) + "\n")
    return str(folder)


@pytest.fixture
def data(tmp_path):
    return write_sample(tmp_path / "bfcl-data")


def _case(data, category, case_id):
    return bfcl.load_category(category, data).case(case_id)


def _check(data, category, case_id, *calls):
    case = _case(data, category, case_id)
    return bfcl_check.problems(case.bfcl.category, case.bfcl.functions, case.bfcl.ground_truth, list(calls))


# ------------------------------------------------------------------------------------------------
# loading


def test_the_installed_package_is_found_without_importing_it(tmp_path, monkeypatch):
    package = tmp_path / "site" / "bfcl_eval"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('bfcl_eval was imported')\n")
    write_sample(package / "data")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "bfcl_eval", raising=False)
    assert bfcl.data_dir() == package / "data"
    assert "bfcl_eval" not in sys.modules
    suite = load_suite("bfcl:simple_python")  # the default: the installed package's data
    assert [c.id for c in suite.cases] == ["simple_python_0", "simple_python_1", "simple_python_2", "simple_python_3"]


def test_no_data_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setattr(bfcl.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SuiteError, match="BFCL data is not installed: pip install --no-deps bfcl-eval"):
        load_suite("bfcl:simple_python")
    with pytest.raises(SuiteError, match="holds no BFCL data"):
        bfcl.data_dir(tmp_path)
    with pytest.raises(SuiteError, match="unknown BFCL category 'simple'"):
        bfcl.load("bfcl:simple", write_sample(tmp_path / "d"))
    with pytest.raises(SuiteError, match="has no BFCL_v4_live_simple.json"):
        bfcl.load("bfcl:live_simple", tmp_path / "d")


def test_cases_keep_bfcl_ids_order_and_docs_as_json_schema(data):
    suite = bfcl.load("bfcl:simple_python", data)
    assert suite.name == "bfcl:simple_python" and [c.id for c in suite.cases][:3] == ["simple_python_0", "simple_python_1", "simple_python_2"]
    assert [c.id for c in suite.first(2).cases] == ["simple_python_0", "simple_python_1"]
    area = suite.case("simple_python_1")
    assert area.category == "simple_python" and area.bfcl.functions == [AREA]  # BFCL's own docs for the checker
    schema = area.conversation.functions[0]["parameters"]
    assert schema["type"] == "object" and schema["properties"]["width"]["type"] == "number"
    assert schema["properties"]["point"] == {"type": "array", "items": {"type": "integer"}, "description": "A corner."}
    assert schema["properties"]["options"]["type"] == "object" and "type" not in schema["properties"]["anything"]
    # the wrappers render it, and the schema-valid check reads it
    for wrapper in ("hermes-2-pro", "qwen2.5", "llama3.1", "mistral-nemo"):
        assert "calculate_area" in wrappers.get(wrapper).render(conversation_for(wrapper, area.conversation))
    ok = ToolCall("calculate_area", {"width": 2, "height": 3.5, "point": [0, 0], "anything": 7})
    assert validate_calls([ok], area.conversation.functions) == [[]]
    assert validate_calls([ToolCall("calculate_area", {"width": "2", "height": 3.5})], area.conversation.functions) != [[]]
    mixed = bfcl.load("bfcl:simple_python,bfcl:irrelevance,bfcl:live_relevance", data)
    assert [c.category for c in mixed.cases] == ["simple_python"] * 4 + ["irrelevance", "live_relevance"]
    assert mixed.case("live_relevance_0-0-0").conversation.messages[0]["role"] == "system"


# ------------------------------------------------------------------------------------------------
# the checker, rule by rule, right and wrong


def test_function_name_and_bfcl_dotted_names(data):
    assert _check(data, "simple_python", "simple_python_0", ToolCall("weather.get", {"city": "Paris"})) == []
    assert _check(data, "simple_python", "simple_python_0", ToolCall("weather_get", {"city": "Paris"})) == []  # dots as underscores
    assert _check(data, "simple_python", "simple_python_0", ToolCall("weatherget", {"city": "Paris"})) == [
        "wrong function: called 'weatherget', expected 'weather.get'"]


def test_required_present_and_no_unknown_parameters(data):
    assert _check(data, "simple_python", "simple_python_0", ToolCall("weather.get", {"unit": "celsius"})) == [
        "missing required parameter 'city'"]
    assert _check(data, "simple_python", "simple_python_0", ToolCall("weather.get", {"city": "Paris", "country": "FR"})) == [
        "unexpected parameter 'country'"]
    # in the doc but not in the ground truth: unexpected too
    assert _check(data, "simple_python", "simple_python_2", ToolCall("weather.get", {"city": "Oslo", "unit": "celsius", "days": 1})) == [
        "unexpected parameter 'days'"]


def test_values_among_the_possible_answers_and_optional_ones(data):
    assert _check(data, "simple_python", "simple_python_0", ToolCall("weather.get", {"city": "Paris, France", "unit": "celsius"})) == []
    assert _check(data, "simple_python", "simple_python_0", ToolCall("weather.get", {"city": "Paris", "unit": "kelvin"})) == [
        "wrong value for 'unit': 'kelvin' not in ['celsius', '']"]
    # "" among the possible answers: may be left out; without it: must be there
    assert _check(data, "simple_python", "simple_python_2", ToolCall("weather.get", {"city": "Oslo"})) == [
        "missing parameter 'unit': the answer does not allow leaving it out"]
    assert _check(data, "simple_python", "simple_python_0", ToolCall("weather.get", {"city": "Paris", "days": 3})) == [
        "wrong value for 'days': 3 not in ['']"]


def test_type_rules(data):
    area = ("simple_python", "simple_python_1")
    assert _check(data, *area, ToolCall("calculate_area", {"width": 2, "height": 3.5})) == []  # int accepted for float
    assert _check(data, *area, ToolCall("calculate_area", {"width": "2", "height": 3.5})) == [
        "wrong type for 'width': expected float, got str '2'"]
    assert _check(data, "simple_python", "simple_python_0", ToolCall("weather.get", {"city": "Paris", "days": 1.0})) == [
        "wrong type for 'days': expected integer, got float 1.0"]  # but no float for an integer
    assert _check(data, "simple_python", "simple_python_0", ToolCall("weather.get", {"city": True})) == [
        "wrong type for 'city': expected string, got bool True"]
    assert _check(data, *area, ToolCall("calculate_area", {"width": 2, "height": 3.5, "point": [0, 0]})) == []  # a tuple as a list
    assert _check(data, *area, ToolCall("calculate_area", {"width": 2, "height": 3.5, "point": (0, 0)})) == []
    corner = ("simple_python", "simple_python_3")
    assert _check(data, *corner, ToolCall("calculate_area", {"width": 1, "height": 1.0, "point": [1, 2]})) == []
    assert _check(data, *corner, ToolCall("calculate_area", {"width": 1, "height": 1.0, "point": [1, "2"]})) == [
        "wrong item type in 'point': expected tuple of integer, got [1, '2']"]
    assert _check(data, *corner, ToolCall("calculate_area", {"width": 1, "height": 1.0, "point": [1.0, 2]})) == [
        "wrong item type in 'point': expected tuple of integer, got [1.0, 2]"]
    # where "" (may be left out) is a possible answer, BFCL lets the item types pass; the value check still fails
    assert _check(data, *area, ToolCall("calculate_area", {"width": 2, "height": 3.5, "point": [0, "0"]})) == [
        "wrong value for 'point': [0, '0'] not in [[0, 0], '']"]
    assert _check(data, *area, ToolCall("calculate_area", {"width": 2, "height": 3.5, "point": [0, 1]})) == [
        "wrong value for 'point': [0, 1] not in [[0, 0], '']"]
    # "any" is checked as a string, as BFCL does
    assert _check(data, *area, ToolCall("calculate_area", {"width": 2, "height": 3.5, "anything": "X"})) == []
    assert _check(data, *area, ToolCall("calculate_area", {"width": 2, "height": 3.5, "anything": 7})) == [
        "wrong type for 'anything': expected any, got int 7"]


def test_string_normalization_as_bfcl_does_it(data):
    # case, spaces and ,./-_*^ do not count; anything else does
    assert _check(data, "simple_python", "simple_python_0", ToolCall("weather.get", {"city": "paris  france."})) == []
    assert _check(data, "simple_python", "simple_python_0", ToolCall("weather.get", {"city": "PARIS-France"})) == []
    assert _check(data, "simple_python", "simple_python_0", ToolCall("weather.get", {"city": "Paris!"})) == [
        "wrong value for 'city': 'Paris!' not in ['Paris', 'Paris, France']"]
    area = ("simple_python", "simple_python_1")
    assert _check(data, *area, ToolCall("calculate_area", {"width": 2, "height": 3.5, "tags": ["big_room", "BLUE"]})) == []
    assert _check(data, *area, ToolCall("calculate_area", {"width": 2, "height": 3.5, "tags": ["blue", "big room"]})) == [
        "wrong value for 'tags': ['blue', 'big room'] not in [['Big Room', 'blue'], '']"]  # lists keep their order


def test_dict_values_key_by_key(data):
    area = ("simple_python", "simple_python_1")
    base = {"width": 2, "height": 3.5}
    assert _check(data, *area, ToolCall("calculate_area", {**base, "options": {"precision": 2}})) == []
    assert _check(data, *area, ToolCall("calculate_area", {**base, "options": {"precision": 2, "label": "Main"}})) == []
    assert _check(data, *area, ToolCall("calculate_area", {**base, "options": {"precision": 3}})) == [
        "wrong value for 'options.precision': 3 not in [2]"]
    assert _check(data, *area, ToolCall("calculate_area", {**base, "options": {"precision": 2, "color": "red"}})) == [
        "wrong value for 'options': unexpected key 'color'"]
    assert _check(data, *area, ToolCall("calculate_area", {**base, "options": {"label": "main"}})) == [
        "wrong value for 'options': missing key 'precision'"]


def test_parallel_calls_in_any_order_and_counts(data):
    oslo, rome = ToolCall("weather.get", {"city": "Oslo"}), ToolCall("weather.get", {"city": "Rome"})
    assert _check(data, "parallel", "parallel_0", oslo, rome) == []
    assert _check(data, "parallel", "parallel_0", rome, oslo) == []
    assert _check(data, "parallel", "parallel_0", oslo) == ["wrong number of calls: expected 2, got 1"]
    assert _check(data, "parallel", "parallel_0", oslo, oslo) == [
        "no call matches expected call 2 (weather.get): call 2: wrong value for 'city': 'Oslo' not in ['Rome']"]
    assert _check(data, "simple_python", "simple_python_0", ToolCall("weather.get", {"city": "Paris"}),
                  ToolCall("weather.get", {"city": "Paris"})) == ["wrong number of calls: expected 1, got 2"]


def test_multiple_picks_the_expected_function_among_several(data):
    assert _check(data, "multiple", "multiple_0", ToolCall("calculate_area", {"width": 2, "height": 3})) == []
    assert _check(data, "multiple", "multiple_0", ToolCall("weather.get", {"city": "Oslo"})) == [
        "wrong function: called 'weather.get', expected 'calculate_area'"]


def test_irrelevance_is_no_call_and_relevance_at_least_one(data):
    assert _check(data, "irrelevance", "irrelevance_0") == []
    assert _check(data, "irrelevance", "irrelevance_0", ToolCall("weather.get", {"city": "x"})) == ["expected no call, got 'weather.get'"]
    assert _check(data, "live_relevance", "live_relevance_0-0-0", ToolCall("weather.get", {"city": "anything"})) == []
    assert _check(data, "live_relevance", "live_relevance_0-0-0") == ["expected at least one call, got none"]


def test_judge_uses_bfcl_for_bfcl_cases(data):
    paris = _case(data, "simple_python", "simple_python_0")
    right = ParseResult(tool_calls=[ToolCall("weather_get", {"city": "Paris", "unit": "celsius"})])
    assert judge(right, paris)[1] == []
    assert judge(right, paris)[0].to_dict() == {"parsed": True, "valid": True, "expected": True}  # the dotted name's schema
    wrong = ParseResult(tool_calls=[ToolCall("weather.get", {"city": "Paris", "unit": "kelvin"})])
    verdict, problems = judge(wrong, paris)
    assert verdict.to_dict() == {"parsed": True, "valid": True, "expected": False}  # schema-valid, BFCL-wrong
    assert problems == ["wrong value for 'unit': 'kelvin' not in ['celsius', '']"]
    invalid = ParseResult(tool_calls=[ToolCall("weather.get", {"city": "Paris", "unit": "rankine"})])
    assert judge(invalid, paris)[0].to_dict() == {"parsed": True, "valid": False, "expected": False}
    joke = _case(data, "irrelevance", "irrelevance_0")
    assert judge(ParseResult(content="Why did..."), joke)[0].to_dict() == {"parsed": True, "valid": True, "expected": True}


# ------------------------------------------------------------------------------------------------
# a run, on the embedded model, from the command line


def test_cli_runs_bfcl_categories_and_shows_accuracy_per_category(data, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="app.py")
    add_score_command(parser.add_subparsers(dest="command"))
    out = tmp_path / "bfcl.json"
    code = run_score(parser.parse_args(["score", "--backend-type", "embedded", "--suite", "bfcl:simple_python,bfcl:irrelevance",
                                        "--bfcl-dir", data, "--cases", "3", "--wrappers", "qwen2.5", "--param", "max_new_tokens=32",
                                        "--out", str(out), "--quiet"]))
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "parsed/valid/BFCL" in printed and "simple_python" in printed
    board = json.loads(out.read_text(encoding="utf-8"))
    assert board["categories"] == ["simple_python"] and board["cases"] == 3  # --cases 3: the first three, in BFCL's order
    assert [r["case"] for r in board["runs"]] == ["simple_python_0", "simple_python_1", "simple_python_2"]
    (cell,) = board["cells"]
    assert cell["categories"] == [{"category": "simple_python", "runs": 3, "parsed": cell["parsed"], "valid": cell["valid"],
                                   "expected": cell["expected"], "errors": 0}]
    suite = bfcl.load("bfcl:simple_python", data)
    for r in board["runs"]:  # every stored verdict follows from its stored parse, by BFCL's rules
        p = r["parsed"]
        parsed = ParseResult(content=p["content"], tool_calls=[ToolCall(c["name"], c["arguments"]) for c in p["tool_calls"]],
                             error=ParseError(**p["error"]) if p["error"] else None)
        assert judge(parsed, suite.case(r["case"]))[0].to_dict() == r["verdict"]
        assert r["verdict"]["expected"] or r["problems"]
