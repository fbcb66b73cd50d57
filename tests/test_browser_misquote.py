"""A misquote is shown where answers are read: under the Chat answer and among Tune's figures.

The app runs in API mode against the fault server of the tests (a real OpenAI-compatible
endpoint on 127.0.0.1), which answers every request with a known misquote: the words
the embedded model was seen to put in Psalm 24:10's mouth. Screenshots go to
``test-artifacts/`` for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from app_process import RunningApp, start_app
from browser import ARTIFACTS, chromium, new_page
from fault_server import FaultServer, Ok
from playwright.sync_api import Page, expect

MISQUOTE = (
    "God calls us to forgive. Read Psalm 24:10, which says 'Forgive us our enemies, as we forgive "
    "those who trespass against us.' John 3:16 reminds us of his love."
)
WARNING = "The words quoted for Psalms 24:10 are not in that verse"
REAL_TEXT = "Who is this King of glory?"
#: The fault server answers at once; the app's first request still warms its client up.
ANSWER_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def misquoting_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    with FaultServer() as server:
        server.script([], then=Ok(MISQUOTE))
        app = start_app(
            {"HF_BASE_URL": server.base_url, "HF_GENERATION_MODEL": "test-model",
             "HF_TOKEN": "hf_FAKE_TOKEN_misquote_0123456789", "SCRIBES_DATA_DIR": str(tmp_path_factory.mktemp("misquote"))}
        )
        try:
            yield app
        finally:
            app.stop()


@pytest.fixture
def page(misquoting_app: RunningApp) -> Iterator[Page]:
    with chromium() as browser:
        page = new_page(browser)
        page.goto(misquoting_app.url, wait_until="domcontentloaded")
        expect(page.get_by_role("tab", name="Chat")).to_be_visible(timeout=30_000)
        yield page


def test_chat_warns_of_a_misquote_under_the_answer_next_to_the_verse(page: Page) -> None:
    box = page.locator("#chat-question textarea")
    box.fill("What does the Bible say about forgiving our enemies?")
    box.press("Enter")
    details = page.locator("#answer-details")
    expect(details).to_contain_text(WARNING, timeout=ANSWER_TIMEOUT_MS)
    expect(details).to_contain_text("Forgive us our enemies")
    expect(details).to_contain_text(REAL_TEXT)
    expect(details).not_to_contain_text("The words quoted for John 3:16")  # nothing quoted for it
    details.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "chat-misquote-warning.png", full_page=True)


def test_tune_shows_the_misquote_among_the_figures(page: Page) -> None:
    page.get_by_role("tab", name="Tune").click()
    page.locator("#tune-compare-run").click()
    for column in "AB":
        figures = page.locator(f"#tune-figures-{column}")
        expect(figures).to_contain_text("tokens/s", timeout=ANSWER_TIMEOUT_MS)
        expect(figures).to_contain_text(WARNING)
    page.screenshot(path=ARTIFACTS / "tune-misquote-warning.png", full_page=True)
