"""The environment: Jinja's immutable sandbox compiled to call the checks, its output counted."""

from __future__ import annotations

import functools
from types import MethodType

from jinja2 import nodes
from jinja2.compiler import CodeGenerator
from jinja2.runtime import Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from .deadline import Expired
from .filters import bound_filters
from .operators import (BIG_WIDTH, BUILTIN_METHOD, KEEPING_METHODS, check_keeper, check_text_method, checked_add,
                        checked_concat, checked_mod, checked_mul, checked_pow, lipsum)
from .sizes import (MAX_CODE_LINES, MAX_OUTPUT_CHARS, TEXT, Limit, checked_print, checked_value, ensure, is_count,
                    text_size, too_big)


_SMALL_PIECE = 4096  # a printed piece a buffer may hold uncounted until its next check
_CHECK_EVERY = 64  # pieces: at most 64 x 4,096 characters wait to be counted


class Buffer(list):
    """A macro's or a captured block's output (Jinja collects it in a list and joins it). Appending
    stays a plain list append: the compiled template counts a printed value of 4,096 characters or
    more (or one that is not text) before adding it, calls `check` every 64 pieces, and joins it
    with `joined`. A buffer that never reaches 64 pieces never sets an attribute."""

    chars = counted = pending = 0  # class defaults until the first check

    def piece(self, value) -> str:
        """A big or non-text value about to be printed into this buffer, counted first."""
        text = value if type(value) is str else str(checked_print(value))
        self.pending += len(text)
        if self.chars + self.pending > MAX_OUTPUT_CHARS:
            raise too_big("a macro's or a captured block's output")
        return text

    def check(self) -> int:
        """Counts the pieces added since the last check; returns when the next one is due."""
        new = self[self.counted:]
        self.chars += sum(map(len, new)) + new.count("")  # an empty piece counts one: a loop printing '' fills memory too
        self.counted = len(self)
        self.pending = 0
        if self.chars > MAX_OUTPUT_CHARS:
            raise too_big("a macro's or a captured block's output")
        return self.counted + _CHECK_EVERY


def joined(buffer: Buffer) -> str:
    """A buffer's text (the environment's concat, which Jinja calls on every macro's and block's output)."""
    text = "".join(buffer)  # at most MAX_OUTPUT_CHARS counted, plus what waits for the next check
    if len(text) > MAX_OUTPUT_CHARS:
        raise too_big("a macro's or a captured block's output")
    return text


def render_pieces(template, variables: dict, **more) -> str:
    """The template's output with `variables` and `more`, counted piece by piece; errors come out as
    Jinja's, with template lines."""
    out: list[str] = []
    append = out.append
    chars = 0
    try:
        for piece in template.root_render_func(template.new_context(variables, locals=more)):
            chars += len(piece) or 1
            if chars > MAX_OUTPUT_CHARS:
                raise too_big("the rendered prompt")
            append(piece)
    except Expired as stop:  # Jinja's traceback rewrite fails on a frame stopped where Python has no line
        stop.line = _template_line(template, stop.__traceback__)
        raise
    except Exception:
        template.environment.handle_exception()
    return "".join(out)


def _template_line(template, tb) -> int | None:
    """The template line of the innermost template frame in `tb` that has a line."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>" and tb.tb_lineno is not None:
            line = template.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next
    return line


_HELPERS = ("checked_add", "checked_mul", "checked_mod", "checked_pow", "checked_concat", "checked_value",
            "checked_print", "Buffer")


def _small_constant(node) -> bool:
    """A literal that `+` may add without a check: it grows a value by at most 256 characters, so
    even a loop adding it for the whole time limit stays small (each step copies the value)."""
    return isinstance(node, nodes.Const) and (isinstance(node.value, (int, float)) or
                                              (isinstance(node.value, str) and len(node.value) <= 256))


class _CodeGenerator(CodeGenerator):
    """Compiles `+ * % **`, `~` and list/tuple/dict literals to the checked helpers, `{{ x }}` to a
    size check when x is not text, and collects macro and block output in a `Buffer`."""

    def visit_Template(self, node, frame=None) -> None:
        super().visit_Template(node, frame)
        # module-level names: a global lookup per use instead of an attribute lookup on `environment`
        for helper in _HELPERS:
            self.writeline(f"{helper} = environment.{helper}")

    def buffer(self, frame) -> None:
        # the buffer, and a local holding its length at the next check (every write is in this function)
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = Buffer()")
        self.writeline(f"{frame.buffer}_next = {_CHECK_EVERY}")

    def _check_buffer(self, frame) -> None:
        self.writeline(f"if len({frame.buffer}) >= {frame.buffer}_next: {frame.buffer}_next = {frame.buffer}.check()")

    def end_write(self, frame) -> None:
        super().end_write(frame)
        if frame.buffer is not None:
            self._check_buffer(frame)

    def visit_Output(self, node: nodes.Output, frame) -> None:
        super().visit_Output(node, frame)
        if frame.buffer is not None:
            self._check_buffer(frame)

    def _output_child_pre(self, node, frame, finalize) -> None:
        if frame.eval_ctx.volatile or frame.eval_ctx.autoescape:
            return super()._output_child_pre(node, frame, finalize)
        self.write("(t_out if type(t_out := ")  # text prints as is; anything else is size-checked first

    def _output_child_post(self, node, frame, finalize) -> None:
        if frame.eval_ctx.volatile or frame.eval_ctx.autoescape:
            return super()._output_child_post(node, frame, finalize)
        if frame.buffer is None:  # the render counts every piece it yields
            self.write(") is str else str(checked_print(t_out)))")
        else:  # a buffer counts small text in bulk, anything else on the spot
            self.write(f") is str and len(t_out) < {_SMALL_PIECE} else {frame.buffer}.piece(t_out))")

    def _checked_call(self, helper: str, *operands, frame) -> None:
        self.write(f"{helper}(")
        for i, operand in enumerate(operands):
            self.write(", " if i else "")
            self.visit(operand, frame)
        self.write(")")

    def visit_Add(self, node, frame) -> None:
        if _small_constant(node.left) or _small_constant(node.right):
            self.write("(")
            self.visit(node.left, frame)
            self.write(" + ")
            self.visit(node.right, frame)
            self.write(")")
        else:
            self._checked_call("checked_add", node.left, node.right, frame=frame)

    def visit_Mul(self, node, frame) -> None:
        self._checked_call("checked_mul", node.left, node.right, frame=frame)

    def visit_Mod(self, node, frame) -> None:
        self._checked_call("checked_mod", node.left, node.right, frame=frame)

    def visit_Pow(self, node, frame) -> None:
        self._checked_call("checked_pow", node.left, node.right, frame=frame)

    def visit_Concat(self, node: nodes.Concat, frame) -> None:
        self.write("checked_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def _literal(self, node, frame, write) -> None:
        try:  # made of constants only: as big as the template text, nothing to count
            node.as_const(frame.eval_ctx)
        except nodes.Impossible:
            self.write("checked_value(")
            write(node, frame)
            self.write(")")
        else:
            write(node, frame)

    def visit_List(self, node, frame) -> None:
        self._literal(node, frame, super().visit_List)

    def visit_Dict(self, node, frame) -> None:
        self._literal(node, frame, super().visit_Dict)

    def visit_Tuple(self, node, frame) -> None:
        if node.ctx != "load":  # an assignment target: {% for k, v in ... %}
            return super().visit_Tuple(node, frame)
        self._literal(node, frame, super().visit_Tuple)


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox with the limits above; `extra_filters` are bounded like the built-in ones."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"+", "*", "%", "**"})  # never folded at compile time: 'a' * 10**9 stays a runtime check
    checked_add = staticmethod(checked_add)
    checked_mul = staticmethod(checked_mul)
    checked_mod = staticmethod(checked_mod)
    checked_pow = staticmethod(checked_pow)
    checked_concat = staticmethod(checked_concat)
    checked_value = staticmethod(checked_value)
    checked_print = staticmethod(checked_print)
    Buffer = Buffer

    concat = staticmethod(joined)

    def _compile(self, source: str, filename: str):
        # Python's compile() holds the interpreter lock and cannot be stopped: every user's request
        # waits for it, and the watchdog only once it is done. Refuse what would take long.
        lines = source.count("\n")
        if lines > MAX_CODE_LINES:
            raise Limit(f"the template is too long: it compiles to {lines:,} lines of Python, over {MAX_CODE_LINES:,}")
        return super()._compile(source, filename)

    def __init__(self, *, extra_filters: dict | None = None, **options):
        super().__init__(finalize=checked_print, **options)
        self.filters = bound_filters({**self.filters, **(extra_filters or {})})
        self.globals["lipsum"] = lipsum

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805  (names as in Jinja's own call)
        if not __self.is_safe_callable(__obj):
            raise SecurityError(f"{__obj!r} is not safely callable")
        kind = type(__obj)
        if kind is BUILTIN_METHOD or kind is MethodType:
            owner = __obj.__self__
            if isinstance(owner, TEXT):
                args = check_text_method(__obj.__name__, owner, args, kwargs)
            elif __obj.__name__ in KEEPING_METHODS:
                check_keeper(__obj, args, kwargs)
            result = __context.call(__obj, *args, **kwargs)
            if isinstance(result, TEXT) and len(result) > MAX_OUTPUT_CHARS:  # encode(), hex(), upper()...
                raise too_big(f"{type(owner).__name__}.{__obj.__name__}()")
            return result
        if kind is Macro:
            if __obj.catch_varargs or __obj.catch_kwargs:
                check_keeper(__obj, args, kwargs)
        elif isinstance(__obj, type):
            check_keeper(__obj, args, kwargs)
        return __context.call(__obj, *args, **kwargs)

    def wrap_str_format(self, value):  # the sandbox asks this of every attribute it fetches
        if type(value) is not BUILTIN_METHOD and type(value) is not MethodType:
            return None
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        text = value.__self__

        def checked(*args, **kwargs):
            if BIG_WIDTH.search(text.replace("*", "")) or any(
                    is_count(a) and a > 999_999 for a in (*args, *kwargs.values())):
                raise too_big("a str.format with a huge width")
            values = [*args, *kwargs.values()]
            if values and isinstance(values[0], dict) and value.__name__ == "format_map":
                values = list(values[0].values())
            ensure(len(text) + text.count("{") * max(map(text_size, values), default=0), "a str.format result")
            return wrapper(*args, **kwargs)

        return functools.update_wrapper(checked, wrapper)
