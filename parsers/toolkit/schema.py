"""The functions' JSON schemas: finding a function and a parameter's schema, the JSON type name of
a value (one table, used by the validator's messages too), and typing text-encoded (XML-ish)
values with the parameter's schema (`cast_value`; strings stay verbatim)."""

from __future__ import annotations

import ast
import json
from typing import Any

from .limits import MAX_PYTHON_CHARS

# Python type -> JSON schema type name; bool before int (a bool is an int in Python)
JSON_TYPE_NAMES = (
    (bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
    (list, "array"), (dict, "object"), (type(None), "null"),
)


def json_type_name(value: Any) -> str:
    """The JSON schema type of a decoded value ("integer", "array"…); else its Python type name."""
    for py, name in JSON_TYPE_NAMES:
        if isinstance(value, py):
            return name
    return type(value).__name__


def find_function(functions: list[dict], name: str) -> dict | None:
    for f in functions or []:
        if not isinstance(f, dict):
            continue
        g = f.get("function") if isinstance(f.get("function"), dict) else f
        if g.get("name") == name:
            return g
    return None


def param_schema(functions: list[dict], fname: str, pname: str) -> dict | None:
    f = find_function(functions, fname)
    if f is None:
        return None
    props = (f.get("parameters") or {}).get("properties") or {}
    schema = props.get(pname)
    return schema if isinstance(schema, dict) else None


def schema_types(schema: dict) -> list[str]:
    t = schema.get("type")
    types = [t] if isinstance(t, str) else [x for x in t if isinstance(x, str)] if isinstance(t, list) else []
    for key in ("anyOf", "oneOf"):
        for sub in schema.get(key) or []:
            if isinstance(sub, dict):
                types += [x for x in schema_types(sub) if x not in types]
    if not types and "enum" in schema:
        types = sorted({json_type_name(v) for v in schema["enum"]})
    if not types and "properties" in schema:
        types = ["object"]
    return types


_MISSING = object()


def _cast_as(t: str, s: str) -> Any:
    v = s.strip()
    if t == "null":
        return None if v.lower() in ("null", "none") else _MISSING
    if t == "boolean":
        low = v.lower()
        return True if low == "true" else False if low == "false" else _MISSING
    if t == "integer":
        try:
            return int(v)
        except ValueError:
            try:
                f = float(v)
                return int(f) if f.is_integer() else _MISSING
            except (ValueError, OverflowError):
                return _MISSING
    if t == "number":
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return _MISSING
    if t in ("object", "array"):
        want = dict if t == "object" else list
        try:
            value = json.loads(v)
        except (ValueError, RecursionError):
            try:
                value = ast.literal_eval(v) if len(v) < MAX_PYTHON_CHARS else _MISSING
            except Exception:  # noqa: BLE001 - not a Python literal either
                return _MISSING
        return value if isinstance(value, want) else _MISSING
    return _MISSING


def cast_value(functions: list[dict], fname: str, pname: str, text: str) -> Any:
    """Type a text value with the parameter's schema; strings stay verbatim.

    Unknown function / parameter / type: best effort, JSON if it parses, else the string.
    """
    schema = param_schema(functions, fname, pname)
    types = schema_types(schema) if schema else []
    if types == ["string"]:
        return text
    for t in ("null", "boolean", "integer", "number", "object", "array"):
        if t in types:
            value = _cast_as(t, text)
            if value is not _MISSING:
                return value
    if "string" in types:
        return text
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text
