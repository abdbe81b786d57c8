"""End to end in headless Chromium: what a new user does on the page."""

import re
import time

import pytest

from tests.conftest import ROOT

SCREENSHOT = ROOT / "docs" / "screenshot.png"


@pytest.fixture
def page(browser, app_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.goto(app_url)
    prompt = tab.locator("#prompt textarea")
    tab.wait_for_function("() => document.querySelector('#prompt textarea')?.value.startsWith('<|im_start|>system')",
                          timeout=30000)
    assert prompt.input_value().endswith('{\n  "function":')
    yield tab
    context.close()


def replace_template(page, text):
    editor = page.locator("#template .cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)


def prompt_value(page):
    return page.locator("#prompt textarea").input_value()


def wait_prompt(page, predicate_js, timeout=10000):
    page.wait_for_function(f"() => {{ const v = document.querySelector('#prompt textarea').value; return {predicate_js}; }}",
                           timeout=timeout)


def test_editing_the_template_re_renders_the_prompt_and_errors_show_in_place(page):
    replace_template(page, "HELLO {{ messages | length }} {{ messages[1].role }}")
    wait_prompt(page, "v === 'HELLO 2 user'")
    replace_template(page, "line one\n{% for m in messages %}\n{{ m.role }}")
    wait_prompt(page, "v.startsWith('Template error at line')")
    assert "endfor" in prompt_value(page) or "end of template" in prompt_value(page)
    # the page still works after the error: fix it and the prompt comes back
    replace_template(page, "{% for m in messages %}[{{ m.role }}]{% endfor %}")
    wait_prompt(page, "v === '[system][user]'")


def test_generate_streams_raw_output_and_shows_a_parsed_result(page):
    page.click("#generate")
    page.wait_for_function("() => /Done/.test(document.querySelector('#run-status').innerText)", timeout=180000)
    assert page.locator("#raw textarea").input_value().strip()
    parsed = page.locator("#parsed").inner_text()
    assert re.search(r"tool_calls|error", parsed)
    page.get_by_text("Request sent").click()
    assert "max_tokens" in page.locator("#request").inner_text()
    page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_stop_aborts_generation_and_keeps_the_output(page):
    page.get_by_text("Sampling parameters").click()
    tokens = page.locator("#max-new-tokens input[type=number]")
    tokens.fill("2000")
    tokens.press("Enter")
    replace_template(page, "<|im_start|>user\nWrite a very long story about a lighthouse.<|im_end|>\n<|im_start|>assistant\n")
    wait_prompt(page, "v.includes('lighthouse')")
    page.click("#generate")
    page.wait_for_function("() => document.querySelector('#raw textarea').value.length > 20", timeout=120000)
    page.click("#stop")
    page.wait_for_function("() => /Stopped/.test(document.querySelector('#run-status').innerText)", timeout=10000)
    kept = page.locator("#raw textarea").input_value()
    time.sleep(2)
    assert page.locator("#raw textarea").input_value() == kept, "output kept growing after Stop"
    assert kept
