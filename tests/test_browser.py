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
from app_process import RunningApp, start_app
from browser import ARTIFACTS, chromium
from fault_server import FaultServer, Ok
from playwright.sync_api import Browser, Page, expect

from core.scoring.references import citation_text, extract_citations
from core.stores.feedback import FeedbackStore

#: Generous: a CPU runner shares two cores between the app, the model and the browser.
ANSWER_TIMEOUT_MS = 120_000
SOME_WORDS = re.compile(r"\w+\W+\w+\W+\w+")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


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


def _cancelled(app: RunningApp) -> int:
    return sum(1 for record in _generation_logs(app) if record.get("outcome") == "cancelled")


def _cancelled_since(app: RunningApp, before: int, within_s: float = 30) -> bool:
    """Whether the app logs a cancelled generation (beyond ``before``) within ``within_s``."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if _cancelled(app) > before:
            return True
        time.sleep(0.2)
    return False


def _use_greedy_short_answers(page: Page, tokens: int) -> None:
    """Tune's column A to greedy decoding and ``tokens`` new tokens, then "Use in Chat"."""
    page.get_by_role("tab", name="Tune").click()
    _set_slider(page, "#tune-temperature-A", 0)
    _set_slider(page, "#tune-max_new_tokens-A", tokens)
    page.locator("#tune-use-A").click()
    expect(page.locator("#chat-question textarea")).to_be_visible()


def _set_slider(page: Page, elem_id: str, value: float) -> None:
    number = page.locator(f"{elem_id} input[type=number]")
    number.fill(str(value))
    number.press("Enter")
    expect(number).to_have_value(str(value))


def test_a_pastor_asks_and_sees_the_answer_stream_with_its_citations(page: Page, local_app: RunningApp, local_app_data: Path) -> None:
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
    page.locator("#chat-answers .message-buttons-bot button[aria-label='Like'], #chat-answers button[aria-label='Like']").last.click()
    expect(page.get_by_text("your feedback is saved")).to_be_visible(timeout=15_000)
    saved = FeedbackStore(local_app_data).all()[-1]
    assert (saved.question, saved.answer, saved.liked) == ("Which verse says that love is patient? Give the reference.", final.strip(), True)
    assert saved.settings["temperature"] == 0 and saved.settings["max_new_tokens"] == 120


def test_stop_ends_a_generation_and_the_chat_stays_usable(page: Page, local_app: RunningApp) -> None:
    cancelled_before = _cancelled(local_app)
    _ask(page, "Tell me the whole story of Moses, from his birth to his death, in detail.")
    # stop once some words have streamed in, as a pastor would
    expect(page.locator("#chat-answers .message.bot").last).to_have_text(SOME_WORDS, timeout=ANSWER_TIMEOUT_MS)
    page.locator("#chat-question [data-testid=stop-button]").click()
    page.wait_for_timeout(1500)
    stopped_at = _last_answer(page)
    page.wait_for_timeout(3000)
    assert _last_answer(page) == stopped_at, "the answer kept growing after Stop"
    assert _cancelled_since(local_app, cancelled_before), "the app did not log the generation as cancelled: it may still be running"
    page.screenshot(path=ARTIFACTS / "chat-stopped.png", full_page=True)
    _use_greedy_short_answers(page, 24)
    _ask(page, "Who was Noah?")
    expect(page.locator("#chat-answers .message.bot")).to_have_count(2, timeout=ANSWER_TIMEOUT_MS)
    expect(page.locator("#answer-details")).to_contain_text("tokens/s", timeout=ANSWER_TIMEOUT_MS)
    # multi-turn: the second question went to the model with the first exchange before it
    sent = [m for m in _generation_logs(local_app)[-1]["prompt"] if m["role"] != "system"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    # the page's text drops a trailing space that a stop mid-stream can leave in the answer
    assert sent[0]["content"].startswith("Tell me the whole story of Moses") and sent[1]["content"].strip() == stopped_at.strip()


def test_closing_the_tab_mid_answer_stops_the_generation(browser: Browser, local_app: RunningApp) -> None:
    cancelled_before = _cancelled(local_app)
    context = browser.new_context()
    page = context.new_page()
    page.goto(local_app.url, wait_until="domcontentloaded")
    _ask(page, "Tell me the whole story of David, from the shepherd boy to the old king, in detail.")
    expect(page.locator("#chat-answers .message.bot").last).to_have_text(SOME_WORDS, timeout=ANSWER_TIMEOUT_MS)
    context.close()  # the browser tab goes away without pressing Stop
    assert _cancelled_since(local_app, cancelled_before), "the generation went on after its browser tab was closed"


def test_a_developer_moves_a_slider_and_compares_two_settings(page: Page) -> None:
    page.get_by_role("tab", name="Tune").click()
    _set_slider(page, "#tune-temperature-A", 0.55)
    page.get_by_text("Parameters sent").first.click()
    expect(page.locator("#tune-sent-A")).to_contain_text('"temperature": 0.55', timeout=60_000)
    for column in "AB":
        _set_slider(page, f"#tune-max_new_tokens-{column}", 32)
    _set_slider(page, "#tune-passages-B", 3)  # B: the same question grounded in three passages
    page.locator("#tune-compare-run").click()
    for column in "AB":
        expect(page.locator(f"#tune-figures-{column}")).to_contain_text("tokens/s", timeout=ANSWER_TIMEOUT_MS)
        assert page.locator(f"#tune-answer-{column} textarea").input_value().strip()
    expect(page.locator("#tune-figures-A")).to_contain_text("Citations:")
    expect(page.locator("#tune-figures-B")).to_contain_text("Grounded in 3 passages:")
    expect(page.locator("#tune-figures-A")).not_to_contain_text("Grounded")
    page.screenshot(path=ARTIFACTS / "tune-compare.png", full_page=True)


GIVEN_ANSWERS = """id,question,expected_references,answer
grace,What is grace?,Ephesians 2:8,"For by grace are ye saved through faith (Ephesians 2:8). The wages of sin is death (Romans 6:23). See also Hezekiah 3:1."
david,Who anointed David?,1 Samuel 16:13,"Samuel anointed David in the midst of his brethren (1 Samuel 16:13)."
"""


def _review_given_answers(page: Page, app: RunningApp, question_set: Path) -> None:
    """Evaluate tab: run a set whose answers are given (nothing to generate), open the review."""
    page.goto(app.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="Evaluate").click()
    page.locator("#evaluate-upload input[type=file]").set_input_files(question_set)
    # Run only once the set is read: a Run sent before the upload lands runs the set chosen in the list
    expect(page.locator("#evaluate-status")).to_contain_text("all of them will be scored", timeout=30_000)
    page.locator("#evaluate-run").click()
    expect(page.locator("#evaluate-status")).to_contain_text("Finished: 2 of 2 rows", timeout=60_000)
    page.get_by_role("tab", name="Review citations").click()
    expect(page.locator("#review-question textarea")).to_have_value("What is grace?", timeout=30_000)
    expect(page.get_by_role("tablist").first.get_by_role("tab")).to_have_text(["Chat", "Tune", "Evaluate"])


def test_a_reviewer_rates_with_the_keyboard_and_the_rating_survives_a_restart(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory, cache_dir: Path
) -> None:
    folder = tmp_path_factory.mktemp("review")
    question_set = folder / "given_answers.csv"
    question_set.write_text(GIVEN_ANSWERS, encoding="utf-8")
    env = {"HF_USE_API": "false", "SCRIBES_CACHE_DIR": str(cache_dir), "SCRIBES_DATA_DIR": str(folder / "data")}
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    app = start_app(env)
    try:
        _review_given_answers(page, app, question_set)
        reviewer = page.locator("#review-reviewer textarea, #review-reviewer input").first
        reviewer.fill("Ruth")
        reviewer.press("Enter")
        # Ephesians 2:8 and Romans 6:23 to rate; Hezekiah 3:1 flagged, with nothing to rate
        expect(page.locator("#review-panel .review-rating:visible")).to_have_count(2, timeout=30_000)
        expect(page.locator("#review-panel .review-flagged").first).to_contain_text("Hezekiah 3:1")
        expect(page.locator("#review-panel .review-flagged").first).to_contain_text("does not exist")
        page.locator("#review-keys").click()  # focus out of any text field: keys rate, not type
        page.keyboard.press("2")  # the first citation not rated yet: supports
        page.keyboard.press("0")  # then the next one: does not support
        expect(page.locator("#review-progress")).to_contain_text("Ruth: reviewed 0 of 2 answers · 2 citations rated", timeout=30_000)
        page.locator("#review-mark").click()
        expect(page.locator("#review-progress")).to_contain_text("Ruth: reviewed 1 of 2 answers")
        page.screenshot(path=ARTIFACTS / "review-rated.png", full_page=True)
    finally:
        app.stop()

    restarted = start_app(env, port=app.port)  # the same site: the browser remembers the reviewer
    try:
        _review_given_answers(page, restarted, question_set)
        expect(page.locator("#review-progress")).to_contain_text("Ruth: reviewed 1 of 2 answers", timeout=30_000)
        ratings = page.locator("#review-panel .review-rating:visible")
        expect(ratings.nth(0).locator("input[type=radio]").nth(0)).to_be_checked()  # 2 · supports
        expect(ratings.nth(1).locator("input[type=radio]").nth(2)).to_be_checked()  # 0 · does not support
        page.screenshot(path=ARTIFACTS / "review-after-restart.png", full_page=True)
    finally:
        restarted.stop()
        context.close()


#: What a model might write: none of it may run in the reader's browser, all of it must show.
HOSTILE_ANSWER = 'Grace <script>window.__xss = 1</script> is <img src=x onerror="window.__xss = 2"> free & <b>kind</b>.'


def test_html_in_an_answer_shows_as_text_and_runs_nothing(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> None:
    with FaultServer() as server:
        server.script([], then=Ok(HOSTILE_ANSWER))
        app = start_app(
            {"HF_BASE_URL": server.base_url, "HF_GENERATION_MODEL": "test-model", "HF_TOKEN": "hf_FAKE_TOKEN_xss_0123456789",
             "SCRIBES_DATA_DIR": str(tmp_path_factory.mktemp("xss"))}
        )
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            page = context.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(app.url, wait_until="domcontentloaded")
            _ask(page, "What is grace?")
            expect(page.locator("#answer-details")).to_contain_text("tokens/s", timeout=ANSWER_TIMEOUT_MS)
            bubble = page.locator("#chat-answers .message.bot").last
            expect(bubble).to_contain_text('<script>window.__xss = 1</script> is <img src=x onerror="window.__xss = 2"> free & <b>kind</b>.')
            assert bubble.locator("script, img, b").count() == 0
            assert page.evaluate("window.__xss") is None and dialogs == []
            page.screenshot(path=ARTIFACTS / "chat-html-as-text.png", full_page=True)
            _ask(page, "And mercy?")  # the next turn sends the answer back exactly as the model wrote it
            expect(page.locator("#chat-answers .message.bot").nth(1)).to_contain_text("free & <b>kind</b>.", timeout=ANSWER_TIMEOUT_MS)
            assert len(server.requests) == 2
            assert server.requests[-1].json["messages"][-2] == {"role": "assistant", "content": HOSTILE_ANSWER}
        finally:
            context.close()
            app.stop()


def test_a_grounded_answer_shows_the_passages_the_model_was_given(page: Page, local_app: RunningApp) -> None:
    _use_greedy_short_answers(page, 48)
    page.locator("#chat-ground input[type=checkbox]").check()
    _set_slider(page, "#chat-passage-count", 3)
    _ask(page, "For God so loved the world")
    expect(page.locator("#answer-details")).to_contain_text("tokens/s", timeout=ANSWER_TIMEOUT_MS)
    page.get_by_text("Passages given to the model").first.click()
    passages = page.locator("#chat-passages")
    expect(passages).to_contain_text("3 passages given to the model")
    expect(passages).to_contain_text("John 3:")
    expect(passages).to_contain_text("For God so loved the world")
    page.screenshot(path=ARTIFACTS / "chat-grounded.png", full_page=True)
