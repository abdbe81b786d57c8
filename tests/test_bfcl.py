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

ORDER = {"name": "orders.place", "description": "Place an order.",
         "parameters": {"type": "dict", "required": [], "properties": {
             "items": {"type": "array", "items": {"type": "dict"}, "description": "What to order: name and quantity."},
             "times": {"type": "integer", "description": "How often."}}}}
CONTACT = {"name": "get_contact", "description": "A contact's details.",
           "parameters": {"type": "dict", "required": [], "properties": {"name": {"type": "string", "description": "Who."}}}}


def _ask(text: str) -> list:
    return [[{"role": "user", "content": text}]]


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
    "parallel_multiple": [
        {"id": "parallel_multiple_0", "question": _ask("Weather in Oslo, and the area of 2 by 3?"), "function": [WEATHER, AREA]},
    ],
    "live_simple": [
        {"id": "live_simple_0-0-0", "question": _ask("Two apples and a pear, please."), "function": [ORDER]},
        {"id": "live_simple_1-1-0", "question": _ask("Order the list n times."), "function": [ORDER]},
    ],
    "live_multiple": [
        {"id": "live_multiple_0-0-0", "question": _ask("Show me my contacts."), "function": [WEATHER, CONTACT]},
    ],
    "live_parallel": [
        {"id": "live_parallel_0-0-0", "question": _ask("Weather in Oslo and Rome?"), "function": [WEATHER]},
    ],
    "live_parallel_multiple": [
        {"id": "live_parallel_multiple_0-0-0", "question": _ask("Oslo's weather and Ann's contact?"), "function": [WEATHER, CONTACT]},
    ],
    "live_irrelevance": [
        {"id": "live_irrelevance_0-0-0", "question": _ask("Hello there."), "function": [WEATHER, CONTACT]},
        {"id": "live_irrelevance_1-0-1", "question": _ask("Who won in 1990?"), "function": [ORDER]},
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
    "parallel_multiple": [{"id": "parallel_multiple_0", "ground_truth": [
        {"weather.get": {"city": ["Oslo"], "unit": [""]}}, {"calculate_area": {"width": [2.0], "height": [3.0]}}]}],
    "live_simple": [
        # a list of dicts: each item key by key, in order
        {"id": "live_simple_0-0-0", "ground_truth": [{"orders.place": {
            "items": [[{"name": ["apple"], "qty": [2]}, {"name": ["pear"], "qty": [1, ""]}]], "times": [1, ""]}}]},
        # "n" is a variable: an integer parameter answered by a name of the ground truth's own type (a string)
        {"id": "live_simple_1-1-0", "ground_truth": [{"orders.place": {"items": [""], "times": ["n"]}}]},
    ],
    # null among the possible answers, as BFCL's live data has it
    "live_multiple": [{"id": "live_multiple_0-0-0", "ground_truth": [{"get_contact": {"name": ["", None]}}]}],
    "live_parallel": [{"id": "live_parallel_0-0-0", "ground_truth": [{"weather.get": {"city": ["Oslo"]}},
                                                                     {"weather.get": {"city": ["Rome"]}}]}],
    "live_parallel_multiple": [{"id": "live_parallel_multiple_0-0-0", "ground_truth": [
        {"weather.get": {"city": ["Oslo"]}}, {"get_contact": {"name": ["Ann"]}}]}],
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
    only = tmp_path / "only"
    only.mkdir()
    (only / "BFCL_v4_simple_python.json").write_text(json.dumps(QUESTIONS["simple_python"][0]) + "\n")
    with pytest.raises(SuiteError, match="has no BFCL_v4_live_simple.json"):
        bfcl.load("bfcl:live_simple", only)
    with pytest.raises(SuiteError, match=r"possible_answer has no ground truth for simple_python of its questions' BFCL version \(v4\)"):
        bfcl.load("bfcl:simple_python", only)


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


def test_every_category_loads_from_bfcls_format(data):
    for category in bfcl.CATEGORIES:
        suite = bfcl.load_category(category, data)
        assert suite.name == bfcl.PREFIX + category
        assert [c.id for c in suite.cases] == [e["id"] for e in QUESTIONS[category]]  # BFCL's ids, BFCL's order
        truth = {e["id"]: e["ground_truth"] for e in ANSWERS.get(category, [])}
        for case, entry in zip(suite.cases, QUESTIONS[category], strict=True):
            assert case.category == case.bfcl.category == category
            assert case.bfcl.functions == entry["function"]
            assert case.bfcl.ground_truth == truth.get(case.id, [])  # (ir)relevance: none, the call count decides
            assert case.conversation.messages == [m for turn in entry["question"] for m in turn]
            assert [f["name"] for f in case.conversation.functions] == [f["name"] for f in entry["function"]]
    everything = bfcl.load("bfcl:all", data)
    assert list(dict.fromkeys(c.category for c in everything.cases)) == list(bfcl.CATEGORIES)
    assert len(everything.cases) == sum(len(v) for v in QUESTIONS.values())
    order = everything.case("live_simple_0-0-0").conversation.functions[0]["parameters"]["properties"]["items"]
    assert order["type"] == "array" and order["items"] == {"type": "object"}  # BFCL's "dict" items as JSON schema


def test_questions_and_answers_come_from_the_same_bfcl_version(data, tmp_path):
    folder = tmp_path / "bfcl-data"
    newer = {"id": "multiple_9", "question": _ask("Area of 1 by 1?"), "function": [AREA]}
    (folder / "BFCL_v5_multiple.json").write_text(json.dumps(newer) + "\n")
    # v5 questions without v5 ground truth: v4's pair is read, never v5 questions judged by v4 answers
    suite = bfcl.load_category("multiple", data)
    assert [c.id for c in suite.cases] == ["multiple_0"] and suite.path.endswith("BFCL_v4_multiple.json")
    (folder / "possible_answer" / "BFCL_v5_multiple.json").write_text(
        json.dumps({"id": "multiple_9", "ground_truth": [{"calculate_area": {"width": [1.0], "height": [1.0]}}]}) + "\n")
    suite = bfcl.load_category("multiple", data)
    assert [c.id for c in suite.cases] == ["multiple_9"] and suite.case("multiple_9").bfcl.ground_truth[0]["calculate_area"]["width"] == [1.0]


def test_cases_n_is_per_category_and_an_id_list_runs_in_bfcls_order_once(data):
    mixed = bfcl.load("bfcl:simple_python,bfcl:irrelevance,bfcl:live_irrelevance", data)
    assert [c.id for c in mixed.first(1).cases] == ["simple_python_0", "irrelevance_0", "live_irrelevance_0-0-0"]
    assert [c.id for c in mixed.first(2).cases] == ["simple_python_0", "simple_python_1", "irrelevance_0",
                                                    "live_irrelevance_0-0-0", "live_irrelevance_1-0-1"]
    picked = mixed.subset(["live_irrelevance_0-0-0", "simple_python_2", "irrelevance_0", "simple_python_2", "simple_python_0"])
    assert [c.id for c in picked.cases] == ["simple_python_0", "simple_python_2", "irrelevance_0", "live_irrelevance_0-0-0"]
    with pytest.raises(SuiteError, match="has no case 'simple_python_9'"):
        mixed.subset(["simple_python_0", "simple_python_9"])
    with pytest.raises(SuiteError, match="at least 1"):
        mixed.first(0)
    assert [c.id for c in load_suite("tools").first(2).cases] == ["weather_paris", "weather_fahrenheit"]  # one category


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


def test_a_list_of_dicts_is_checked_item_by_item_in_order(data):
    order = ("live_simple", "live_simple_0-0-0")
    apple, pear = {"name": "apple", "qty": 2}, {"name": "pear", "qty": 1}
    assert _check(data, *order, ToolCall("orders.place", {"items": [apple, pear]})) == []
    assert _check(data, *order, ToolCall("orders_place", {"items": [{"name": "Apple", "qty": 2}, {"name": "PEAR"}]})) == []
    assert _check(data, *order, ToolCall("orders.place", {"items": [pear, apple]})) == [
        "wrong value for 'items.name': 'pear' not in ['apple']"]  # the order of the items counts
    assert _check(data, *order, ToolCall("orders.place", {"items": [apple]})) == [
        "wrong value for 'items': 1 item(s), the answer has another number"]
    assert _check(data, *order, ToolCall("orders.place", {"items": [apple, {**pear, "gift": True}]})) == [
        "wrong value for 'items': unexpected key 'gift'"]
    assert _check(data, *order, ToolCall("orders.place", {"items": [apple, {"qty": 1}]})) == [
        "wrong value for 'items': missing key 'name'"]
    assert _check(data, *order, ToolCall("orders.place", {"items": ["apple", "pear"]})) == [
        "wrong item type in 'items': expected array of dict, got ['apple', 'pear']"]
    assert _check(data, *order, ToolCall("orders.place", {"times": 1})) == [
        "missing parameter 'items': the answer does not allow leaving it out"]


def test_the_variable_rule_a_value_of_the_ground_truths_own_type(data):
    variable = ("live_simple", "live_simple_1-1-0")  # 'times' is an integer; the ground truth names a variable, "n"
    assert _check(data, *variable, ToolCall("orders.place", {"times": "n"})) == []
    assert _check(data, *variable, ToolCall("orders.place", {"times": "m"})) == ["wrong value for 'times': 'm' not in ['n']"]
    assert _check(data, *variable, ToolCall("orders.place", {"times": "N"})) == [
        "wrong value for 'times': 'N' not in ['n']"]  # a variable's name is not normalized like a string value
    assert _check(data, *variable, ToolCall("orders.place", {"times": 3})) == ["wrong value for 'times': 3 not in ['n']"]
    assert _check(data, *variable, ToolCall("orders.place", {"times": 2.5})) == [
        "wrong type for 'times': expected integer, got float 2.5"]  # neither the doc's type nor the answer's


def test_null_among_the_possible_answers(data):
    contact = ("live_multiple", "live_multiple_0-0-0")  # 'name': ["", null]
    assert _check(data, *contact, ToolCall("get_contact", {})) == []
    assert _check(data, *contact, ToolCall("get_contact", {"name": None})) == []
    assert _check(data, *contact, ToolCall("get_contact", {"name": "Ann"})) == ["wrong value for 'name': 'Ann' not in ['', None]"]
    assert _check(data, *contact, ToolCall("weather.get", {"city": "Oslo"})) == [
        "wrong function: called 'weather.get', expected 'get_contact'"]
    # BFCL-right, yet not valid against the JSON schema (a string): the two columns tell them apart
    verdict, problems = judge(ParseResult(tool_calls=[ToolCall("get_contact", {"name": None})]), _case(data, *contact))
    assert verdict.to_dict() == {"parsed": True, "valid": False, "expected": True} and problems == ["get_contact: argument 'name' should be string, got null"]


def test_live_and_mixed_parallel_calls_in_any_order(data):
    oslo, rome, ann = (ToolCall("weather.get", {"city": "Oslo"}), ToolCall("weather.get", {"city": "Rome"}),
                       ToolCall("get_contact", {"name": "Ann"}))
    assert _check(data, "live_parallel", "live_parallel_0-0-0", rome, oslo) == []
    assert _check(data, "live_parallel_multiple", "live_parallel_multiple_0-0-0", ann, oslo) == []
    assert _check(data, "live_parallel_multiple", "live_parallel_multiple_0-0-0", oslo, rome) == [
        "no call matches expected call 2 (get_contact): call 2: wrong function: called 'weather.get', expected 'get_contact'"]
    area = ToolCall("calculate_area", {"width": 2, "height": 3})
    assert _check(data, "parallel_multiple", "parallel_multiple_0", area, oslo) == []
    assert _check(data, "parallel_multiple", "parallel_multiple_0", area) == ["wrong number of calls: expected 2, got 1"]


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


def test_an_output_that_does_not_parse_is_no_call_as_in_bfcl(data):
    broken = ParseResult(error=ParseError("no JSON object found", 0))
    for category, case_id in (("irrelevance", "irrelevance_0"), ("live_irrelevance", "live_irrelevance_1-0-1")):
        verdict, problems = judge(broken, _case(data, category, case_id))
        assert verdict.to_dict() == {"parsed": False, "valid": False, "expected": True}  # BFCL-right, not parsed
        assert problems == ["parse error: no JSON object found"]
    for category, case_id in (("live_relevance", "live_relevance_0-0-0"), ("simple_python", "simple_python_0"),
                              ("live_parallel", "live_parallel_0-0-0")):
        assert judge(broken, _case(data, category, case_id))[0].to_dict() == {"parsed": False, "valid": False, "expected": False}
    assert judge(ParseResult(content="No tool for that."), _case(data, "live_irrelevance", "live_irrelevance_0-0-0"))[0].expected


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
    assert "parsed/valid/BFCL" in printed and "simple_python" in printed and "mean of categories" in printed
    board = json.loads(out.read_text(encoding="utf-8"))
    # --cases 3: the first three of each category, in BFCL's order (irrelevance has one)
    assert board["categories"] == ["simple_python", "irrelevance"] and board["cases"] == 4
    assert [r["case"] for r in board["runs"]] == ["simple_python_0", "simple_python_1", "simple_python_2", "irrelevance_0"]
    (cell,) = board["cells"]
    runs = {k: [r for r in board["runs"] if r["category"] == k] for k in board["categories"]}
    assert cell["categories"] == [{"category": k, "runs": len(runs[k]), **{n: sum(r["verdict"][n] for r in runs[k])
                                                                            for n in ("parsed", "valid", "expected")}, "errors": 0}
                                  for k in board["categories"]]
    suite = bfcl.load("bfcl:simple_python,bfcl:irrelevance", data)
    for r in board["runs"]:  # every stored verdict follows from its stored parse, by BFCL's rules
        p = r["parsed"]
        parsed = ParseResult(content=p["content"], tool_calls=[ToolCall(c["name"], c["arguments"]) for c in p["tool_calls"]],
                             error=ParseError(**p["error"]) if p["error"] else None)
        assert judge(parsed, suite.case(r["case"]))[0].to_dict() == r["verdict"]
        assert r["verdict"]["expected"] or r["problems"]
