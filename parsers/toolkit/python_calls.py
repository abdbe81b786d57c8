"""Python-style calls, read with `ast` (never evaluated): `[f(a=1), g(b='x')]`, a bare call, one
call per line; positional arguments mapped with the schema, nested calls kept as text; where a
call list sits in prose, and whether cut-off text is the beginning of calls."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from .limits import MAX_BRACKET_DEPTH, MAX_CANDIDATES, MAX_PYTHON_CHARS
from .out import Out
from .scan import Piece
from .schema import find_function


class PyCallError(ValueError):
    pass


class PyCallTooLong(PyCallError):
    """Python calls longer than the parser reads (limits.MAX_PYTHON_CHARS): maybe a call, so said."""

    def __init__(self, size: int):
        super().__init__(f"the call is {size:,} characters long; at most {MAX_PYTHON_CHARS:,} are read")


_JSON_NAMES = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}


def dotted_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        left = dotted_name(node.value)
        return f"{left}.{node.attr}" if left else None
    return None


def py_value(node: ast.AST, notes: list[str]) -> Any:
    """A literal from the AST; nested calls become their source text (noted)."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (bytes, complex)) or node.value is Ellipsis:
            raise PyCallError(f"unsupported literal {ast.unparse(node)}")
        return node.value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [py_value(e, notes) for e in node.elts]
    if isinstance(node, ast.Dict):
        result = {}
        for k, v in zip(node.keys, node.values, strict=False):
            if k is None:
                raise PyCallError("'**' inside a dict literal")
            key = py_value(k, notes)
            result[key if isinstance(key, str) else json.dumps(key)] = py_value(v, notes)
        return result
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = py_value(node.operand, notes)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.Name) and node.id in _JSON_NAMES:
        return _JSON_NAMES[node.id]
    if isinstance(node, ast.Call) and dotted_name(node.func):
        src = ast.unparse(node)
        notes.append(f"nested call {src} kept as text (it cannot be flattened)")
        return src
    if isinstance(node, ast.JoinedStr):
        raise PyCallError("f-strings are not literals")
    raise PyCallError(f"argument value {ast.unparse(node)!r} is not a literal")


def _call(node: ast.Call, functions: list[dict], notes: list[str]) -> tuple[str, dict]:
    name = dotted_name(node.func)
    if not name:
        raise PyCallError(f"{ast.unparse(node.func)!r} is not a function name")
    args: dict = {}
    if node.args:
        f = find_function(functions, name)
        order = list(((f or {}).get("parameters") or {}).get("properties") or {})
        for k, a in enumerate(node.args):
            if isinstance(a, ast.Starred):
                raise PyCallError("'*args' in a call")
            key = order[k] if k < len(order) else f"arg{k + 1}"
            args[key] = py_value(a, notes)
        notes.append(f"positional argument(s) of {name} mapped to " + ", ".join(list(args)))
    for kw in node.keywords:
        if kw.arg is None:
            raise PyCallError("'**kwargs' in a call")
        args[kw.arg] = py_value(kw.value, notes)
    return name, args


def python_calls(src: str, functions: list[dict] | None = None) -> tuple[list[tuple[str, dict]], list[str]]:
    """Calls from `[f(a=1), g(b='x')]`, a bare `f(a=1)`, or one call per line / `;`-separated.

    Raises PyCallError (with `.offset` where known) when the text is not such calls.
    """
    s = src.strip()
    if not s:
        raise PyCallError("empty")
    if len(s) > MAX_PYTHON_CHARS:
        raise PyCallTooLong(len(s))
    notes: list[str] = []
    try:
        tree = ast.parse(s, mode="exec")
    except SyntaxError as e:
        err = PyCallError(f"not valid Python calls: {e.msg}")
        err.offset = _offset(s, e.lineno, e.offset)
        raise err from None
    except (ValueError, RecursionError, MemoryError) as e:
        raise PyCallError(f"not valid Python calls: {type(e).__name__}") from None
    calls: list[tuple[str, dict]] = []
    for stmt in tree.body:
        if not isinstance(stmt, ast.Expr):
            raise PyCallError(f"a {type(stmt).__name__} statement is not a call")
        node = stmt.value
        elts = node.elts if isinstance(node, (ast.List, ast.Tuple)) else [node]
        for e in elts:
            if not isinstance(e, ast.Call):
                raise PyCallError(f"{ast.unparse(e)[:60]!r} is not a call")
            calls.append(_call(e, functions or [], notes))
    return calls, notes


def _offset(s: str, lineno: int | None, col: int | None) -> int | None:
    if not lineno:
        return None
    lines = s.split("\n")
    return sum(len(line) + 1 for line in lines[: lineno - 1]) + max(0, (col or 1) - 1)


def add_python_calls(out: Out, src: str, index: int, *, label: str = "call list") -> bool:
    """Read `src` (found at out.text[index]) as Python calls and add them; False if it is not."""
    try:
        calls, notes = python_calls(src, out.functions)
    except PyCallError as e:
        out.fail(f"no call: the {label} is not valid: {e}", index)
        return False
    for n in notes:
        out.note(n)
    for name, args in calls:
        out.add_call(name, args)
    return True

_PY_TOKEN = re.compile(r"""'[^'\\\n]*(?:\\.[^'\\\n]*)*(?P<sq>')?|"[^"\\\n]*(?:\\.[^"\\\n]*)*(?P<dq>")?|[\[\](){}]""")


def match_py_bracket(text: str, i: int) -> int:
    """Index of the bracket closing text[i] in Python source (quoted strings skipped), or -1."""
    depth = 0
    for m in _PY_TOKEN.finditer(text, i):
        c = m.group()[0]
        if c in "[({":
            depth += 1
            if depth > MAX_BRACKET_DEPTH:
                return -1
        elif c in "])}":
            depth -= 1
            if depth == 0:
                return m.start()
    return -1


CALL_LIST = "["  # a call list `[f(a=1), g()]` starts with it
PY_LIST_START = re.compile(re.escape(CALL_LIST) + r"\s*[A-Za-z_][\w.]*\s*\(")
_CLOSERS = {"[": "]", "(": ")", "{": "}"}


def python_prefix(src: str) -> bool:
    """Is `src` the beginning of valid Python calls, cut off (rather than something else)?
    Checked by closing its open string and brackets (with a placeholder value) and parsing."""
    if len(src) > MAX_PYTHON_CHARS:
        return False
    stack: list[str] = []
    quote = ""
    for m in _PY_TOKEN.finditer(src):
        tok = m.group()
        c = tok[0]
        if c in "'\"":
            if m.group("sq" if c == "'" else "dq") is None and m.end() == len(src):
                quote = c  # the text ends inside this string
        elif c in "[({":
            stack.append(c)
        elif stack and _CLOSERS[stack[-1]] == c:
            stack.pop()
    closers = "".join(_CLOSERS[c] for c in reversed(stack))
    for fill in ("", "None", "=None"):
        try:
            ast.parse(src + quote + fill + closers)
            return True
        except Exception:  # noqa: BLE001 - SyntaxError, RecursionError, MemoryError…
            continue
    return False


def python_list_in_text(out: Out, piece: Piece, *, bare_call: bool = True) -> None:
    """Python call list(s) `[f(a=1), …]` in the text (the whole text, or glued to prose), or the
    whole text as a bare call `f(a=1)`. Prose is content; an unclosed list is a truncated call."""
    text = piece.text
    t = text.strip()
    lead = len(text) - len(text.lstrip())
    if bare_call and t and not t.startswith("[") and re.match(r"[A-Za-z_][\w.]*\s*\(", t):
        saved = out.error
        try:
            calls, notes = python_calls(t, out.functions)
        except PyCallTooLong as e:
            out.fail(f"no call: {e}", piece.start + lead)
            out.add_text(text)
            return
        except PyCallError:
            calls = None
            if match_py_bracket(t, t.index("(")) == -1 and python_prefix(t):
                out.fail("truncated call: the call is not closed", piece.start + lead)
                return
        if calls is not None:
            out.error = saved
            out.repairs.extend(notes)
            for name, args in calls:
                out.add_call(name, args)
            return
    i, pending, tries = 0, 0, 0
    while tries < MAX_CANDIDATES:
        m = PY_LIST_START.search(text, i)
        if m is None:
            break
        k = m.start()
        j = match_py_bracket(text, k)
        if j == -1:
            if len(text) - k > MAX_PYTHON_CHARS:
                out.fail(f"no call: {PyCallTooLong(len(text) - k)}", piece.start + k)
                break
            if python_prefix(text[k:]):
                out.add_text(text[pending:k])
                out.fail("truncated call: the call list is not closed", piece.start + k)
                return
            break  # not calls: the rest is text
        try:
            calls, notes = python_calls(text[k : j + 1], out.functions)
        except PyCallTooLong as e:
            out.fail(f"no call: {e}", piece.start + k)
            i = j + 1  # the text stays content
            continue
        except PyCallError:
            tries += 1
            i = k + 1
            continue
        out.add_text(text[pending:k])
        out.repairs.extend(notes)
        for name, args in calls:
            out.add_call(name, args)
        pending = i = j + 1
    else:
        gave_up_at = PY_LIST_START.search(text, i)
        if gave_up_at:  # the limit stopped the scan: later calls are not read, so say where
            out.fail(f"no call: stopped looking for call lists here, after {tries} that were not calls "
                     f"(at most {MAX_CANDIDATES} are tried)", piece.start + gave_up_at.start())
    out.add_text(text[pending:])
