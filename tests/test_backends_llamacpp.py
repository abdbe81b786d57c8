"""`llamacpp` (native API) and `openai` against llama.cpp's real `llama-server` with the SmolLM2 GGUF:
structure, token counts, probabilities, stop behaviour, constraints, tokenizing and the model's own
template — never exact text."""

from __future__ import annotations

import json
import math
import re
import time

import pytest

import backends
from backends import Completion, Settings

PROMPT = "<|im_start|>user\nCount from 1 to 20, separated by commas.<|im_end|>\n<|im_start|>assistant\n"
GREEDY = {"max_new_tokens": 12, "temperature": 0.0, "top_k": 1, "seed": 7, "stop": ["<|im_end|>"]}


def native(url, **kw):
    kw.setdefault("timeout", 60)
    return backends.create("llamacpp", Settings(url=url, **kw))


def test_streams_with_server_counts_and_a_normalized_finish(llama_server):
    events = list(native(llama_server).stream(PROMPT, GREEDY))
    deltas, final = events[:-1], events[-1]
    assert isinstance(final, Completion) and len(deltas) > 3 and "".join(deltas) == final.text
    assert final.request["url"] == llama_server + "/completion"
    assert final.request["json"]["n_predict"] == 12 and final.request["json"]["stream"] is True
    assert final.finish_reason == "length" and final.finish_raw == "limit"
    assert final.usage["completion_tokens"] == 12 and final.usage_source == "server"
    # the server's prompt count is its own tokenizer's: the same as /tokenize (+ BOS if the model adds one)
    assert final.usage["prompt_tokens"] in (len(native(llama_server).tokenize(PROMPT)),
                                            len(native(llama_server).tokenize(PROMPT)) + 1)
    assert final.response["stop"] is True and "timings" in final.response


def test_stop_string_is_excluded_and_reported(llama_server):
    done = native(llama_server).complete(PROMPT, {**GREEDY, "max_new_tokens": 40, "stop": ["3"]})
    assert "3" not in done.text and done.text.strip()
    assert done.finish_reason == "stop" and done.finish_raw == "word"
    assert done.response["stopping_word"] == "3"


def test_end_of_sequence_is_a_stop(llama_server):
    done = native(llama_server).complete("<|im_start|>user\nSay OK.<|im_end|>\n<|im_start|>assistant\n",
                                         {**GREEDY, "max_new_tokens": 200, "stop": []})
    assert done.finish_reason == "stop" and done.finish_raw == "eos"
    assert done.usage["completion_tokens"] < 200


def test_probabilities_per_token(llama_server):
    done = native(llama_server, probabilities=3).complete(PROMPT, {**GREEDY, "max_new_tokens": 5})
    assert done.request["json"]["n_probs"] == 3
    assert len(done.tokens) == done.usage["completion_tokens"] == 5
    assert "".join(t["token"] for t in done.tokens) == done.text
    for t in done.tokens:
        assert t["logprob"] <= 0 and 1 <= len(t["top"]) <= 3
        assert all(math.isfinite(a["logprob"]) and a["logprob"] <= 0 for a in t["top"])
        assert t["top"] == sorted(t["top"], key=lambda a: -a["logprob"])
        assert t["token"] == t["top"][0]["token"]  # greedy: the chosen token is the most likely


def test_post_sampling_probabilities_format(llama_server):
    done = native(llama_server, probabilities=2, extra={"post_sampling_probs": True}).complete(
        PROMPT, {**GREEDY, "max_new_tokens": 3})
    assert "top_probs" in json.dumps(done.response) or done.tokens
    assert len(done.tokens) == 3
    assert all(t["logprob"] == pytest.approx(0.0, abs=1e-6) for t in done.tokens)  # top_k 1: probability 1


def test_grammar_constrains_the_output(llama_server):
    done = native(llama_server).complete(PROMPT, {**GREEDY, "max_new_tokens": 20, "grammar": 'root ::= "yes" | "no"'})
    assert done.request["json"]["grammar"] == 'root ::= "yes" | "no"'
    assert done.text in ("yes", "no") and done.finish_reason == "stop"


def test_json_schema_constrains_the_output(llama_server):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    done = native(llama_server).complete(PROMPT, {**GREEDY, "max_new_tokens": 40, "json_schema": schema})
    assert done.request["json"]["json_schema"] == schema
    assert isinstance(json.loads(done.text)["n"], int)


def test_tokenize_shows_special_tokens_and_pieces(llama_server):
    toks = native(llama_server).tokenize("<|im_start|>user\nHi")
    assert toks[0] == {"id": 1, "piece": "<|im_start|>"}, "the special token is recognised, no BOS added"
    assert "".join(t["piece"] for t in toks) == "<|im_start|>user\nHi"
    assert all(isinstance(t["id"], int) for t in toks)


def test_tokenize_shows_partial_utf8_pieces_as_bytes(llama_server):
    toks = native(llama_server).tokenize("\U0001f999")  # the llama emoji: several byte-level tokens
    assert len(toks) > 1 and all(t["piece"].startswith("<0x") for t in toks)
    raw = bytes(int(h, 16) for t in toks for h in re.findall(r"<0x([0-9A-F]{2})>", t["piece"]))
    assert raw.decode("utf-8") == "\U0001f999"


def test_model_info_has_the_gguf_chat_template(llama_server):
    info = native(llama_server).model_info()
    assert info["name"] == "SmolLM2-135M-Instruct.Q4_1.gguf" and info["source"] == "llama.cpp /props"
    assert "<|im_start|>" in info["chat_template"] and "{%" in info["chat_template"]


def test_render_chat_renders_with_the_servers_template(llama_server):
    prompt = native(llama_server).render_chat([{"role": "user", "content": "Hi"}])
    assert prompt.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


def test_closing_the_stream_aborts(llama_server):
    stream = native(llama_server).stream(PROMPT, {**GREEDY, "max_new_tokens": 1500, "stop": []})
    assert isinstance(next(stream), str)
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 5
    quick = native(llama_server, timeout=30).complete(PROMPT, {**GREEDY, "max_new_tokens": 2})
    assert quick.usage["completion_tokens"] == 2


def test_check_and_detect(llama_server):
    assert native(llama_server + "/v1").check().startswith(f"connected to {llama_server}; model: SmolLM2")
    kind, found = backends.detect(llama_server)
    assert kind == "llamacpp" and "/props" in found


def test_server_error_body_reaches_the_user(llama_server):
    with pytest.raises(backends.BackendError, match="answered HTTP 400: Failed to initialize samplers: failed to parse grammar"):
        native(llama_server).complete(PROMPT, {**GREEDY, "grammar": "root ::= nope nope"})


# --- the same server through its OpenAI-compatible /v1/completions ---------------------------------------------

def test_openai_type_on_llama_server(llama_server):
    done = backends.create("openai", Settings(url=llama_server, timeout=60, probabilities=2)).complete(
        PROMPT, {**GREEDY, "max_new_tokens": 4})
    assert done.request["url"] == llama_server + "/v1/completions"
    assert done.response["id"].startswith("chatcmpl-")  # llama.cpp's id prefix, even for text completions
    assert done.finish_reason == "length" and done.usage["completion_tokens"] == 4 and done.usage["prompt_tokens"] > 10
    # llama.cpp answers `logprobs: N` in its own {"content": [...]} shape, not OpenAI's legacy arrays
    assert len(done.tokens) == 4 and all(len(t["top"]) == 2 for t in done.tokens)
    assert "".join(t["token"] for t in done.tokens) == done.text
