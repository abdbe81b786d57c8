"""The embedded backend (llama-cpp-python in process, SmolLM2): finish reasons, its own token counts,
probabilities, tokenizing, the GGUF's chat template, grammar and JSON schema."""

from __future__ import annotations

import json

import backends
from backends import Settings

PROMPT = "<|im_start|>user\nCount from 1 to 20, separated by commas.<|im_end|>\n<|im_start|>assistant\n"
GREEDY = {"max_new_tokens": 6, "temperature": 0.0, "top_k": 1, "seed": 7, "stop": ["<|im_end|>"]}


def embedded(**kw):
    return backends.create("embedded", Settings(**kw))


def test_finish_and_usage_from_its_own_tokenizer():
    done = embedded().complete(PROMPT, GREEDY)
    assert done.finish_reason == "length" and done.finish_raw == "length"
    assert done.usage["completion_tokens"] == 6 and done.usage_source == "own tokenizer"
    assert done.usage["prompt_tokens"] == len(embedded().tokenize(PROMPT))  # SmolLM2 adds no BOS
    assert done.tokens is None and "logprobs" not in done.request["json"]
    stopped = embedded().complete(PROMPT, {**GREEDY, "max_new_tokens": 40, "stop": ["3"]})
    assert "3" not in stopped.text and stopped.finish_reason == "stop"


def test_probabilities_load_a_logits_all_model_only_when_asked():
    done = embedded(probabilities=3).complete(PROMPT, {**GREEDY, "max_new_tokens": 4})
    assert done.request["json"]["logprobs"] == 3
    assert len(done.tokens) == 4 and "".join(t["token"] for t in done.tokens) == done.text
    for t in done.tokens:
        assert t["logprob"] <= 0 and 1 <= len(t["top"]) <= 3
        assert t["top"][0]["token"] == t["token"]  # greedy


def test_tokenize_shows_special_tokens():
    toks = embedded().tokenize("<|im_start|>user\nHi")
    assert toks[0] == {"id": 1, "piece": "<|im_start|>"}
    assert "".join(t["piece"] for t in toks) == "<|im_start|>user\nHi"


def test_model_info_reads_the_gguf_chat_template():
    info = embedded().model_info()
    assert info["source"] == "GGUF metadata of SmolLM2-135M-Instruct.Q4_1.gguf"
    assert "<|im_start|>" in info["chat_template"] and info["name"]


def test_grammar_and_json_schema():
    done = embedded().complete(PROMPT, {**GREEDY, "max_new_tokens": 10, "grammar": 'root ::= "yes" | "no"'})
    assert done.text in ("yes", "no") and done.request["json"]["grammar"] == 'root ::= "yes" | "no"'
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    done = embedded().complete(PROMPT, {**GREEDY, "max_new_tokens": 30, "json_schema": schema})
    assert isinstance(json.loads(done.text)["n"], int) and done.request["json"]["json_schema"] == schema
    json.dumps(done.request)  # the record stays plain data (the grammar object is built at call time)


def test_capabilities():
    caps = backends.TYPES["embedded"].capabilities()
    assert caps["probabilities"] and caps["tokenize"] and caps["model_template"] and caps["grammar"] and caps["json_schema"]
