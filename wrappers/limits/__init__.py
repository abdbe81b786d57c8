"""The resource limits on user templates: time, output size and the size of every value a template builds.

Jinja's sandbox stops attribute walks, not a template that loops for ever or builds a 10 GB string.
`BoundedEnvironment` (the immutable sandbox, subclassed; `environment`), `run_bounded` (`deadline`)
and `render_pieces` add:

- time: a watchdog thread stops a render (compiling included) at its deadline, wherever it is:
  template code, a filter, a library loop. Nothing is checked per loop iteration or call. A
  template that compiles to over MAX_CODE_LINES lines of Python is refused before Python compiles
  it (that step cannot be interrupted).
- output: what a render, a macro or a captured block prints is counted as it grows.
- text: operators (`+ * % **`, `~`), str and bytes methods, `str.format` and the filters that make
  text check the size of what they would build before building it (at most MAX_OUTPUT_CHARS
  characters). Those that grow text by a bounded factor (escape, upper, urlencode, encode...; at
  most 12x) are checked on their result. Integers stay within MAX_INT_BITS bits.
- sequences: a filter reads at most MAX_ITEMS items.
- shared references: a list, tuple or dict the template builds (a literal, `dict()`, `namespace()`,
  a macro's varargs, a filter's fill value, `+` and `*`) is counted as text when built, every
  reference to a shared value again, so no value can print or serialize past the limit through
  nesting (`[a, a]`, then `[b, b]`...). Values passed in are the caller's data (JSON trees), so
  `tojson` and printing a list or dict need no second count.

The numbers and `text_size` are in `sizes`; the checked operators and calls in `operators`; the
filters' limits in `filters`.
"""

from .deadline import run_bounded
from .environment import BoundedEnvironment, render_pieces
from .sizes import MAX_OUTPUT_CHARS, MAX_SECONDS, Limit

__all__ = ["MAX_OUTPUT_CHARS", "MAX_SECONDS", "BoundedEnvironment", "Limit", "render_pieces", "run_bounded"]
