"""The Jinja environment: Hugging Face-compatible helpers, sandboxing, limits, clear errors."""

import pytest

from wrappers.render import MAX_OUTPUT_CHARS, TemplateError, render


def test_tojson_does_not_escape_html_or_unicode_and_takes_json_dumps_options():
    out = render("{{ x | tojson }}|{{ x | tojson(indent=2) }}", {"x": {"a": "<é>"}})
    assert out == '{"a": "<é>"}|{\n  "a": "<é>"\n}'


def test_strftime_now_sees_the_conversation_date():
    assert render('{{ strftime_now("%d %B %Y") }}', {}, now="2024-07-26") == "26 July 2024"


def test_trim_and_lstrip_blocks_like_transformers():
    source = "{% for m in messages %}\n  {{ m }}\n{% endfor %}\nend"
    assert render(source, {"messages": ["a", "b"]}) == "  a\n  b\nend"


def test_loop_controls_are_enabled():
    assert render("{% for i in [1,2,3] %}{% if i == 2 %}{% break %}{% endif %}{{ i }}{% endfor %}", {}) == "1"


def test_fromjson_parses_or_gives_none():
    assert render("{{ ('{\"a\": 1}' | fromjson).a }}|{{ 'not json' | fromjson }}", {}) == "1|None"


def test_syntax_error_names_the_line():
    with pytest.raises(TemplateError) as e:
        render("line one\n{% if x %}\nno endif", {})
    assert e.value.line == 3 or e.value.line == 2
    assert "syntax" in e.value.message


def test_raise_exception_reports_message_and_line():
    with pytest.raises(TemplateError) as e:
        render("a\nb\n{{ raise_exception('Only user and assistant roles are supported') }}", {})
    assert e.value.message == "Only user and assistant roles are supported"
    assert e.value.line == 3


def test_runtime_error_is_reported_not_raised_raw():
    with pytest.raises(TemplateError) as e:
        render("{{ 1 / 0 }}", {})
    assert "ZeroDivisionError" in str(e.value)


@pytest.mark.parametrize("payload", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ self.__init__.__globals__ }}",
])
def test_sandbox_blocks_attribute_walks(payload):
    try:
        out = render(payload, {})
    except TemplateError as e:
        assert "unsafe" in str(e).lower() or "undefined" in str(e).lower() or "security" in str(e).lower()
    else:
        assert "subclasses" not in out and "uid=" not in out and "builtins" not in out


def test_huge_output_is_stopped():
    with pytest.raises(TemplateError) as e:
        render("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", {})
    assert f"{MAX_OUTPUT_CHARS:,}" in e.value.message


def test_huge_range_is_refused():
    with pytest.raises(TemplateError):
        render("{% for i in range(10**9) %}{% endfor %}", {})


def test_deep_recursion_is_reported():
    with pytest.raises(TemplateError) as e:
        render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", {})
    assert "recurs" in e.value.message
