"""The model's own chat template as a wrapper: loaded from a GGUF file, a Hugging Face
`tokenizer_config.json` / `chat_template.jinja` / `chat_template.json`, a text-generation-webui
instruction-template YAML, or pasted text.

Every loader returns a `Wrapper` (kind "jinja") whose template is the model's template unchanged,
rendered by `wrappers.render` like transformers does (same sandbox, same variables: `messages`,
`tools`, `add_generation_prompt`, `bos_token`, `eos_token`), with `variables` holding the model's
bos/eos token strings, `stop` its eos token, and `parser` the one `suggest_parser` picks (the
description says why).

    w = from_gguf("model.gguf")                    # tokenizer.chat_template + bos/eos from the vocab
    w = from_tokenizer_config("path/to/model_dir") # or the tokenizer_config.json itself
    w = from_webui_yaml("instruction-templates/ChatML.yaml")
    w = from_text(pasted, bos_token="<s>")
    w = load(path)                                 # any of the above, chosen by file name / content
    fmt, reason = suggest_parser(w.template)

The GGUF reader is our own and reads only the metadata header (never the tensors).
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from . import Wrapper, WrapperError

_NAME = re.compile(r"[^A-Za-z0-9._+-]+")


class ModelTemplateError(WrapperError):
    """The file holds no usable chat template; the message says why."""


# --------------------------------------------------------------------------------------------
# GGUF metadata

GGUF_MAGIC = b"GGUF"
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
MAX_STRING = 64 * 1024 * 1024
MAX_ITEMS = 16 * 1024 * 1024


class _Reader:
    def __init__(self, f: BinaryIO, version: int):
        self.f = f
        self.count = "<Q" if version >= 2 else "<I"  # GGUF v1 used 32-bit lengths and counts

    def take(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise ModelTemplateError("the GGUF file ends inside its metadata (truncated file?)")
        return data

    def unpack(self, fmt: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def length(self, limit: int) -> int:
        n = self.unpack(self.count)
        if n > limit:
            raise ModelTemplateError(f"the GGUF metadata holds an implausible length ({n}); not a GGUF file?")
        return n

    def string(self) -> str:
        return self.take(self.length(MAX_STRING)).decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        self.f.seek(self.length(MAX_STRING), 1)

    def value(self, vtype: int, keep: bool = True) -> Any:
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == _STRING:
            if keep:
                return self.string()
            self.skip_string()
            return None
        if vtype == _ARRAY:
            itype = self.unpack("<I")
            n = self.length(MAX_ITEMS)
            if not keep:
                if itype in _SCALARS:
                    self.f.seek(n * struct.calcsize(_SCALARS[itype]), 1)
                else:
                    for _ in range(n):
                        self.value(itype, keep=False)
                return None
            return [self.value(itype) for _ in range(n)]
        raise ModelTemplateError(f"unknown GGUF metadata type {vtype}; not a GGUF file, or a newer GGUF version")


def read_gguf_metadata(path: str | Path, keys: set[str] | None = None) -> dict[str, Any]:
    """The GGUF file's metadata key/values (only `keys` when given; arrays not asked for are skipped
    without being decoded). Reads the header only."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            if f.read(4) != GGUF_MAGIC:
                raise ModelTemplateError(f"{path.name} is not a GGUF file (it does not start with 'GGUF')")
            version = struct.unpack("<I", f.read(4))[0]
            if version not in (1, 2, 3):
                raise ModelTemplateError(f"{path.name} is GGUF version {version}; versions 1-3 are understood")
            r = _Reader(f, version)
            r.unpack(r.count)  # tensor count
            n_kv = r.length(1_000_000)
            meta: dict[str, Any] = {}
            for _ in range(n_kv):
                key = r.string()
                vtype = r.unpack("<I")
                want = keys is None or key in keys
                value = r.value(vtype, keep=want)
                if want:
                    meta[key] = value
            return meta
    except OSError as e:
        raise ModelTemplateError(f"cannot read {path}: {e.strerror}") from None
    except struct.error:
        raise ModelTemplateError(f"{path.name} ends inside its GGUF header (truncated file?)") from None


_GGUF_KEYS = {"tokenizer.chat_template", "tokenizer.ggml.tokens", "tokenizer.ggml.bos_token_id",
              "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.add_bos_token",
              "general.name", "general.architecture", "general.basename", "general.finetune"}


_meta_cache: dict[tuple, dict] = {}


def _gguf_meta_cached(path: Path) -> dict:
    """The metadata from_gguf needs, cached by (path, size, mtime): a big vocabulary takes ~0.5 s to read."""
    try:
        stat = path.stat()
    except OSError as e:
        raise ModelTemplateError(f"cannot read {path}: {e.strerror}") from None
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _meta_cache:
        if len(_meta_cache) > 8:
            _meta_cache.clear()
        _meta_cache[key] = read_gguf_metadata(path, _GGUF_KEYS)
    return _meta_cache[key]


def from_gguf(path: str | Path, name: str | None = None) -> Wrapper:
    """The chat template stored in a GGUF file (`tokenizer.chat_template`), with its bos/eos token
    strings looked up in the vocabulary."""
    path = Path(path)
    meta = _gguf_meta_cached(path)
    template = meta.get("tokenizer.chat_template")
    if not isinstance(template, str) or not template.strip():
        raise ModelTemplateError(f"{path.name} has no tokenizer.chat_template in its metadata; load the model's "
                                 "tokenizer_config.json or paste its template instead")
    tokens = meta.get("tokenizer.ggml.tokens") or []

    def token(key: str) -> str:
        i = meta.get(key)
        return tokens[i] if isinstance(i, int) and 0 <= i < len(tokens) else ""

    bos, eos = token("tokenizer.ggml.bos_token_id"), token("tokenizer.ggml.eos_token_id")
    eot = token("tokenizer.ggml.eot_token_id")
    model = meta.get("general.name") or path.stem
    add_bos = meta.get("tokenizer.ggml.add_bos_token")
    extra = {True: " The model's tokenizer adds BOS by itself (add_bos_token).",
             False: " The model's tokenizer does not add BOS (add_bos_token false)."}.get(add_bos, "")
    return _wrapper(name or path.stem, template, bos, eos, f"GGUF metadata of {path.name} ({model})", str(path),
                    stop_extra=[eot] if eot and eot != eos else [], note=extra)


# --------------------------------------------------------------------------------------------
# Hugging Face tokenizer files


def _token_text(value) -> str:
    """A special token as tokenizer_config.json writes it: a string or an AddedToken dict."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return ""


def template_names(config: dict) -> list[str]:
    """The names of a tokenizer_config's templates (["default"] for a single string template)."""
    t = config.get("chat_template")
    if isinstance(t, list):
        return [x.get("name") for x in t if isinstance(x, dict) and isinstance(x.get("name"), str)]
    return ["default"] if isinstance(t, str) else []


def _pick_template(chat_template, template_name: str | None, where: str) -> tuple[str, str]:
    if isinstance(chat_template, str):
        if template_name not in (None, "default"):
            raise ModelTemplateError(f"{where} has a single chat template, no template named '{template_name}'")
        return chat_template, ""
    if isinstance(chat_template, list):
        named = {x.get("name"): x.get("template") for x in chat_template if isinstance(x, dict)}
        wanted = template_name or ("default" if "default" in named else next(iter(named), None))
        if wanted not in named or not isinstance(named[wanted], str):
            raise ModelTemplateError(f"{where} has no chat template named '{wanted}'; it has: "
                                     f"{', '.join(str(n) for n in named) or 'none'}")
        others = [str(n) for n in named if n != wanted]
        return named[wanted], f" Template '{wanted}' (also in the file: {', '.join(others)})." if others else ""
    raise ModelTemplateError(f"{where} has no chat_template")


def from_tokenizer_config(path: str | Path, template_name: str | None = None, name: str | None = None) -> Wrapper:
    """From a `tokenizer_config.json` (its `chat_template`: a string, or a list of named templates,
    "default" unless `template_name` says otherwise), or from a model folder holding it; a
    `chat_template.jinja` (or `chat_template.json`) next to it wins, as in transformers."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    config_path = path if path.is_file() else folder / "tokenizer_config.json"
    config: dict = {}
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ModelTemplateError(f"{config_path.name} is not valid JSON: {e.msg} at line {e.lineno}") from None
        if not isinstance(config, dict):
            raise ModelTemplateError(f"{config_path.name} is not a JSON object")
    bos, eos = _token_text(config.get("bos_token")), _token_text(config.get("eos_token"))
    label = name or _model_name(folder, config_path)
    jinja = folder / "chat_template.jinja"
    if jinja.is_file() and template_name in (None, "default"):
        return _wrapper(label, jinja.read_text(encoding="utf-8"), bos, eos, f"{jinja.name} in {folder.name}", str(jinja))
    tjson = folder / "chat_template.json"
    if tjson.is_file() and "chat_template" not in config:
        try:
            config["chat_template"] = json.loads(tjson.read_text(encoding="utf-8")).get("chat_template")
        except (json.JSONDecodeError, AttributeError):
            raise ModelTemplateError(f"{tjson.name} is not a JSON object with a chat_template") from None
    if not config_path.is_file() and "chat_template" not in config:
        raise ModelTemplateError(f"no tokenizer_config.json, chat_template.jinja or chat_template.json in {folder}")
    template, note = _pick_template(config.get("chat_template"), template_name, config_path.name)
    return _wrapper(label, template, bos, eos, f"{config_path.name} of {folder.name}", str(config_path), note=note)


def from_jinja_file(path: str | Path, bos_token: str = "", eos_token: str = "", name: str | None = None) -> Wrapper:
    """A bare `chat_template.jinja` (the tokens come from a tokenizer_config.json beside it, if any)."""
    path = Path(path)
    config_path = path.with_name("tokenizer_config.json")
    if config_path.is_file() and not (bos_token or eos_token):
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
            bos_token, eos_token = _token_text(config.get("bos_token")), _token_text(config.get("eos_token"))
        except (json.JSONDecodeError, AttributeError):
            pass
    return _wrapper(name or _model_name(path.parent, path), path.read_text(encoding="utf-8"), bos_token, eos_token,
                    path.name, str(path))


# --------------------------------------------------------------------------------------------
# text-generation-webui and pasted text


def from_webui_yaml(path_or_text: str | Path, name: str | None = None, bos_token: str = "", eos_token: str = "") -> Wrapper:
    """A text-generation-webui instruction template (`instruction-templates/*.yaml`): its
    `instruction_template:` key is a Jinja chat template in transformers' style."""
    path = Path(path_or_text) if not (isinstance(path_or_text, str) and "\n" in path_or_text) else None
    text = path.read_text(encoding="utf-8") if path is not None and path.is_file() else str(path_or_text)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ModelTemplateError(f"the instruction template is not valid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict) or not isinstance(data.get("instruction_template"), str):
        raise ModelTemplateError("the YAML has no 'instruction_template:' key holding a template "
                                 "(text-generation-webui's instruction-templates/*.yaml format)")
    label = name or (path.stem if path is not None and path.is_file() else "webui-template")
    where = path.name if path is not None and path.is_file() else "pasted text-generation-webui YAML"
    return _wrapper(label, data["instruction_template"], bos_token, eos_token, where,
                    str(path) if path is not None and path.is_file() else None)


def from_text(text: str, name: str = "pasted-template", bos_token: str = "", eos_token: str = "") -> Wrapper:
    """A pasted template: a Jinja chat template as is, or (recognised) a tokenizer_config.json or a
    text-generation-webui YAML pasted whole."""
    stripped = (text or "").strip()
    if not stripped:
        raise ModelTemplateError("the pasted template is empty")
    if stripped.startswith("{") and '"chat_template"' in stripped:
        try:
            config = json.loads(stripped)
        except json.JSONDecodeError:
            config = None
        if isinstance(config, dict):
            template, note = _pick_template(config.get("chat_template"), None, "the pasted tokenizer_config.json")
            return _wrapper(name, template, bos_token or _token_text(config.get("bos_token")),
                            eos_token or _token_text(config.get("eos_token")), "pasted tokenizer_config.json", None, note=note)
    if re.match(r"^instruction_template\s*:", stripped, re.M) and "{%" not in stripped.split("instruction_template", 1)[0]:
        return from_webui_yaml(text if "\n" in text else text + "\n", name=name, bos_token=bos_token, eos_token=eos_token)
    return _wrapper(name, text, bos_token, eos_token, "pasted text", None)


def load(path: str | Path, **kwargs) -> Wrapper:
    """Any model template file or folder, chosen by its name and content."""
    path = Path(path)
    if path.is_dir():
        return from_tokenizer_config(path, **kwargs)
    if not path.is_file():
        raise ModelTemplateError(f"no such file: {path}")
    with path.open("rb") as f:
        if f.read(4) == GGUF_MAGIC:
            return from_gguf(path, **kwargs)
    if path.suffix == ".json":
        return from_tokenizer_config(path, **kwargs)
    if path.suffix in (".yaml", ".yml"):
        return from_webui_yaml(path, **kwargs)
    if path.suffix in (".jinja", ".j2", ".jinja2"):
        return from_jinja_file(path, **kwargs)
    return from_text(path.read_text(encoding="utf-8"), name=kwargs.get("name") or path.stem)


# --------------------------------------------------------------------------------------------


def _model_name(folder: Path, file: Path) -> str:
    return folder.name if folder.name and folder.name not in (".", "") else file.stem


def _safe_name(label: str) -> str:
    name = _NAME.sub("-", label).strip("-.") or "model"
    return ("model-" + name)[:64] if not name.startswith("model") else name[:64]


def _wrapper(label: str, template: str, bos: str, eos: str, where: str, source: str | None,
             stop_extra: list[str] | None = None, note: str = "") -> Wrapper:
    parser, reason = suggest_parser(template)
    stop = [t for t in [eos, *(stop_extra or [])] if t]
    description = f"The model's own chat template, from {where}.{note} Parser: {parser} ({reason})."
    return Wrapper(name=_safe_name(label), template=template, parser=parser, description=description,
                   stop=stop, variables={"bos_token": bos, "eos_token": eos}, source=source)


# --------------------------------------------------------------------------------------------
# parser suggestion, from the strings a template contains (fc_formats.md §2, most specific first)

_RULES: list[tuple[str, tuple[str, ...], str]] = [
    # (format id, every string required, what it means)
    ("memgpt_inner_monologue", ("Please select the most suitable function and parameters",),
     "MemGPT's function list; the model answers {\"function\", \"params\"} JSON"),
    ("kimi_k2", ("<|tool_calls_section_begin|>",), "Kimi K2 tool-call section tokens"),
    ("kimi_k2", ("<|im_middle|>",), "Kimi K2 role tokens (<|im_middle|>); calls in <|tool_call_begin|> sections"),
    ("deepseek_v32_dsml", ("｜DSML｜",), "DeepSeek V3.2 DSML invoke markup"),
    ("deepseek_v3", ("<｜tool▁calls▁begin｜>", "```json"), "DeepSeek V3/R1 'function<｜tool▁sep｜>name' + ```json calls"),
    ("deepseek_v31", ("<｜tool▁calls▁begin｜>",), "DeepSeek V3.1 'name<｜tool▁sep｜>{json}' calls"),
    ("step3", ("steptml:invoke",), "Step-3 steptml invoke markup"),
    ("gpt_oss_harmony", ("<|channel|>", "<|message|>"), "OpenAI harmony channels (to=functions.NAME recipients)"),
    ("seed_oss", ("<seed:tool_call>",), "Seed-OSS <seed:tool_call> blocks"),
    ("minimax_m2", ("<minimax:tool_call>",), "MiniMax-M2 <minimax:tool_call> invoke XML"),
    ("minimax_m1", ("<tool_calls>", "<beginning_of_sentence>"), "MiniMax-M1 <tool_calls> JSON lines"),
    ("glm45", ("<arg_key>",), "GLM-4.5/4.6 <tool_call>name <arg_key>/<arg_value> pairs"),
    ("qwen3_coder_xml", ("<function=", "<parameter="), "Qwen3-Coder <function=NAME><parameter=K> XML"),
    ("functionary_v3_1", ("<function=", "<|python_tag|>"), "Functionary v3.1 <function=NAME>{json}</function>"),
    ("functionary_v3_2", (">>>",), "Functionary v3.2 '>>>name' recipients"),
    ("functionary_v2", ("<|recipient|>",), "Functionary v2 <|recipient|> headers"),
    ("command_r7b", ("<|START_ACTION|>",), "Command R7B <|START_ACTION|> JSON arrays"),
    ("command_r_plus", ("Action:", "tool_name"), "Command R+ 'Action: ```json' tool_name lists"),
    ("mistral_v13", ("[TOOL_CALLS]", "[CALL_ID]"), "Mistral v13 [TOOL_CALLS]name[CALL_ID]id[ARGS]{json}"),
    ("mistral_v11", ("[TOOL_CALLS]", "[ARGS]"), "Mistral v11 [TOOL_CALLS]name[ARGS]{json}"),
    ("mistral_v3", ("[TOOL_CALLS]",), "Mistral [TOOL_CALLS] followed by a JSON array"),
    ("functools", ("functools[",), "FireFunction functools[...] JSON arrays"),
    ("llama4_pythonic", ("<|python_start|>",), "Llama 4 pythonic calls in <|python_start|>[...]"),
    ("llama4_pythonic", ("<|header_start|>",), "Llama 4 headers (pythonic tool calls)"),
    ("phi4_mini_tags", ("<|tool_call|>", "<|/tool_call|>"), "Phi-4-mini <|tool_call|>{json}<|/tool_call|>"),
    ("granite3", ("<|tool_call|>",), "Granite 3 <|tool_call|>[json array]"),
    ("gemma4", ("<|tool_call>",), "Gemma 4 <|tool_call>call:name{...}<tool_call|>"),
    ("functiongemma", ("<start_function_call>",), "FunctionGemma <start_function_call> blocks"),
    ("nemotron_v2", ("<TOOLCALL>",), "Nemotron <TOOLCALL>[...]</TOOLCALL>"),
    ("apertus", ("<|tools_prefix|>",), "Apertus <|tools_prefix|>[{name: args}]"),
    ("internlm2", ("<|action_start|>",), "InternLM2 <|action_start|><|plugin|> actions"),
    ("longcat", ("<longcat_tool_call>",), "LongCat <longcat_tool_call> JSON"),
    ("lfm2", ("<|tool_call_start|>",), "LFM2 <|tool_call_start|>[...] calls"),
    ("olmo3", ("<function_calls>",), "OLMo 3 <function_calls> python lines"),
    ("granite_20b_fc", ("<function_call>",), "Granite-20B-FunctionCalling <function_call> JSON"),
    ("gigachat3", ("function call<|role_sep|>",), "GigaChat 3 'function call<|role_sep|>' JSON"),
    ("hunyuan_a13b", ("<tool_calls>", "<answer>"), "Hunyuan-A13B <tool_calls> JSON arrays"),
    ("hermes", ("<tool_call>",), "Hermes/Qwen <tool_call>{json}</tool_call> blocks"),
    ("jamba", ("<tool_calls>",), "<tool_calls>[json array]</tool_calls>"),
    ("llama3_json", ("<|python_tag|>",), "Llama 3.1+ JSON calls {\"name\", \"parameters\"} (<|python_tag|> for built-in tools)"),
    ("llama3_json", ("<|start_header_id|>", "parameters"), "Llama 3 headers with a JSON {\"name\", \"parameters\"} tool prompt"),
    ("xlam", ("in a single JSON array",), "xLAM bare JSON arrays [{\"name\", \"arguments\"}]"),
    ("pythonic", ("[func_name1(",), "pythonic call lists [f(a=1), g(b=2)]"),
    ("gorilla_openfunctions_v2", ("<<function>>",), "Gorilla OpenFunctions <<function>> prompt"),
    ("nexusraven_v2", ("<human_end>",), "NexusRaven-V2 'Call: f(...)<bot_end>'"),
]


def suggest_parser(template_text: str) -> tuple[str, str]:
    """(format id, reason) for a chat template, from the tool-call strings it contains."""
    text = template_text or ""
    for format_id, needles, meaning in _RULES:
        if all(n in text for n in needles):
            found = " and ".join(repr(n) for n in needles)
            return format_id, f"the template contains {found}: {meaning}"
    if "tools" in text or "tool_calls" in text:
        return ("llamacpp_generic", "the template handles tools but writes no known tool-call markers; llama.cpp's "
                "generic JSON format ({\"tool_call\": {...}}) is the usual way to prompt it")
    return ("llamacpp_generic", "the template has no tool-call markers (no native function calling); llama.cpp's "
            "generic JSON format ({\"tool_call\": {...}}) is what servers use for such models")
