"""Check parsed calls against the functions' JSON schemas (with the `jsonschema` package).

`validate_calls(calls, functions)` gives, per call, a list of human-readable problems (empty when
the call is fine): "unknown function 'x'", "missing required argument 'city'", "argument 'days'
should be integer, got string", "unexpected argument 'foo'", …
"""

from __future__ import annotations

import functools
import json

from jsonschema import exceptions as js_exceptions
from jsonschema import validators

from .result import ToolCall
from .toolkit.schema import find_function, json_type_name


def _where(error: js_exceptions.ValidationError) -> str:
    path = list(error.absolute_path)
    if not path:
        return ""
    head, rest = path[0], "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path[1:])
    return f"{head}{rest}"


def _message(error: js_exceptions.ValidationError) -> str:
    where = _where(error)
    arg = f"argument '{where}'" if where else "the arguments"
    v = error.validator
    if v == "required":
        missing = [r for r in error.validator_value if isinstance(error.instance, dict) and r not in error.instance]
        return "; ".join(f"missing required argument '{where + '.' if where else ''}{m}'" for m in missing) or error.message
    if v == "type":
        want = error.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        return f"{arg} should be {want}, got {json_type_name(error.instance)}"
    if v == "additionalProperties":
        allowed = set((error.schema.get("properties") or {}))
        extra = [k for k in error.instance if k not in allowed] if isinstance(error.instance, dict) else []
        return "; ".join(f"unexpected argument '{k}'" for k in extra) or error.message
    if v == "enum":
        return f"{arg} should be one of {error.validator_value!r}, got {error.instance!r}"
    return f"{arg}: {error.message}"


@functools.lru_cache(maxsize=256)
def _validator(schema_json: str):
    """The validator for a schema (as JSON text), or why the schema is invalid. Remembered:
    checking a schema against its metaschema is most of what validating a call costs."""
    schema = json.loads(schema_json)
    cls = validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except js_exceptions.SchemaError as e:
        return e.message
    return cls(schema)


def validate_calls(calls: list[ToolCall], functions: list[dict]) -> list[list[str]]:
    """One list of problems per call, in order (an empty list means the call is valid)."""
    problems: list[list[str]] = []
    for call in calls:
        if not isinstance(call.name, str) or not call.name:
            problems.append([f"the call has no function name (got {json_type_name(call.name)})"])
            continue
        f = find_function(functions, call.name)
        if f is None:
            problems.append([f"unknown function '{call.name}'"])
            continue
        schema = f.get("parameters") or {"type": "object"}
        if not isinstance(call.arguments, dict):
            problems.append([f"the arguments should be an object, got {json_type_name(call.arguments)}"])
            continue
        validator = _validator(json.dumps(schema, sort_keys=True, default=str))
        if isinstance(validator, str):
            problems.append([f"the schema of '{call.name}' is invalid: {validator}"])
            continue
        errors = sorted(validator.iter_errors(call.arguments), key=lambda e: (list(e.absolute_path), e.validator))
        problems.append([_message(e) for e in errors])
    return problems
