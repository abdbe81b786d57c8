"""The API key never shows, in any form a server or the app can give it: as sent, JSON-escaped,
backslash-escaped, URL-encoded, or cut short at a truncation, in errors, notes, raw responses and the
request record; masked before anything is truncated."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest

import backends
from backends import BackendError, Settings
from backends.masking import mask
from tests.fakes import fake_server

KEY = "sk-live\\path'quote\"-SECRET-0123456789"
PROMPT = "Say hi"


def leaks(text: str) -> bool:
    """Does `text` hold the key, or a telling piece of it, in any spelling?"""
    forms = {KEY, json.dumps(KEY)[1:-1], repr(KEY)[1:-1], quote(KEY, safe=""), quote_plus(KEY)}
    return any(f in text for f in forms) or "SECRET-0123" in text or "sk-live" in text


@pytest.mark.parametrize("spelled", [KEY, json.dumps(KEY)[1:-1], repr(KEY)[1:-1], quote(KEY, safe=""),
                                     quote_plus(KEY), json.dumps(json.dumps(KEY)[1:-1])[1:-1], repr(json.dumps(KEY)[1:-1])[1:-1]])
def test_every_spelling_of_the_key_is_masked(spelled):
    assert mask(f"bad key: {spelled}!", KEY) == "bad key: ***!"


def test_a_key_cut_short_is_masked_where_it_was_cut():
    assert mask("bad key: " + KEY[:12], KEY) == "bad key: ***"
    assert mask("bad key: " + KEY[:9] + "… (truncated)", KEY) == "bad key: ***… (truncated)"
    assert mask("the sky is blue", KEY) == "the sky is blue"  # a common start mid-text is left alone
    assert mask({"a": [KEY, ("x", KEY)]}, KEY) == {"a": ["***", ("x", "***")]}


def test_a_key_echoed_in_a_successful_final_event_is_masked_in_the_raw_response():
    for kind in ("llamacpp", "openai"):
        with fake_server(kind, echo_auth=True) as fake:
            done = backends.create(kind, Settings(url=fake.url, api_key=KEY, timeout=5)).complete(PROMPT, {"max_new_tokens": 4})
            assert fake.requests[-1]["headers"]["Authorization"] == f"Bearer {KEY}"  # it was sent
        assert done.response["echo"]["authorization"] == "Bearer ***"
        assert not leaks(json.dumps(done.to_dict(), ensure_ascii=False)), kind


@pytest.mark.parametrize("message", [f"invalid key {KEY!r}", f"invalid key {json.dumps(KEY)}",
                                     "x" * 380 + f" key={KEY}", f"invalid key {quote(KEY)}"])
def test_a_key_in_an_error_is_masked_before_the_message_is_cut(message):
    with fake_server("llamacpp", errors={"/completion": (401, {"error": {"message": message}})}) as fake:
        with pytest.raises(BackendError) as caught:
            backends.create("llamacpp", Settings(url=fake.url, api_key=KEY, timeout=5)).complete(PROMPT, {})
    assert "answered HTTP 401" in str(caught.value) and not leaks(str(caught.value)), str(caught.value)


def test_a_key_in_a_mid_stream_error_and_a_redirect_is_masked():
    inject = json.dumps({"error": {"message": f"token {KEY} revoked", "type": "auth"}})
    with fake_server("llamacpp", inject=inject) as fake:
        with pytest.raises(BackendError, match="reported an error mid-stream: token \\*\\*\\* revoked") as caught:
            list(backends.create("llamacpp", Settings(url=fake.url, api_key=KEY, timeout=5)).stream(PROMPT, {}))
    assert caught.value.partial_text == "Hello," and not leaks(str(caught.value))
    with fake_server("openai", redirect=f"https://login.example/?key={quote(KEY, safe='')}") as fake:
        with pytest.raises(BackendError, match=r"answered HTTP 301, a redirect to https://login\.example/\?key=\*\*\*") as caught:
            backends.create("openai", Settings(url=fake.url, api_key=KEY, timeout=5)).complete(PROMPT, {})
    assert not leaks(str(caught.value))


def test_the_request_record_never_holds_the_key():
    with fake_server("llamacpp") as fake:
        done = backends.create("llamacpp", Settings(url=fake.url, api_key=KEY, timeout=5,
                                                    extra={"api_key": KEY})).complete(PROMPT, {"max_new_tokens": 2})
    assert done.request["headers"]["Authorization"] == "Bearer ***" and done.request["json"]["api_key"] == "***"
    assert not leaks(json.dumps(done.request))
