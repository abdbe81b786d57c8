"""Suites: YAML files of test cases, each a conversation and what a good answer is.

A suite file (`scoreboard/suites/NAME.yaml`, or any path):

```yaml
name: tools
description: What it measures.
system: "..."               # prepended as the system message when a case's messages lack one
functions: [...]            # JSON-schema functions (OpenAI legacy shape) every case sees ...
template_variables: {}      # ... and template variables
cases:
  - id: weather_paris
    messages: [{role: user, content: "..."}]     # OpenAI ChatCompletion shape
    functions: [...]        # optional: replaces the suite's functions for this case
    template_variables: {first_message: true}    # optional, merged over the suite's
    expect:
      function: get_weather                      # one expected call ...
      arguments: {city: Paris}                   # ... with these values (strings: case-insensitive)
      schema: {required: [city]}                 # ... and/or arguments valid against this schema
    # expect: {calls: [{function: a, arguments: {...}}, {function: b}]}   parallel calls, any order
    # expect: {no_call: true}                                             a plain answer
```
"""

from __future__ import annotations

from core.errors import UserError
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from jsonschema import exceptions as js_exceptions
from jsonschema import validators

from core.conversation import Conversation, ConversationError

SUITES_DIR = Path(__file__).with_name("suites")


class SuiteError(UserError, ValueError):
    """A suite that cannot be found or read; the message says why."""


@dataclass
class ExpectedCall:
    function: str
    arguments: dict = field(default_factory=dict)  # required values (a subset of the call's arguments)
    schema: dict | None = None  # a JSON schema the call's arguments must satisfy

    def to_dict(self) -> dict:
        data: dict = {"function": self.function}
        if self.arguments:
            data["arguments"] = self.arguments
        if self.schema:
            data["schema"] = self.schema
        return data


@dataclass
class Expectation:
    calls: list[ExpectedCall] = field(default_factory=list)  # empty = no call expected
    allow_extra_calls: bool = False

    @property
    def no_call(self) -> bool:
        return not self.calls

    def to_dict(self) -> dict:
        if self.no_call:
            return {"no_call": True}
        return {"calls": [c.to_dict() for c in self.calls], "allow_extra_calls": self.allow_extra_calls}


@dataclass
class BfclAnswer:
    """What BFCL judges a case by: its category, its own function docs, and its ground truth (none for (ir)relevance)."""
    category: str
    functions: list[dict]
    ground_truth: list[dict]


@dataclass
class Case:
    id: str
    conversation: Conversation
    expect: Expectation
    description: str = ""
    category: str = ""  # the BFCL category of a BFCL case: the matrix counts each category apart
    bfcl: BfclAnswer | None = None  # a BFCL case is judged by BFCL's checker, not by `expect`


@dataclass
class Suite:
    name: str
    cases: list[Case]
    description: str = ""
    path: str = ""

    def case(self, case_id: str) -> Case:
        for c in self.cases:
            if c.id == case_id:
                return c
        raise SuiteError(f"suite '{self.name}' has no case '{case_id}'")

    def subset(self, case_ids: list[str]) -> "Suite":
        """These cases, in the suite's order (BFCL's, for BFCL), each once however often it is named."""
        wanted = {self.case(i).id for i in case_ids}
        return Suite(self.name, [c for c in self.cases if c.id in wanted], self.description, self.path)

    def first(self, count: int) -> "Suite":
        """The first `count` cases of each category (a suite of its own cases has one: the first `count`)."""
        if count < 1:
            raise SuiteError("--cases N must be at least 1")
        taken: dict[str, int] = {}
        cases = []
        for c in self.cases:
            taken[c.category] = taken.get(c.category, 0) + 1
            if taken[c.category] <= count:
                cases.append(c)
        return Suite(self.name, cases, self.description, self.path)


def names() -> list[str]:
    return [p.stem for p in sorted(SUITES_DIR.glob("*.yaml"))]


def load(name_or_path: str) -> Suite:
    """A shipped suite by name (`memgpt`, `tools`) or a suite file by path."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = SUITES_DIR / f"{name_or_path}.yaml"
        if "/" in name_or_path or not path.is_file():
            raise SuiteError(f"unknown suite '{name_or_path}'; shipped suites: {', '.join(names())} (or give a .yaml path)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SuiteError(f"suite file {path.name} is not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    except OSError as e:
        raise SuiteError(f"cannot read the suite file {path}: {e.strerror}") from None
    return from_data(data, path.stem, str(path))


def from_data(data, default_name: str = "suite", path: str = "") -> Suite:
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list) or not data["cases"]:
        raise SuiteError(f"suite {default_name} needs a non-empty 'cases' list")
    name = str(data.get("name") or default_name)
    system = data.get("system")
    functions = data.get("functions") or []
    variables = data.get("template_variables") or {}
    cases, seen = [], set()
    for i, raw in enumerate(data["cases"]):
        if not isinstance(raw, dict) or not raw.get("id"):
            raise SuiteError(f"suite {name}: case {i + 1} needs an 'id'")
        case_id = str(raw["id"])
        if case_id in seen:
            raise SuiteError(f"suite {name}: the case id '{case_id}' is used twice")
        seen.add(case_id)
        where = f"suite {name}, case {case_id}"
        messages = list(raw.get("messages") or [])
        if system and not (messages and isinstance(messages[0], dict) and messages[0].get("role") == "system"):
            messages.insert(0, {"role": "system", "content": system})
        try:
            conversation = Conversation.from_data({
                "messages": messages,
                "functions": raw.get("functions", functions),
                "template_variables": {**variables, **(raw.get("template_variables") or {})},
                "now": raw.get("now", data.get("now")),
            })
        except ConversationError as e:
            raise SuiteError(f"{where}: {e}") from None
        cases.append(Case(case_id, conversation, _expectation(raw.get("expect"), conversation, where),
                          str(raw.get("description") or "")))
    return Suite(name, cases, str(data.get("description") or ""), path)


def _expectation(raw, conversation: Conversation, where: str) -> Expectation:
    if not isinstance(raw, dict):
        raise SuiteError(f"{where}: 'expect' must be a mapping (function/arguments/schema, calls, or no_call: true)")
    if raw.get("no_call"):
        return Expectation()
    calls_raw = raw.get("calls") if "calls" in raw else [raw]
    if not isinstance(calls_raw, list) or not calls_raw:
        raise SuiteError(f"{where}: 'expect.calls' must be a non-empty list")
    known = {f["name"] for f in conversation.functions}
    calls = []
    for c in calls_raw:
        if not isinstance(c, dict) or not isinstance(c.get("function"), str):
            raise SuiteError(f"{where}: every expected call needs a 'function' name")
        if c["function"] not in known:
            raise SuiteError(f"{where}: expects a call to '{c['function']}', which is not among the case's functions")
        arguments = c.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise SuiteError(f"{where}: 'arguments' must be a mapping of argument: value")
        schema = c.get("schema")
        if schema is not None:
            try:
                validators.validator_for(schema).check_schema(schema)
            except js_exceptions.SchemaError as e:
                raise SuiteError(f"{where}: the schema for '{c['function']}' is invalid: {e.message}") from None
        calls.append(ExpectedCall(c["function"], arguments, schema))
    return Expectation(calls, bool(raw.get("allow_extra_calls", False)))
