"""BFCL's single-turn categories as suites, read in BFCL's own format.

The Berkeley Function Calling Leaderboard ships its data in the `bfcl-eval` package:
`bfcl_eval/data/BFCL_v4_<category>.json` (one JSON object a line: `id`, `question` = turns of
OpenAI-shape messages, `function` = docs with BFCL's Python type names) and
`bfcl_eval/data/possible_answer/BFCL_v4_<category>.json` (`id`, `ground_truth`). The package is
found without importing it (its `__init__` pulls a large dependency tree), or the folder is given
(`--bfcl-dir`). Nothing is downloaded.

A case keeps BFCL's id (`simple_python_42`), BFCL's order, BFCL's function docs and ground truth
(judged by `bfcl_check`), and a conversation whose functions are the docs turned into JSON schema,
which the wrappers render and the schema-valid check reads.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

from core.conversation import Conversation, ConversationError

from .suites import BfclAnswer, Case, Expectation, Suite, SuiteError

CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance", "live_simple", "live_multiple",
              "live_parallel", "live_parallel_multiple", "live_irrelevance", "live_relevance")
PREFIX = "bfcl:"
HOW_TO_GET = "pip install --no-deps bfcl-eval (it ships the data), or give the data folder with --bfcl-dir"

# BFCL's Python type names -> JSON schema types ("any" takes any value: no "type")
JSON_TYPES = {"dict": "object", "float": "number", "tuple": "array", "integer": "integer", "string": "string",
              "boolean": "boolean", "array": "array"}



def data_dir(override: str | Path | None = None) -> Path:
    """The folder holding BFCL_v*_<category>.json: `override`, or the installed bfcl_eval package's data folder."""
    if override:
        path = Path(override)
        for candidate in (path, path / "data", path / "bfcl_eval" / "data"):
            if any(candidate.glob("BFCL_v*_*.json")):
                return candidate
        raise SuiteError(f"{path} holds no BFCL data (BFCL_v4_<category>.json files)")
    # find_spec on a top-level name locates the package without running its __init__
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        raise SuiteError(f"the BFCL data is not installed: {HOW_TO_GET}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not folder.is_dir():
        raise SuiteError(f"the bfcl_eval package at {folder.parent} has no data folder: {HOW_TO_GET}")
    return folder


def available(override: str | Path | None = None) -> bool:
    try:
        data_dir(override)
    except SuiteError:
        return False
    return True


def _versions(folder: Path, category: str) -> dict[int, Path]:
    """{N: BFCL_v<N>_<category>.json} (an exact category: `simple` never matches `live_simple`)."""
    pattern = re.compile(rf"BFCL_v(\d+)_{re.escape(category)}\.json")
    return {int(m.group(1)): p for p in folder.glob("BFCL_v*.json") if (m := pattern.fullmatch(p.name))}


def _files(base: Path, category: str) -> tuple[Path, Path | None]:
    """The newest questions and, except for (ir)relevance (no ground truth: the call count decides), the
    ground truth of the same BFCL version: a v5 question is never judged by a v4 answer."""
    questions = _versions(base, category)
    if not questions:
        raise SuiteError(f"{base} has no BFCL_v4_{category}.json")
    if "relevance" in category:
        return questions[max(questions)], None
    answers = _versions(base / "possible_answer", category)
    both = sorted(set(questions) & set(answers))
    if not both:
        found = ", ".join(f"v{v}" for v in sorted(questions))
        raise SuiteError(f"{base / 'possible_answer'} has no ground truth for {category} of its questions' BFCL version ({found})")
    return questions[both[-1]], answers[both[-1]]


def _read_lines(path: Path) -> list[dict]:
    entries = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SuiteError(f"cannot read {path}: {e.strerror}") from None
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise SuiteError(f"{path.name} line {n} is not JSON: {e.msg}") from None
    return entries


def json_schema(doc):
    """A BFCL parameter doc with its Python type names turned into JSON schema ("dict" -> "object", ...)."""
    if isinstance(doc, list):
        return [json_schema(d) for d in doc]
    if not isinstance(doc, dict):
        return doc
    out = {}
    for key, value in doc.items():
        if key == "type" and isinstance(value, str):
            if value in JSON_TYPES:
                out["type"] = JSON_TYPES[value]
            elif value != "any":
                out["type"] = value
        elif key == "properties" and isinstance(value, dict):
            out["properties"] = {name: json_schema(p) for name, p in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = json_schema(value)
        elif key != "optional":  # BFCL's own flag, not JSON schema
            out[key] = value
    return out


def function_schema(function: dict) -> dict:
    return {**function, "parameters": json_schema(function.get("parameters") or {"type": "dict", "properties": {}})}


def load_category(category: str, folder: str | Path | None = None) -> Suite:
    if category not in CATEGORIES:
        raise SuiteError(f"unknown BFCL category '{category}'; known: {', '.join(CATEGORIES)}")
    questions, answer_file = _files(data_dir(folder), category)
    answers = {str(e.get("id")): e.get("ground_truth") for e in _read_lines(answer_file)} if answer_file else {}
    cases = []
    for entry in _read_lines(questions):
        case_id = str(entry.get("id"))
        where = f"{questions.name}, case {case_id}"
        turns = entry.get("question")
        functions = entry.get("function")
        if not isinstance(turns, list) or not all(isinstance(t, list) for t in turns) or not isinstance(functions, list):
            raise SuiteError(f"{where}: needs 'question' (a list of turns) and 'function' (a list of docs)")
        truth = answers.get(case_id, [])
        if "relevance" not in category and not truth:
            raise SuiteError(f"{where}: no ground truth in possible_answer/")
        try:
            conversation = Conversation.from_data({"messages": [m for turn in turns for m in turn],
                                                   "functions": [function_schema(f) for f in functions]})
        except ConversationError as e:
            raise SuiteError(f"{where}: {e}") from None
        cases.append(Case(case_id, conversation, Expectation(), category=category,
                          bfcl=BfclAnswer(category, functions, truth)))
    return Suite(PREFIX + category, cases, f"BFCL {category} ({questions.name})", str(questions))


def load(spec: str, folder: str | Path | None = None) -> Suite:
    """`bfcl:simple_python`, several joined by commas (`bfcl:simple_python,bfcl:multiple`), or `bfcl:all`."""
    names = [n.strip().removeprefix(PREFIX) for n in spec.split(",") if n.strip()]
    if names == ["all"]:
        names = list(CATEGORIES)
    suites = [load_category(n, folder) for n in names]
    if len(suites) == 1:
        return suites[0]
    return Suite(PREFIX + "+".join(names), [c for s in suites for c in s.cases], "BFCL " + ", ".join(names),
                 ", ".join(s.path for s in suites))
