"""BFCL's AST-checker semantics, written here from its documented rules (no code of BFCL's).

A call is correct when:
- the function name is the expected one, or that name with its dots as underscores: BFCL renames
  `math.factorial` to `math_factorial` for models whose APIs refuse dots and then wants that one
  spelling, a choice it makes per model; a wrapper has no such setting, so both spellings pass here;
- every parameter the function doc marks required is there, and no parameter is there that the doc
  or the ground truth lacks;
- each value has the doc's type (Python names: integer, float, string, boolean, array, tuple, dict,
  any = a string), an int where a float is asked is accepted, a value of the ground truth's own type
  is accepted (BFCL's "variable" rule), arrays and tuples have their items checked one level deep;
- each value is among the possible answers: strings compare after BFCL's normalization (lower case,
  without spaces and `,./-_*^`, single quotes as double), in lists and dicts too; dicts key by key;
- a parameter absent from the call is fine only where its possible answers include "".

Categories: `parallel*` match the calls to the ground truth in any order (each expected call takes
the first unused call that passes, as BFCL does), `multiple` and simple ones want exactly one call,
`irrelevance` wants no call, `relevance` at least one (an output that does not parse counts as no
call, as in BFCL: `verdict.judge`). Each miss is one sentence naming the check.
"""

from __future__ import annotations

import re

from parsers import ToolCall

PYTHON_TYPES = {"string": str, "integer": int, "float": float, "boolean": bool, "array": list, "tuple": list,
                "dict": dict, "any": str}
NESTED = ("array", "tuple")  # their items are type-checked too
_STRIP = re.compile(r"[ ,./\-_*^]")


def normalize(text: str) -> str:
    return _STRIP.sub("", text).lower().replace("'", '"')


def _norm(value):
    return normalize(value) if isinstance(value, str) else value


def _answer_type(possible: list):
    """The type of the first possible answer that is not "" (the "optional" marker), or None."""
    return next((type(a) for a in possible if a != ""), None)


def _type_problem(param: str, value, possible: list, doc: dict) -> tuple[str | None, bool]:
    """(why the value's type is wrong or None, whether the value stands for a variable of the answer's type)."""
    kind = doc.get("type")
    expected = PYTHON_TYPES.get(kind, str)
    answer_type = _answer_type(possible)
    variable = answer_type is not None and answer_type is not expected
    if type(value) is expected:
        if kind not in NESTED:
            return None, variable
        inner = PYTHON_TYPES.get((doc.get("items") or {}).get("type"), str)
        for candidate in possible:
            if not isinstance(candidate, list):
                return None, variable
            item_type = _answer_type(candidate)
            if all(type(v) is inner or type(v) is item_type for v in value):
                return None, variable
        return f"wrong item type in '{param}': expected {kind} of {(doc.get('items') or {}).get('type')}, got {value!r}", False
    if answer_type is not None and type(value) is answer_type:
        return None, True
    return f"wrong type for '{param}': expected {kind}, got {type(value).__name__} {value!r}", False


def _dict_problem(param: str, value: dict, possible: list) -> str | None:
    problem = f"wrong value for '{param}': {value!r} matches none of the possible answers"
    for answer in possible:
        if answer == "" or not isinstance(answer, dict):
            continue
        unknown = next((k for k in value if k not in answer), None)
        if unknown is not None:
            problem = f"wrong value for '{param}': unexpected key '{unknown}'"
            continue
        wrong = next((k for k, v in value.items() if _norm(v) not in [_norm(a) for a in answer[k]]), None)
        if wrong is not None:
            problem = f"wrong value for '{param}.{wrong}': {value[wrong]!r} not in {answer[wrong]!r}"
            continue
        missing = next((k for k, v in answer.items() if k not in value and "" not in v), None)
        if missing is not None:
            problem = f"wrong value for '{param}': missing key '{missing}'"
            continue
        return None
    return problem


def _list_of_dicts_problem(param: str, value: list, possible: list) -> str | None:
    problem = f"wrong value for '{param}': {value!r} matches none of the possible answers"
    for answer in possible:
        answer = [] if answer == "" else answer  # "" (may be left out) compares as an empty list, as in BFCL
        if not isinstance(answer, list) or len(answer) != len(value):
            problem = f"wrong value for '{param}': {len(value)} item(s), the answer has another number"
            continue
        problems = [_dict_problem(param, v, [a]) if isinstance(v, dict) else f"wrong value for '{param}': {v!r} is not an object"
                    for v, a in zip(value, answer, strict=True)]
        first = next((p for p in problems if p), None)
        if first is None:
            return None
        problem = first
    return problem


def _value_problem(param: str, value, possible: list, doc: dict) -> str | None:
    kind = doc.get("type")
    if kind == "tuple" and isinstance(value, tuple):
        value = list(value)
    if kind == "float" and type(value) is int:
        value = float(value)
    wrong_type, variable = _type_problem(param, value, possible, doc)
    if wrong_type:
        return wrong_type
    expected = PYTHON_TYPES.get(kind, str)
    inner = (doc.get("items") or {}).get("type") if kind in NESTED else None
    if not variable:
        if expected is dict:
            return _dict_problem(param, value, possible)
        if expected is list and inner == "dict":
            return _list_of_dicts_problem(param, value, possible)
        if expected is str:
            if normalize(value) in [normalize(a) for a in possible if isinstance(a, str)]:
                return None
            return f"wrong value for '{param}': {value!r} not in {possible!r}"
        if expected is list:
            if [_norm(v) for v in value] in [[_norm(v) for v in a] for a in possible if isinstance(a, (list, str))]:
                return None
            return f"wrong value for '{param}': {value!r} not in {possible!r}"
    if value in possible:
        return None
    return f"wrong value for '{param}': {value!r} not in {possible!r}"


def names_match(called: str, expected: str) -> bool:
    """`a.b` or `a_b` for BFCL's `a.b` (BFCL accepts one of them, per model; both here)."""
    return called == expected or called == expected.replace(".", "_")


def call_problem(doc: dict | None, call: ToolCall, answer: dict) -> str | None:
    """Why `call` is not the ground-truth call `answer` ({name: {param: [possible values]}}); None if it is."""
    name, possible = next(iter(answer.items()))
    if not names_match(call.name, name):
        return f"wrong function: called '{call.name}', expected '{name}'"
    if doc is None:
        return f"the function doc of '{name}' is missing from the case"
    args = call.arguments
    if not isinstance(args, dict):
        return f"the arguments of '{call.name}' are not an object"
    params = (doc.get("parameters") or {}).get("properties") or {}
    for required in (doc.get("parameters") or {}).get("required") or []:
        if required not in args:
            return f"missing required parameter '{required}'"
    for param, value in args.items():
        if param not in params or param not in possible:
            return f"unexpected parameter '{param}'"
        problem = _value_problem(param, value, possible[param], params[param])
        if problem:
            return problem
    for param, values in possible.items():
        if param not in args and "" not in values:
            return f"missing parameter '{param}': the answer does not allow leaving it out"
    return None


def _doc(functions: list[dict], name: str) -> dict | None:
    return next((f for f in functions if f.get("name") == name), None)


def problems(category: str, functions: list[dict], ground_truth: list[dict], calls: list[ToolCall]) -> list[str]:
    """BFCL's verdict on `calls` for a case: [] when correct, else the failed check in one sentence."""
    if "irrelevance" in category:
        return [f"expected no call, got {', '.join(repr(c.name) for c in calls)}"] if calls else []
    if "relevance" in category:
        return [] if calls else ["expected at least one call, got none"]
    if len(calls) != len(ground_truth):
        return [f"wrong number of calls: expected {len(ground_truth)}, got {len(calls)}"]
    if "parallel" not in category:
        answer = ground_truth[0]
        problem = call_problem(_doc(functions, next(iter(answer))), calls[0], answer)
        return [problem] if problem else []
    used: set[int] = set()
    for i, answer in enumerate(ground_truth):
        doc = _doc(functions, next(iter(answer)))
        misses = []
        for j, call in enumerate(calls):
            if j in used:
                continue
            problem = call_problem(doc, call, answer)
            if problem is None:
                used.add(j)
                break
            misses.append(f"call {j + 1}: {problem}")
        else:
            return [f"no call matches expected call {i + 1} ({next(iter(answer))}): " + "; ".join(misses)]
    return []
