"""The scoreboard: which wrapper, preset and grammar work with a model, measured.

    suite (cases: conversation + expectation; or BFCL's cases and ground truth) x wrappers x presets
        x grammar on/off x N -> flow (render -> backend -> parse) over a pool of servers
        -> verdict per run (journaled) -> counts per cell (and per BFCL category)

Modules: `suites` (YAML suites), `bfcl` (BFCL's data), `catalog` (every suite by name), `verdict`
(+ `bfcl_check`, BFCL's AST-checker rules), `grammar`, `pool` (servers), `journal` (resume),
`runner`, `report` (the matrix as JSON, CSV, text).

`run_scoreboard(ScoreRequest(...), progress, stop, on_run) -> Scoreboard`; `Scoreboard.to_dict()`
is the JSON of issue 6, `.to_csv()` the matrix, `.table()` the text the CLI prints.
"""

from .catalog import load as load_suite
from .catalog import names as suite_names
from .grammar import Constraint, GrammarUnsupported, derive
from .report import RunRecord, Scoreboard
from .runner import ScoreRequest, run_scoreboard
from .suites import Case, Expectation, ExpectedCall, Suite, SuiteError
from .verdict import Verdict, judge

__all__ = ["Case", "Constraint", "Expectation", "ExpectedCall", "GrammarUnsupported", "RunRecord", "ScoreRequest",
           "Scoreboard", "Suite", "SuiteError", "Verdict", "derive", "judge", "load_suite", "run_scoreboard",
           "suite_names"]
