"""Verdicts: what one run's parsed answer is worth.

- parsed:   the wrapper's parser read the output without an error;
- valid:    parsed, and every call names a known function with arguments valid against its JSON
            schema (`parsers.validate.validate_calls`); a plain answer with no call is valid;
- expected: parsed, and the calls are the ones the case expects: for a suite's own case its
            `expect` (name, required values, schema), for a BFCL case BFCL's checker (`bfcl_check`);
            in BFCL's irrelevance categories an output that fails to parse is right too (BFCL
            counts an output it cannot decode as no call), though not `parsed`.
"""

from __future__ import annotations

from dataclasses import dataclass

from jsonschema import validators
from parsers import ParseResult, ToolCall
from parsers.validate import validate_calls

from . import bfcl_check
from .suites import Case, ExpectedCall, Expectation


@dataclass
class Verdict:
    parsed: bool = False
    valid: bool = False
    expected: bool = False

    def to_dict(self) -> dict:
        return {"parsed": self.parsed, "valid": self.valid, "expected": self.expected}


def _same(expected, actual) -> bool:
    """Required value vs. the model's: strings compare trimmed and case-insensitively, objects as subsets."""
    if isinstance(expected, str):
        return isinstance(actual, str) and expected.strip().casefold() == actual.strip().casefold()
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, (int, float)):
        return isinstance(actual, (int, float)) and abs(expected - actual) < 1e-9
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and _same(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) and all(map(_same, expected, actual))
    return expected == actual


def call_problems(exp: ExpectedCall, call: ToolCall) -> list[str]:
    """Why `call` is not the expected call (empty: it is)."""
    if call.name != exp.function:
        return [f"called '{call.name}', expected '{exp.function}'"]
    args = call.arguments
    if not isinstance(args, dict):
        return [f"the arguments of '{call.name}' are not an object"]
    problems = [f"'{exp.function}' argument '{k}' is {args[k]!r}, expected {v!r}" if k in args
                else f"'{exp.function}' lacks the expected argument '{k}'" for k, v in exp.arguments.items()
                if not (k in args and _same(v, args[k]))]
    if exp.schema:
        cls = validators.validator_for(exp.schema)
        for e in cls(exp.schema).iter_errors(args):
            where = ".".join(map(str, e.absolute_path))
            problems.append(f"'{exp.function}' arguments{(' ' + where) if where else ''}: {e.message}")
    return problems


def expectation_problems(expect: Expectation, calls: list[ToolCall]) -> list[str]:
    if expect.no_call:
        return [f"expected no call, got {', '.join(repr(c.name) for c in calls)}"] if calls else []
    if not calls:
        return [f"expected a call to {', '.join(repr(c.function) for c in expect.calls)}, got no call"]
    if len(calls) > len(expect.calls) and not expect.allow_extra_calls:
        extra = f"expected {len(expect.calls)} call(s), got {len(calls)}"
    else:
        extra = None

    # one-to-one matching of expected calls to actual calls (a handful: plain backtracking)
    def match(i: int, used: frozenset) -> bool:
        if i == len(expect.calls):
            return True
        return any(j not in used and not call_problems(expect.calls[i], c) and match(i + 1, used | {j})
                   for j, c in enumerate(calls))

    if match(0, frozenset()):
        return [extra] if extra else []
    problems = []
    for exp in expect.calls:
        candidates = [call_problems(exp, c) for c in calls]
        if not any(not p for p in candidates):
            best = min(candidates, key=len)
            problems.extend(best)
    return (problems or ["the calls do not match the expected ones one to one"]) + ([extra] if extra else [])


def _as_documented(calls: list[ToolCall], functions: list[dict]) -> list[ToolCall]:
    """BFCL's dotted names: a call to `math_factorial` is checked against the schema of `math.factorial`."""
    names = {f.get("name") for f in functions}
    renamed = {n.replace(".", "_"): n for n in names if isinstance(n, str) and "." in n}
    return [ToolCall(renamed[c.name], c.arguments) if c.name not in names and c.name in renamed else c for c in calls]


def judge(parsed: ParseResult | None, case: Case) -> tuple[Verdict, list[str]]:
    if parsed is None:
        return Verdict(), ["no output"]
    if parsed.error is not None:
        # BFCL counts an output that does not decode as "no call": right where no call is wanted
        no_call_wanted = case.bfcl is not None and "irrelevance" in case.bfcl.category
        return Verdict(expected=no_call_wanted), [f"parse error: {parsed.error.message}"]
    functions = case.conversation.functions
    calls = _as_documented(parsed.tool_calls, functions) if case.bfcl else parsed.tool_calls
    problems: list[str] = []
    for call, probs in zip(calls, validate_calls(calls, functions), strict=True):
        problems += [f"{call.name}: {p}" for p in probs]
    valid = not problems
    if case.bfcl:
        mismatch = bfcl_check.problems(case.bfcl.category, case.bfcl.functions, case.bfcl.ground_truth, parsed.tool_calls)
    else:
        mismatch = expectation_problems(case.expect, parsed.tool_calls)
    return Verdict(parsed=True, valid=valid, expected=not mismatch), problems + mismatch
