"""Python wrappers: MemGPT-style wrapper classes dropped into the user folder's `plugins/`.

A plugin is a `.py` file defining a class with MemGPT's wrapper interface
(`memgpt/local_llm/llm_chat_completion_wrappers/wrapper_base.py`):

    from wrappers.plugins import LLMChatCompletionWrapper   # or duck-type: no base class needed

    class MyWrapper(LLMChatCompletionWrapper):
        stop = ["<|im_end|>"]                  # optional: default stop strings (else MemGPT's list)
        supports_first_message = True          # optional: then first_message=... is passed, as MemGPT does

        def chat_completion_to_prompt(self, messages, functions, first_message=False, function_documentation=None):
            return "...the prompt..."

        def output_to_chat_completion_response(self, raw_llm_output):
            return {"role": "assistant", "content": "inner thoughts",
                    "function_call": {"name": "send_message", "arguments": '{"message": "hi"}'}}

Every class defined in the file with both methods (and no abstract ones left) becomes a wrapper,
named after the file (`my_wrapper.py` → `my_wrapper`), or `file-Class` when the file defines several.
The file is imported with the app's own permissions (it is code the user put in their own folder).
A plugin that fails to import, defines no such class, cannot be instantiated with no arguments, or
takes a name already used by a built-in or YAML wrapper is skipped and reported by `load_errors()`.
Plugins are re-imported when their file changes (size or modification time).

A plugin `Wrapper` has `kind == "python"`, `template` = the file's source (the page shows it
read-only) and `source` = the file path. `render` calls `chat_completion_to_prompt(messages,
functions)`; `parse` calls `output_to_chat_completion_response(raw)` and reads MemGPT's message
dict (`content` is the inner monologue, `function_call` / `tool_calls` the call, arguments a JSON
string), then validates the call and runs MemGPT's checks like any MemGPT wrapper.
"""

from __future__ import annotations

import abc
import importlib.util
import inspect
import json
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import parsers
from parsers import ParseError, ParseResult, ToolCall
from parsers.memgpt_checks import memgpt_checks
from core import userdir
from core.conversation import Conversation

from .wrapper import Wrapper
from .render import TemplateError

# MemGPT's default stop list (local_llm/settings/simple.py), the stop strings a plugin gets by default
MEMGPT_STOP = ["\nUSER:", "\nASSISTANT:", "\nFUNCTION RETURN:", "\nUSER", "\nASSISTANT", "\nFUNCTION RETURN",
               "\nFUNCTION", "\nFUNC", "<|im_start|>", "<|im_end|>", "<|im_sep|>", "\n### ", "\n#", "  }\n}\n"]
_NAME = re.compile(r"[^A-Za-z0-9._+-]+")


class LLMChatCompletionWrapper(abc.ABC):
    """MemGPT's wrapper base class (wrapper_base.py), for plugins to subclass."""

    supports_first_message = False

    @abc.abstractmethod
    def chat_completion_to_prompt(self, messages, functions, function_documentation=None):
        """Go from ChatCompletion to a single prompt string"""

    @abc.abstractmethod
    def output_to_chat_completion_response(self, raw_llm_output):
        """Turn the LLM output string into a ChatCompletion response"""


def folder() -> Path:
    return userdir.folder("plugins")


@dataclass
class _Loaded:
    key: tuple  # (mtime_ns, size) of the file when imported
    wrappers: dict  # name -> PluginWrapper
    error: str | None


_cache: dict[Path, _Loaded] = {}
_lock = threading.Lock()


class PluginWrapper(Wrapper):
    """A wrapper whose prompt and parse are a Python object's methods. The plugin object is a class
    attribute (`instance`) of a subclass made per plugin, so the instance `__dict__` holds only the
    Wrapper fields (code that copies a wrapper with `Wrapper(**w.__dict__)` keeps working)."""

    instance = None

    @classmethod
    def make(cls, name: str, instance, path: Path, source_text: str) -> "PluginWrapper":
        bound = type(f"PluginWrapper_{type(instance).__name__}", (cls,), {"instance": instance})
        return bound(name, instance, path, source_text)

    def __init__(self, name: str, instance, path: Path, source_text: str):
        cls = type(instance)
        doc = inspect.getdoc(cls) or ""
        super().__init__(
            name=name, template=source_text, parser="python_plugin",
            description=(f"Python wrapper {cls.__name__} from {path.name}. " + doc).strip(),
            stop=list(getattr(cls, "stop", None) or MEMGPT_STOP),
            variables={"first_message": False}, kind="python", source=str(path),
        )

    def _check_template(self, template: str | None) -> None:
        if template is not None and template != self.template:
            raise TemplateError(f"'{self.name}' is a Python wrapper: edit {self.source} (the page shows it read-only)")

    def render(self, conversation: Conversation, template: str | None = None) -> str:
        self._check_template(template)
        variables = {**self.variables, **conversation.template_variables}
        kwargs = {}
        if getattr(self.instance, "supports_first_message", False):
            kwargs["first_message"] = bool(variables.get("first_message"))
        try:
            prompt = self.instance.chat_completion_to_prompt(conversation.messages, conversation.functions, **kwargs)
        except Exception as e:  # plugin code may raise anything: show it in place of the prompt
            raise TemplateError(f"{type(self.instance).__name__}.chat_completion_to_prompt raised "
                                f"{type(e).__name__}: {e}", _plugin_line(e, self.source)) from None
        if not isinstance(prompt, str):
            raise TemplateError(f"{type(self.instance).__name__}.chat_completion_to_prompt returned "
                                f"{type(prompt).__name__}, not a string")
        return prompt

    def parse(self, raw: str, conversation: Conversation | None = None) -> ParseResult:
        conversation = conversation or Conversation(messages=[])
        variables = {**self.variables, **conversation.template_variables}
        try:
            message = self.instance.output_to_chat_completion_response(raw)
        except Exception as e:
            # MemGPT's proxy wraps any parse exception in this sentence
            result = ParseResult(error=ParseError(f"Failed to parse JSON from local LLM response - error: "
                                                  f"{type(e).__name__}: {e}"))
        else:
            result = message_to_result(message)
        result.checks.extend(parsers.schema_checks(result.tool_calls, conversation.functions))
        result.checks.extend(memgpt_checks(result, conversation.messages, bool(variables.get("first_message"))))
        return result


def _plugin_line(exc: BaseException, path: str | None) -> int | None:
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if path and tb.tb_frame.f_code.co_filename == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _arguments(value):
    if isinstance(value, str):
        try:
            return json.loads(value, strict=False)
        except json.JSONDecodeError:
            return value  # kept as written, as MemGPT passes it on
    return value


def message_to_result(message) -> ParseResult:
    """MemGPT's assistant message dict → ParseResult (content = the inner monologue, as MemGPT has it)."""
    if not isinstance(message, dict):
        return ParseResult(error=ParseError(f"output_to_chat_completion_response returned {type(message).__name__}, "
                                            "not a message dict"))
    content = message.get("content")
    calls = []
    fc = message.get("function_call")
    if isinstance(fc, dict):
        calls.append(ToolCall(fc.get("name"), _arguments(fc.get("arguments"))))
    for tc in message.get("tool_calls") or []:
        f = tc.get("function", tc) if isinstance(tc, dict) else {}
        if isinstance(f, dict):
            calls.append(ToolCall(f.get("name"), _arguments(f.get("arguments"))))
    text = content if isinstance(content, str) else None
    return ParseResult(content=text, inner_thoughts=content, tool_calls=calls)


def _classes(module) -> list[type]:
    found = []
    for _, obj in vars(module).items():
        if (inspect.isclass(obj) and obj.__module__ == module.__name__
                and callable(getattr(obj, "chat_completion_to_prompt", None))
                and callable(getattr(obj, "output_to_chat_completion_response", None))
                and not inspect.isabstract(obj)):
            found.append(obj)
    return found


def _load(path: Path) -> _Loaded:
    stat = path.stat()
    key = (stat.st_mtime_ns, stat.st_size)
    cached = _cache.get(path)
    if cached and cached.key == key:
        return cached
    stem = _NAME.sub("_", path.stem)
    module_name = f"pfp_plugin_{stem}_{abs(hash(str(path)))}"
    try:
        text = path.read_text(encoding="utf-8")
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses & co. look their module up while it runs
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
        classes = _classes(module)
        if not classes:
            raise LookupError("it defines no class with chat_completion_to_prompt and output_to_chat_completion_response")
        wrappers = {}
        for cls in classes:
            name = stem if len(classes) == 1 else f"{stem}-{cls.__name__}"
            try:
                instance = cls()
            except Exception as e:
                raise TypeError(f"{cls.__name__}() failed: {type(e).__name__}: {e} "
                                "(a plugin class must be constructible with no arguments)") from None
            wrappers[name] = PluginWrapper.make(name, instance, path, text)
        loaded = _Loaded(key, wrappers, None)
    except SyntaxError as e:
        loaded = _Loaded(key, {}, f"plugin {path.name} has a syntax error at line {e.lineno}: {e.msg}")
    except BaseException as e:  # noqa: BLE001 - SystemExit and the like in a plugin must not stop the app
        if isinstance(e, KeyboardInterrupt):
            raise
        line = _plugin_line(e, str(path))
        where = f" (line {line})" if line else ""
        loaded = _Loaded(key, {}, f"plugin {path.name} could not be loaded{where}: {type(e).__name__}: {e}")
    _cache[path] = loaded
    return loaded


def _all(taken: set[str]) -> tuple[dict[str, PluginWrapper], list[str]]:
    wrappers: dict[str, PluginWrapper] = {}
    errors: list[str] = []
    directory = folder()
    if not directory.is_dir():
        return wrappers, errors
    with _lock:
        for path in sorted(directory.glob("*.py")):
            if path.name.startswith((".", "_")):
                continue
            loaded = _load(path)
            if loaded.error:
                errors.append(loaded.error)
            for name, w in loaded.wrappers.items():
                if name in taken or name in wrappers:
                    errors.append(f"plugin {path.name}: the name '{name}' is already taken by another wrapper; rename the file")
                else:
                    wrappers[name] = w
    return wrappers, errors


def names(taken: set[str] = frozenset()) -> list[str]:
    return list(_all(set(taken))[0])


def get(name: str, taken: set[str] = frozenset()) -> PluginWrapper | None:
    return _all(set(taken))[0].get(name)


def load_errors(taken: set[str] = frozenset()) -> list[str]:
    return _all(set(taken))[1]
