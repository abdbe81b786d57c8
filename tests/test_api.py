"""The named API endpoints, called through gradio_client against the app served for real."""

import json

import pytest
from gradio_client import Client

from core.conversation import EXAMPLE_PATH
import flow
from core.conversation import Conversation

EXAMPLE = EXAMPLE_PATH.read_text()


@pytest.fixture(scope="module")
def client(app_url):
    c = Client(app_url, verbose=False)
    yield c
    c.close()


def test_endpoints_are_named_and_documented(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/render", "/parse", "/generate", "/wrappers"} <= names


def test_render_matches_the_cli_and_library_exactly(client):
    prompt = client.predict("chatml", EXAMPLE, None, api_name="/render")
    assert prompt == flow.render("chatml", Conversation.from_json(EXAMPLE))


def test_render_with_an_edited_template(client):
    assert client.predict("chatml", EXAMPLE, "{{ messages[1].role }}", api_name="/render") == "user"


def test_parse_with_wrapper_and_functions(client):
    raw = (' "core_memory_replace",\n  "params": {"inner_thoughts": "fix", "name": "human", '
           '"old_content": "First name: Chad", "new_content": "First name: Brad", "request_heartbeat": true}}')
    functions = json.dumps(json.loads(EXAMPLE)["functions"])
    result = client.predict(raw, "chatml", functions, None, api_name="/parse")
    assert result["function_call"]["name"] == "core_memory_replace"
    assert result["function_call"]["arguments"]["new_content"] == "First name: Brad"


def test_generate_on_the_embedded_model(client):
    out = client.predict("embedded", "chatml", EXAMPLE, "", "deterministic", '{"max_new_tokens": 10}', "",
                         api_name="/generate")
    assert out["request"]["json"]["max_tokens"] == 10 and out["prompt"].startswith("<|im_start|>system")
    assert out["parsed"] is not None and "error" in out["parsed"]


def test_wrappers_lists_names(client):
    assert "chatml" in client.predict(api_name="/wrappers")


def test_errors_reach_the_client_as_sentences(client):
    with pytest.raises(Exception, match="unknown wrapper 'nope'"):
        client.predict("nope", EXAMPLE, None, api_name="/render")
    with pytest.raises(Exception, match="cannot connect to http://127.0.0.1:9"):
        client.predict("openai", "chatml", EXAMPLE, "http://127.0.0.1:9", "deterministic", "{}", "", api_name="/generate")
