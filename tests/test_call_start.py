"""Why a run did or did not call: the verdicts on built token lists, then on a real embedded run."""

import math

import flow
from backends import Settings
from core.conversation import Conversation
from flow import call_start


def tok(text, p, *alternatives):
    """An output token chosen with probability p, and (text, p) alternatives."""
    top = [{"token": text, "logprob": math.log(p)}] + [{"token": t, "logprob": math.log(q)} for t, q in alternatives]
    return {"token": text, "logprob": math.log(p), "top": top}


def test_text_chosen_over_a_call_start_names_both_probabilities():
    tokens = [tok("Sure", 0.71, ("<tool_call>", 0.21), ("I", 0.05)), tok(",", 0.9), tok(" here", 0.8)]
    found = call_start.explain("Sure, here", {"tool_calls": []}, "hermes", tokens)
    assert found.verdict == "chose_text"
    assert "'Sure' with p=0.71" in found.sentence and "'<tool_call>'" in found.sentence and "p=0.21" in found.sentence
    assert [c.position for c in found.chances] == [0]


def test_a_split_marker_counts_its_first_piece_and_the_likeliest_position_is_named():
    tokens = [tok("The", 0.9, ("<", 0.02)), tok(" answer", 0.5, (" <", 0.3)), tok(" is", 0.9)]
    found = call_start.explain("The answer is", None, "hermes", tokens)
    assert found.verdict == "chose_text"
    assert found.chances[0].marker == "<tool_call>" and round(found.chances[0].marker_p, 2) == 0.02
    assert "likeliest call start was at token 2" in found.sentence and "p=0.30" in found.sentence


def test_no_marker_among_the_alternatives_is_said():
    found = call_start.explain("Hi", None, "mistral_v3", [tok("Hi", 0.6, ("Hello", 0.3))])
    assert found.verdict == "chose_text" and not found.chances
    assert "no token starting a call marker was among the 2 alternatives" in found.sentence


def test_a_marker_in_the_output_without_a_parsed_call_blames_the_parser():
    raw = 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"</tool_call>'
    parsed = {"tool_calls": [], "error": {"message": "unterminated JSON", "position": 27}}
    found = call_start.explain(raw, parsed, "hermes")
    assert found.verdict == "parser_missed"
    assert "'<tool_call>' at character 14" in found.sentence and "unterminated JSON" in found.sentence


def test_a_parsed_call_is_called_and_its_marker_tokens_are_marked():
    tokens = [tok("<", 0.8), tok("tool", 0.9), tok("_call", 0.9), tok(">", 0.9), tok('{"name"', 0.7)]
    raw = "".join(t["token"] for t in tokens)
    found = call_start.explain(raw, {"tool_calls": [{"name": "f", "arguments": {}}]}, "hermes", tokens)
    assert found.verdict == "called" and "1 function(s)" in found.sentence
    assert found.marker_tokens == [0, 1, 2, 3, 4]  # '<tool_call>' and '{"name"' are both markers of hermes


def test_a_forced_prefix_and_a_format_without_calls():
    forced = call_start.explain(' "send_message"', None, "memgpt_inner_monologue", [], prefix='\n{\n  "function":')
    assert forced.verdict == "forced"
    assert call_start.explain("hello", None, "plain").verdict == "no_calls"


def test_without_probabilities_it_asks_for_them():
    found = call_start.explain("Hello there", {"tool_calls": []}, "hermes", None)
    assert found.verdict == "unknown" and "Token probabilities" in found.sentence


def test_the_call_would_start_after_a_reasoning_block():
    tokens = [tok("<think>", 0.9), tok("hmm", 0.5), tok("</think>", 0.9), tok("\n\n", 0.9), tok("Sure", 0.6, ("<tool_call>", 0.4))]
    assert call_start.answer_start(tokens) == 4
    found = call_start.explain("<think>hmm</think>\n\nSure", None, "hermes", tokens)
    assert "token 5" in found.sentence and "p=0.40" in found.sentence


def test_a_real_embedded_run_is_explained_consistently():
    """SmolLM2 with the hermes wrapper and a tool, greedy, with 5 alternatives per token."""
    conversation = Conversation(
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        functions=[{"name": "get_weather", "description": "Weather of a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}])
    run = flow.generate(flow.GenerateRequest(backend_type="embedded", wrapper="hermes-2-pro", conversation=conversation,
                                             settings=Settings(probabilities=5), params={"max_new_tokens": 12}))
    found = call_start.explain(run.raw, run.parsed.to_dict(), "hermes", run.tokens)
    assert found.verdict in ("called", "chose_text", "parser_missed")
    assert (found.verdict == "called") == bool(run.parsed.tool_calls)
    for chance in found.chances:  # each chance is a real alternative the model weighed at that position
        weighed = run.tokens[chance.position]["top"] + [run.tokens[chance.position]]
        assert any(math.isclose(math.exp(a["logprob"]), chance.marker_p) for a in weighed)
        assert 0 <= chance.marker_p <= 1
