"""The app in a real browser (Debian's Chromium driven by Playwright), as a pastor and a developer use it.

Screenshots go to ``test-artifacts/`` at the repository root, for a person to look at.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from app_process import REPO, RunningApp
from core.scripture import citation_text, extract_citations

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]
ARTIFACTS = REPO / "test-artifacts"
#: Generous: a CPU runner shares two cores between the app, the model and the browser.
ANSWER_TIMEOUT_MS = 120_000
SOME_WORDS = re.compile(r"\w+\W+\w+\W+\w+")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).is_file(), "Debian chromium is missing: .ci/run installs it (apt-get install chromium)"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, local_app: RunningApp) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(local_app.url, wait_until="domcontentloaded")
    expect(page.get_by_role("tab", name="Chat")).to_be_visible(timeout=30_000)
    yield page
    context.close()


def _last_answer(page: Page) -> str:
    bubbles = page.locator("#chat-answers .message.bot")
    return bubbles.last.inner_text() if bubbles.count() else ""


def _ask(page: Page, question: str) -> None:
    box = page.locator("#chat-question textarea")
    box.fill(question)
    box.press("Enter")


def _generation_logs(app: RunningApp) -> list[dict]:
    lines = app.log_path.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{") and '"event": "generation"' in line]


def _use_greedy_short_answers(page: Page, tokens: int) -> None:
    """Tune's column A to greedy decoding and ``tokens`` new tokens, then "Use in Chat"."""
    page.get_by_role("tab", name="Tune").click()
    _set_slider(page, "#tune-temperature-A", 0)
    _set_slider(page, "#tune-max-tokens-A", tokens)
    page.locator("#tune-use-A").click()
    expect(page.locator("#chat-question textarea")).to_be_visible()


def _set_slider(page: Page, elem_id: str, value: float) -> None:
    number = page.locator(f"{elem_id} input[type=number]")
    number.fill(str(value))
    number.press("Enter")
    expect(number).to_have_value(str(value))


def test_a_pastor_asks_and_sees_the_answer_stream_with_its_citations(page: Page, local_app: RunningApp) -> None:
    _use_greedy_short_answers(page, 120)
    # greedy decoding: the embedded model answers this one with a reference (Psalm 45:12)
    _ask(page, "Which verse says that love is patient? Give the reference.")
    expect(page.locator("#chat-answers .message.bot").last).to_have_text(SOME_WORDS, timeout=ANSWER_TIMEOUT_MS)
    first_seen = _last_answer(page)
    page.screenshot(path=ARTIFACTS / "chat-streaming.png", full_page=True)
    details = page.locator("#answer-details")
    expect(details).to_contain_text("tokens/s", timeout=ANSWER_TIMEOUT_MS)
    final = _last_answer(page)
    assert len(final) > len(first_seen), "the answer arrived in one piece instead of streaming"
    cited = extract_citations(final)
    assert cited, f"the greedy answer cited no verse this time: {final!r}"
    expect(details).to_contain_text("Bible references in this answer")
    for citation in cited:
        expect(details).to_contain_text(citation.normalized if citation.exists else citation.text)
        if citation.exists:
            expect(details).to_contain_text(citation_text(citation, "KJV").split(";")[0][:40])
    page.screenshot(path=ARTIFACTS / "chat-answer-with-citations.png", full_page=True)


def test_stop_ends_a_generation_and_the_chat_stays_usable(page: Page, local_app: RunningApp) -> None:
    cancelled_before = sum(1 for r in _generation_logs(local_app) if r.get("outcome") == "cancelled")
    _ask(page, "Tell me the whole story of Moses, from his birth to his death, in detail.")
    # stop once some words have streamed in, as a pastor would
    expect(page.locator("#chat-answers .message.bot").last).to_have_text(SOME_WORDS, timeout=ANSWER_TIMEOUT_MS)
    page.locator("#chat-question [data-testid=stop-button]").click()
    page.wait_for_timeout(1500)
    stopped_at = _last_answer(page)
    page.wait_for_timeout(3000)
    assert _last_answer(page) == stopped_at, "the answer kept growing after Stop"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if sum(1 for r in _generation_logs(local_app) if r.get("outcome") == "cancelled") > cancelled_before:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the app did not log the generation as cancelled: it may still be running")
    page.screenshot(path=ARTIFACTS / "chat-stopped.png", full_page=True)
    _use_greedy_short_answers(page, 24)
    _ask(page, "Who was Noah?")
    expect(page.locator("#chat-answers .message.bot")).to_have_count(2, timeout=ANSWER_TIMEOUT_MS)
    expect(page.locator("#answer-details")).to_contain_text("tokens/s", timeout=ANSWER_TIMEOUT_MS)


def test_a_developer_moves_a_slider_and_compares_two_settings(page: Page) -> None:
    page.get_by_role("tab", name="Tune").click()
    _set_slider(page, "#tune-temperature-A", 0.55)
    page.get_by_text("Parameters sent").first.click()
    expect(page.locator("#tune-sent-A")).to_contain_text('"temperature": 0.55', timeout=60_000)
    for column in "AB":
        _set_slider(page, f"#tune-max-tokens-{column}", 32)
    page.locator("#tune-compare-run").click()
    for column in "AB":
        expect(page.locator(f"#tune-figures-{column}")).to_contain_text("tokens/s", timeout=ANSWER_TIMEOUT_MS)
        assert page.locator(f"#tune-answer-{column} textarea").input_value().strip()
    expect(page.locator("#tune-figures-A")).to_contain_text("Citations:")
    page.screenshot(path=ARTIFACTS / "tune-compare.png", full_page=True)
