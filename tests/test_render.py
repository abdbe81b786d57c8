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


def test_a_template_compiles_once_per_text():
    """The page renders on every keystroke and the lint renders the same text again: one compile."""
    from wrappers.render import _compile

    source = "{% for m in messages %}{{ m }}{% endfor %}"
    assert _compile(source) is _compile("".join(["{% for m in messages %}", "{{ m }}{% endfor %}"]))


ORDINARY = [
    "{{ 'a' + b + 'c' }}|{{ b ~ 1 ~ none }}|{{ '%s-%d' % (b, 3) }}|{{ '{}:{}'.format(b, 2) }}|{{ 2 ** 10 }}|{{ 3 * 4 }}",
    "{{ [1, b] + [2] }}|{{ (1, b) * 2 }}|{{ {'k': b, 'l': [b, b]} | tojson }}|{{ dict(a=b, **{'c': 1}) | tojson }}",
    "{% set ns = namespace(items=[]) %}{% for i in range(3) %}{% set ns.items = ns.items + [i] %}{% endfor %}{{ ns.items }}",
    "{% macro m() %}{{ varargs | join(',') }}/{{ kwargs | dictsort }}{% endmacro %}{{ m(1, b, k=2) }}",
    "{% macro m(x) %}[{{ x }}]{{ caller() if caller }}{% endmacro %}{% call m(b) %}inner {{ b }}{% endcall %}",
    "{% set x %}{% for i in range(200) %}{{ i }},{% endfor %}{% endset %}{{ x | length }}|{{ x[:10] }}",
    "{{ range(10) | batch(3, 'x') | list }}|{{ range(10) | slice(3) | list }}|{{ [3, 1, 2] | sort | join('-') }}",
    "{{ items | map(attribute='n') | list }}|{{ items | map('default', 0) | list }}|{{ items | selectattr('n') | list | length }}",
    "{{ [[1], [2]] | sum(start=[]) }}|{{ items | selectattr('n') | groupby('n') | list | length }}|{{ {'b': 1, 'a': 2} | dictsort }}",
    "{{ b.upper() }}|{{ b.center(9, '*') }}|{{ b.replace('e', 'E') }}|{{ ','.join(['x', b]) }}|{{ b.encode() | length }}",
    "{{ b | center(9) }}|{{ 'a\nb' | indent(2, true) }}|{{ 'x y z' | wordwrap(3) }}|{{ b | e }}|{{ b | urlencode }}",
    "{{ {}.fromkeys(['a', 'b'], 0) | tojson }}|{{ (258).to_bytes(2, 'big') | list }}|{{ b | list | length }}",
    "{{ [b, b] }}|{{ cycler(b, 'x').next() }}|{{ items }}|{{ b | pprint }}|{{ items | string | length }}",
]


@pytest.mark.parametrize("source", ORDINARY)
def test_the_limits_change_nothing_an_ordinary_template_renders(source):
    """Every checked operator, filter, call and literal gives what the plain sandbox gives."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from wrappers.render import HELPER_FILTERS, OPTIONS

    plain = ImmutableSandboxedEnvironment(**OPTIONS)
    plain.filters.update(HELPER_FILTERS)
    variables = {"b": "bee", "items": [{"n": 1}, {"n": 2}, {"m": 3}]}
    assert render(source, variables) == plain.from_string(source).render(**variables)


def test_renders_ending_at_their_deadline_never_leak_a_stop(monkeypatch):
    """The watchdog raises in the rendering thread; a render that ends just as its deadline passes
    must not take that stop with it (into the caller), nor leave the watchdog's lock held."""
    import statistics
    import time

    from wrappers.limits import deadline

    busy = "{% for i in range(n) %}{{ i }}{% endfor %}"
    durations = []
    for _ in range(20):
        start = time.monotonic()
        render(busy, {"n": 1000})
        durations.append(time.monotonic() - start)
    monkeypatch.setattr(deadline, "MAX_SECONDS", statistics.median(durations))  # about half the renders pass it
    outcomes = {"rendered": 0, "stopped": 0}
    for attempt in range(400):
        try:
            render(busy, {"n": 600 + attempt % 9 * 100})
            outcomes["rendered"] += 1
        except TemplateError as e:
            assert "longer than" in str(e), e
            outcomes["stopped"] += 1
        total = sum(range(2000))  # a stop landing late would surface here, outside any render
        assert total == 1999000
    assert outcomes["rendered"] and outcomes["stopped"], outcomes  # both sides of the deadline were hit
    assert not deadline._watchdog._tickets
