"""The scoreboard: which wrapper, preset and grammar work with a model, measured.

    suite (cases: conversation + expectation) x wrappers x presets x grammar on/off x N
        -> flow (render -> backend -> parse) -> verdict per run -> counts per cell

`run_scoreboard(ScoreRequest(...), progress, stop, on_run) -> Scoreboard`; `Scoreboard.to_dict()`
is the JSON of issue 6, `.to_csv()` the matrix, `.table()` the text the CLI prints.
"""

from .grammar import Constraint, GrammarUnsupported, derive
from .runner import RunRecord, Scoreboard, ScoreRequest, Verdict, judge, run_scoreboard
from .suites import Case, Expectation, ExpectedCall, Suite, SuiteError
from .suites import load as load_suite
from .suites import names as suite_names

__all__ = ["Case", "Constraint", "Expectation", "ExpectedCall", "GrammarUnsupported", "RunRecord", "ScoreRequest",
           "Scoreboard", "Suite", "SuiteError", "Verdict", "derive", "judge", "load_suite", "run_scoreboard",
           "suite_names"]
