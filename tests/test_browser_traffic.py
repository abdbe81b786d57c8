"""The Traffic tab in headless Chromium: requests an agent sends with the `openai` SDK to the app (backend: llama.cpp's
`llama-server` with SmolLM2) show up as they happen, and one reopens in panel 1 with its conversation, wrapper and
sampling values. Takes the README's screenshot docs/traffic.png (with PFP_UPDATE_SCREENSHOTS=1)."""

from __future__ import annotations

import json
import threading

import openai
import pytest

from flow.startup import StartupConfig
from tests.conftest import SCREENSHOTS, free_port
from tests.test_browser import open_section, value, wait_text

SCREENSHOT = SCREENSHOTS / "traffic.png"
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "The weather now in a city.", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
ASK = [{"role": "system", "content": "You answer about the weather."}, {"role": "user", "content": "Is it raining in Lyon?"}]


@pytest.fixture(scope="module")
def served(llama_server):
    from app import build_app, build_endpoint, launch

    config = StartupConfig(backend_type="llamacpp", backend_url=llama_server)
    demo = build_app(config)
    _, url, _ = launch(demo, "127.0.0.1", free_port(), routes=build_endpoint(config), prevent_thread_lock=True)
    yield url.rstrip("/")
    demo.close()


def test_agent_requests_arrive_in_the_traffic_tab_and_reopen_in_a_panel(browser, served):
    agent = openai.OpenAI(base_url=served + "/v1", api_key="unused", max_retries=0, timeout=600)
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    try:
        page.goto(served)
        page.wait_for_function("() => document.querySelector('#prompt-1 textarea')?.value.length > 0", timeout=60000)
        page.get_by_role("tab", name="Traffic").click()
        table = page.locator("#traffic-table")

        with pytest.raises(openai.NotFoundError):
            agent.chat.completions.create(model="no-such-wrapper", messages=ASK)
        wait_text(page, "#traffic-table", "no-such-wrapper", timeout=20000)
        assert "404" in table.inner_text()

        streaming = threading.Thread(target=lambda: list(agent.chat.completions.create(
            model="hermes-2-pro", messages=ASK, tools=[WEATHER], max_tokens=24, temperature=0.4, top_p=0.9, seed=5,
            stream=True)))
        streaming.start()
        wait_text(page, "#traffic-table", "in progress", timeout=60000)  # the row is there before the answer
        streaming.join(timeout=600)
        wait_text(page, "#traffic-table", "hermes-2-pro[\\s\\S]*200", timeout=60000)
        assert "in progress" not in table.inner_text()

        agent.chat.completions.create(model="qwen2.5", messages=ASK, tools=[WEATHER], tool_choice="required",
                                      parallel_tool_calls=False, max_tokens=64, temperature=0)
        wait_text(page, "#traffic-table", "1 call: get_weather", timeout=60000)

        table.get_by_text("qwen2.5", exact=True).first.click()
        wait_text(page, "#traffic-status", "Request #[0-9]+: 1 call: get_weather", timeout=10000)
        page.wait_for_function("() => document.querySelector('#traffic-raw textarea')?.value.includes('get_weather')",
                               timeout=10000)
        page.screenshot(path=str(SCREENSHOT))

        table.get_by_text("hermes-2-pro", exact=True).first.click()
        wait_text(page, "#traffic-status", "Request #[0-9]+: text", timeout=10000)
        page.click("#traffic-open")
        wait_text(page, "#traffic-status", "opened in panel 1", timeout=10000)
        page.get_by_role("tab", name="Workbench").click()
        conversation = json.loads(page.locator("#conversation .cm-content").inner_text())
        assert conversation["messages"] == ASK and [f["name"] for f in conversation["functions"]] == ["get_weather"]
        assert value(page, "#wrapper-1 input") == "hermes-2-pro"
        assert page.locator("#template-1 .cm-content").inner_text().startswith("{")
        open_section(page, 1, "Sampling parameters")
        assert (value(page, "#max-new-tokens-1 input[type=number]"), value(page, "#temperature-1 input[type=number]"),
                value(page, "#top-p-1 input[type=number]"), value(page, "#seed-1 input")) == ("24", "0.4", "0.9", "5")
        page.wait_for_function("() => document.querySelector('#prompt-1 textarea')?.value.includes('Is it raining in Lyon?')",
                               timeout=10000)
    finally:
        context.close()
