"""Every size bound of the parsers, in one place. Each keeps a parse linear (or bounded) on huge or
adversarial output; a call that a bound stops is reported as an error saying so, never dropped
in silence."""

MAX_REPAIR_CHARS = 100_000  # json-repair is pure Python and super-linear on pathological input
MAX_REPAIR_DEPTH = 64  # deeper invalid JSON is not handed to json-repair
MAX_BRACKET_DEPTH = 512  # deeper than any real call: bracket matching gives up
MAX_PYTHON_CHARS = 1_000_000  # Python calls longer than this are not given to `ast`
MAX_CANDIDATES = 64  # how many "maybe a call here" starts a prose scan may try
MAX_NESTING = 100  # Gemma's call syntax: nested objects/lists
