"""Per-token probabilities in the shapes servers send them, as one list: [{"token", "logprob", "top": [...]}]."""

from __future__ import annotations

import math


def tokens_from_logprobs(entries: list) -> list[dict]:
    """llama.cpp's format (Dec 2024+: token/logprob/top_logprobs or prob/top_probs) and its old one
    (content/probs[tok_str, prob]), and Ollama's, as [{"token", "logprob", "top": [{"token", "logprob"}]}]."""
    def lp(item: dict) -> float | None:
        if "logprob" in item:
            return item["logprob"]
        if "prob" in item:
            return math.log(item["prob"]) if item["prob"] > 0 else float("-inf")
        return None

    out = []
    for e in entries or []:
        if not isinstance(e, dict):
            continue
        if "probs" in e and "token" not in e:  # before Dec 2024: {"content": "Blue", "probs": [{"tok_str", "prob"}]}
            top = [{"token": p.get("tok_str", ""), "logprob": lp(p)} for p in e.get("probs") or []]
            chosen = next((t["logprob"] for t in top if t["token"] == e.get("content")), None)
            out.append({"token": e.get("content", ""), "logprob": chosen, "top": top})
            continue
        top = e.get("top_logprobs") or e.get("top_probs") or []
        out.append({"token": e.get("token", ""), "logprob": lp(e),
                    "top": [{"token": t.get("token", ""), "logprob": lp(t)} for t in top if isinstance(t, dict)]})
    return out


def tokens_from_openai_logprobs(logprobs) -> list[dict]:
    """OpenAI's legacy shape {tokens, token_logprobs, top_logprobs: [{tok: lp}]}, or llama.cpp's {content: [...]}."""
    if not isinstance(logprobs, dict):
        return []
    if isinstance(logprobs.get("content"), list):
        return tokens_from_logprobs(logprobs["content"])
    tokens = logprobs.get("tokens") or []
    lps = logprobs.get("token_logprobs") or []
    tops = logprobs.get("top_logprobs") or []
    out = []
    for i, tok in enumerate(tokens):
        top = tops[i] if i < len(tops) and isinstance(tops[i], dict) else {}
        out.append({"token": tok, "logprob": lps[i] if i < len(lps) else None,
                    "top": [{"token": t, "logprob": v} for t, v in sorted(top.items(), key=lambda kv: -kv[1])]})
    return out
