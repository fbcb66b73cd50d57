"""Review citations in a real browser: fast keys lose nothing, reviewers stay apart, figures add up.

Each test starts its own app on a fresh data folder and reads the review store it wrote
afterwards, so what is asserted is what was saved, not what the page shows.
"""

from __future__ import annotations

import csv
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from app_process import RunningApp, start_app
from browser import ARTIFACTS, chromium, new_page
from playwright.sync_api import APIResponse, Browser, Page, Route, expect

from core.stores.reviews import RATINGS, ReviewStore, answer_key

pytestmark = pytest.mark.slow

#: 8 answers, each citing 2 existing verses: the first expected, the second not.
VERSES = [
    ("Ephesians 2:8", "Romans 6:23"), ("John 3:16", "Psalms 23:1"), ("Genesis 1:1", "Exodus 20:3"),
    ("Matthew 5:9", "Luke 2:11"), ("Acts 2:38", "Isaiah 53:5"), ("Proverbs 3:5", "Micah 6:8"),
    ("1 John 4:8", "James 1:5"), ("Hebrews 11:1", "Jeremiah 29:11"),
]
QUESTION = "Question {}: what does Scripture say?"
ANSWER = "Answer {} rests on {}. It is also said in {}."
#: The ratings typed for answer i (from 0): a pattern that differs from answer to answer.
PATTERN = [(2, 0), (1, 2), (0, 1), (2, 2), (0, 0), (1, 1), (2, 1), (0, 2)]


def _expected_ratings(answers: range = range(8)) -> dict[tuple[str, str], int]:
    expected = {}
    for i in answers:
        key = answer_key(QUESTION.format(i + 1), ANSWER.format(i + 1, *VERSES[i]))
        for verse, rating in zip(VERSES[i], PATTERN[i]):
            expected[(key, verse)] = rating
    return expected


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def question_set(tmp_path: Path) -> Path:
    path = tmp_path / "eight_answers.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "question", "expected_references", "answer"])
        for i, (first, second) in enumerate(VERSES):
            writer.writerow([f"q{i + 1}", QUESTION.format(i + 1), first, ANSWER.format(i + 1, first, second)])
    return path


@pytest.fixture
def review_app(tmp_path: Path, cache_dir: Path) -> Iterator[tuple[dict[str, str], Path]]:
    data = tmp_path / "data"
    yield {"HF_USE_API": "false", "SCRIBES_CACHE_DIR": str(cache_dir), "SCRIBES_DATA_DIR": str(data)}, data


@pytest.fixture
def review_page(browser: Browser, review_app: tuple[dict[str, str], Path]) -> Iterator[tuple[Page, RunningApp, Path]]:
    """A page of its own on an app of its own, and that app's data folder."""
    env, data = review_app
    app = start_app(env)
    page = new_page(browser)
    try:
        yield page, app, data
    finally:
        page.context.close()
        app.stop()


def _open_review(page: Page, app: RunningApp, question_set: Path, reviewer: str | None) -> None:
    """Evaluate → upload a set with its answers → Run → Review citations, as the reviewer."""
    page.goto(app.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="Evaluate").click()
    page.locator("#evaluate-upload input[type=file]").set_input_files(question_set)
    # a set with its answers is scored whole: the "first N" default does not apply to it
    expect(page.locator("#evaluate-status")).to_contain_text("all of them will be scored", timeout=30_000)
    page.locator("#evaluate-run").click()
    expect(page.locator("#evaluate-status")).to_contain_text("Finished: 8 of 8 rows", timeout=60_000)
    page.get_by_role("tab", name="Review citations").click()
    expect(page.locator("#review-question textarea")).to_have_value(QUESTION.format(1), timeout=30_000)
    if reviewer is not None:
        box = page.locator("#review-reviewer textarea, #review-reviewer input").first
        box.fill(reviewer)
        box.press("Enter")
        try:
            expect(page.locator("#review-progress")).to_contain_text(f"{reviewer}: reviewed 0 of 8", timeout=30_000)
        except AssertionError as error:
            raise AssertionError(f"{error}\n\napp log:\n{app.log_tail(60)}") from None
    expect(page.locator("#review-panel .review-rating:visible")).to_have_count(2)
    page.locator("#review-keys").click()  # out of any text field: keys rate, not type


def _type_ratings(page: Page, answers: range, delay_ms: int) -> None:
    for i in answers:
        for rating in PATTERN[i]:
            page.keyboard.press(str(rating), delay=0)
            page.wait_for_timeout(delay_ms) if delay_ms else None
        page.keyboard.press("j")
        page.wait_for_timeout(delay_ms) if delay_ms else None


def _stored(data: Path, reviewer: str) -> dict[tuple[str, str], int]:
    return {(r.answer_key, r.citation): r.rating for r in ReviewStore(data).ratings() if r.reviewer == reviewer}


def _wait_for_ratings(data: Path, reviewer: str, count: int, within_s: float = 60) -> dict[tuple[str, str], int]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline and len(_stored(data, reviewer)) < count:
        time.sleep(0.25)
    time.sleep(1.5)  # anything still on its way lands now, and would show as an extra or changed rating
    return _stored(data, reviewer)


def _wait_for_note(data: Path, reviewer: str, key: str, note: str, within_s: float = 30) -> str:
    """The note stored for ``key``, once it reads ``note`` or ``within_s`` is up."""
    deadline = time.monotonic() + within_s
    while ReviewStore(data).get(reviewer, key).note != note and time.monotonic() < deadline:
        time.sleep(0.25)
    return ReviewStore(data).get(reviewer, key).note


def _assert_clean_log(app: RunningApp) -> None:
    log = app.log_path.read_text(errors="replace")
    assert "KeyError" not in log, app.log_tail()
    assert not re.search(r"\b500\b.*Internal Server Error|Internal Server Error", log), app.log_tail()
    assert "Traceback" not in log, app.log_tail()


@pytest.mark.parametrize("delay_ms", [50, 0], ids=["keys-50ms-apart", "keys-without-pause"])
def test_fast_keyboard_review_saves_every_rating_on_its_own_answer(
    browser: Browser, review_app: tuple[dict[str, str], Path], question_set: Path, delay_ms: int
) -> None:
    env, data = review_app
    app = start_app(env)
    page = new_page(browser)
    try:
        _open_review(page, app, question_set, "Ruth")
        _type_ratings(page, range(8), delay_ms)
        saved = _wait_for_ratings(data, "Ruth", 16)
        assert saved == _expected_ratings(), f"{len(saved)} of 16 ratings saved as typed"
        # the page ends on the last answer, showing exactly what the store holds for it
        expect(page.locator("#review-question textarea")).to_have_value(QUESTION.format(8))
        radios = page.locator("#review-panel .review-rating:visible")
        for card, rating in enumerate(PATTERN[7]):
            expect(radios.nth(card).locator("input[type=radio]").nth(2 - rating)).to_be_checked()
        # k then 2 at once: the 2 lands on answer 7, which is fully rated, so nothing changes
        page.keyboard.press("k")
        page.keyboard.press("2")
        expect(page.locator("#review-question textarea")).to_have_value(QUESTION.format(7))
        assert _wait_for_ratings(data, "Ruth", 16, within_s=2) == _expected_ratings()
        page.screenshot(path=ARTIFACTS / f"review-fast-keys-{delay_ms}ms.png", full_page=True)
        _assert_clean_log(app)
    finally:
        page.context.close()
        app.stop()


def test_fast_review_goes_on_after_a_restart(browser: Browser, review_app: tuple[dict[str, str], Path], question_set: Path) -> None:
    env, data = review_app
    app = start_app(env)
    page = new_page(browser)
    try:
        _open_review(page, app, question_set, "Ruth")
        _type_ratings(page, range(4), 50)
        assert _wait_for_ratings(data, "Ruth", 8) == _expected_ratings(range(4))
        _assert_clean_log(app)
    finally:
        app.stop()
    restarted = start_app(env, port=app.port)  # the same site: the browser remembers the reviewer
    try:
        _open_review(page, restarted, question_set, None)
        # the browser remembers the reviewer; the restarted app remembers the ratings
        expect(page.locator("#review-progress")).to_contain_text("Ruth: reviewed 0 of 8 answers · 8 citations rated", timeout=30_000)
        jump = page.locator("#review-jump input")
        jump.fill("5")
        jump.press("Enter")
        expect(page.locator("#review-question textarea")).to_have_value(QUESTION.format(5), timeout=30_000)
        page.locator("#review-keys").click()
        _type_ratings(page, range(4, 8), 50)
        assert _wait_for_ratings(data, "Ruth", 16) == _expected_ratings()
        # a note may hold the review keys: typed in the notes they are text, not ratings or steps
        expect(page.locator("#review-question textarea")).to_have_value(QUESTION.format(8), timeout=30_000)
        page.locator("#review-notes textarea").click()
        page.keyboard.type("cf. j 2:0 — k and 1 too")
        last = answer_key(QUESTION.format(8), ANSWER.format(8, *VERSES[7]))
        assert _wait_for_note(data, "Ruth", last, "cf. j 2:0 — k and 1 too") == "cf. j 2:0 — k and 1 too"
        assert _stored(data, "Ruth") == _expected_ratings()
        expect(page.locator("#review-question textarea")).to_have_value(QUESTION.format(8))
        _assert_clean_log(restarted)
    finally:
        page.context.close()
        restarted.stop()


def test_two_reviewers_are_kept_apart_and_their_agreement_is_shown(
    browser: Browser, review_app: tuple[dict[str, str], Path], question_set: Path
) -> None:
    env, data = review_app
    app = start_app(env)
    ruth, boaz = new_page(browser), new_page(browser)  # two browsers' worth of storage: two people
    try:
        _open_review(ruth, app, question_set, "Ruth")
        _type_ratings(ruth, range(8), 50)
        _open_review(boaz, app, question_set, "Boaz")
        # Boaz agrees on answers 1-6 and differs on the second citation of answers 7 and 8
        for i in range(8):
            first, second = PATTERN[i]
            for rating in (first, second if i < 6 else (second + 1) % 3):
                boaz.keyboard.press(str(rating))
            boaz.keyboard.press("j")
        assert _wait_for_ratings(data, "Boaz", 16) and _wait_for_ratings(data, "Ruth", 16) == _expected_ratings()
        boaz_saved = _stored(data, "Boaz")
        differ = {cid for cid, rating in boaz_saved.items() if _expected_ratings()[cid] != rating}
        assert len(differ) == 2
        # only the answers where they disagree
        boaz.locator("#review-filter input").click()
        boaz.get_by_role("option", name="Where reviewers disagree").click()
        # Boaz ended on answer 8, which the filter keeps; the one before it that it keeps is 7, not 6
        expect(boaz.locator("#review-question textarea")).to_have_value(QUESTION.format(8), timeout=30_000)
        boaz.locator("#review-keys").click()
        boaz.keyboard.press("k")
        expect(boaz.locator("#review-question textarea")).to_have_value(QUESTION.format(7), timeout=30_000)
        expect(boaz.locator("#review-panel .review-citation").filter(has_text="Other reviewers: Ruth").first).to_be_visible()
        boaz.keyboard.press("k")
        expect(boaz.get_by_text("No answer before this one is in “Where reviewers disagree”")).to_be_visible(timeout=30_000)
        expect(boaz.locator("#review-question textarea")).to_have_value(QUESTION.format(7))
        figures = boaz.locator("#review-figures")
        expect(figures).to_contain_text("Agreement over 16 citations rated by two or more of 2 reviewers")
        expect(figures).to_contain_text("87.5% of pairs of ratings agree")
        expect(figures).to_contain_text("Manual citation accuracy")
        boaz.screenshot(path=ARTIFACTS / "review-two-reviewers.png", full_page=True)
        figures.scroll_into_view_if_needed()
        figures.screenshot(path=ARTIFACTS / "review-agreement-and-accuracy.png")
        # without a name nothing can be rated: the cards take no input and a key changes nothing
        box = boaz.locator("#review-reviewer textarea, #review-reviewer input").first
        box.fill("")
        boaz.locator("#review-keys").click()
        expect(boaz.locator("#review-progress")).to_contain_text("Type your reviewer name", timeout=30_000)
        expect(boaz.locator("#review-panel .review-rating:visible input[type=radio]").first).to_be_disabled()
        boaz.keyboard.press("0")
        boaz.wait_for_timeout(1500)
        assert _stored(data, "Boaz") == boaz_saved
        box.fill("Boaz")
        box.press("Enter")
        expect(boaz.locator("#review-progress")).to_contain_text("Boaz: reviewed 0 of 8", timeout=30_000)
        # the Evaluate summary shows the same accuracy figure
        boaz.get_by_role("tab", name="Run").click()
        expect(boaz.locator("#evaluate-summary")).to_contain_text("Agreement over 16 citations", timeout=30_000)
        expect(boaz.locator("#evaluate-summary")).to_contain_text("Manual citation accuracy")
        boaz.locator("#evaluate-summary").screenshot(path=ARTIFACTS / "evaluate-summary-with-reviews.png")
        _assert_clean_log(app)
    finally:
        ruth.context.close()
        boaz.context.close()
        app.stop()


def test_the_results_table_is_compact_and_a_selected_row_shows_in_full(
    review_page: tuple[Page, RunningApp, Path], question_set: Path
) -> None:
    page, app, _ = review_page
    _open_review(page, app, question_set, None)
    page.get_by_role("tab", name="Run").click()
    table = page.locator("#evaluate-table")
    headers = [re.sub(r"[^\w]", "", text) for text in table.get_by_role("columnheader").all_inner_texts()]
    assert headers == ["", "id", "question", "answer", "citations", "citation_f1", "flags"]  # "#" has no letters
    header = table.get_by_role("columnheader").nth(1).bounding_box()
    assert header is not None and header["height"] < 80, f"headers wrap letter by letter: {header}"
    expect(table.get_by_text("q3", exact=True)).to_be_visible()
    table.get_by_text("q3", exact=True).click()
    details = page.locator("#evaluate-row")
    expect(details).to_contain_text("expected_references", timeout=30_000)
    expect(details).to_contain_text("Genesis 1:1")
    expect(details).to_contain_text("within_token_limit")
    page.screenshot(path=ARTIFACTS / "evaluate-table.png", full_page=True)


#: Sends "go to answer 1" (the answer on screen) and, once the server has queued that redraw
#: and before it comes back, runs ``then``: the redraw is computed without what ``then`` does.
_JUMP_THEN = """(then) => new Promise((resolve) => {
  const fetch = window.fetch;
  window.fetch = async (...args) => {
    const response = await fetch(...args);
    if (String(args[0]).includes("queue/join")) {
      window.fetch = fetch;
      new Function(then)();
      resolve();
    }
    return response;
  };
  document.querySelector("#review-jump input").dispatchEvent(new KeyboardEvent("keypress", { key: "Enter", bubbles: true }));
})"""
_PRESS_2 = 'document.body.dispatchEvent(new KeyboardEvent("keydown", { key: "2", bubbles: true }))'
_TYPE_GRACE = """const notes = document.querySelector("#review-notes textarea");
notes.focus(); notes.value = "Grace"; notes.dispatchEvent(new Event("input", { bubbles: true }));"""


#: The first answer, on screen when the review opens.
FIRST = answer_key(QUESTION.format(1), ANSWER.format(1, *VERSES[0]))
#: The keys 2 then 0 on the first answer, as the store should hold them.
TWO_THEN_ZERO = {(FIRST, VERSES[0][0]): 2, (FIRST, VERSES[0][1]): 0}


def _redraw_crossing(page: Page, app: RunningApp, question_set: Path, then: str) -> None:
    """Opens the review as Ruth and redraws answer 1 across ``then``, until the redraw is on screen."""
    _open_review(page, app, question_set, "Ruth")
    view = page.locator("#review-view textarea, #review-view input").first
    before = view.input_value()
    page.evaluate(_JUMP_THEN, then)
    expect(view).not_to_have_value(before, timeout=30_000)


def test_a_redraw_that_crosses_a_rating_keeps_it_and_the_next_key_rates_the_next_citation(
    review_page: tuple[Page, RunningApp, Path], question_set: Path
) -> None:
    page, app, data = review_page
    _redraw_crossing(page, app, question_set, _PRESS_2)
    radios = page.locator("#review-panel .review-rating:visible")
    expect(radios.nth(0).locator("input[type=radio]").nth(0)).to_be_checked()  # still shows the 2 made before it came
    page.keyboard.press("0")
    assert _wait_for_ratings(data, "Ruth", 2) == TWO_THEN_ZERO
    expect(radios.nth(1).locator("input[type=radio]").nth(2)).to_be_checked()
    expect(page.locator("#review-progress")).to_contain_text("Ruth: reviewed 0 of 8 answers · 2 citations rated")
    page.screenshot(path=ARTIFACTS / "review-redraw-kept-rating.png", full_page=True)
    _assert_clean_log(app)


def test_a_redraw_that_crosses_a_note_keeps_it_and_typing_goes_on(
    review_page: tuple[Page, RunningApp, Path], question_set: Path
) -> None:
    page, app, data = review_page
    _redraw_crossing(page, app, question_set, _TYPE_GRACE)
    notes = page.locator("#review-notes textarea")
    expect(notes).to_have_value("Grace")
    expect(notes).to_be_focused()
    page.keyboard.type(" alone")
    assert _wait_for_note(data, "Ruth", FIRST, "Grace alone") == "Grace alone"
    _assert_clean_log(app)


def test_keystrokes_that_reach_the_server_out_of_order_keep_the_last_text(review_page: tuple[Page, RunningApp, Path], question_set: Path) -> None:
    """Each keystroke saves the whole note in its own request; here "Grac" is held back until "Grace" was queued."""
    page, app, data = review_page
    _open_review(page, app, question_set, "Ruth")
    held: list[Route] = []
    reordered: list[bool] = []

    def reorder(route: Route) -> None:
        body = route.request.post_data or ""
        if '"Grac"' in body and not held:
            held.append(route)  # sent on once the next keystroke's save is queued
            return
        if '"Grace"' in body and held:
            route.fulfill(response=route.fetch())
            held.pop().continue_()
            reordered.append(True)
            return
        route.continue_()

    page.route("**/queue/join*", reorder)
    page.locator("#review-notes textarea").click()
    page.keyboard.type("Grace", delay=50)
    deadline = time.monotonic() + 30
    while not reordered and time.monotonic() < deadline:
        page.wait_for_timeout(100)  # Playwright runs the route handlers only while the test waits in it
    assert reordered, "the two saves were not sent out of order"
    page.wait_for_timeout(1500)  # the held "Grac" has reached the server by now
    assert _wait_for_note(data, "Ruth", FIRST, "Grace") == "Grace"
    _assert_clean_log(app)


def _wait_in_page(page: Page, done: Callable[[], bool], what: str, within_s: float = 30) -> None:
    """Wait until ``done()``, letting Playwright run the route handlers meanwhile (it runs them only while the test waits in it)."""
    deadline = time.monotonic() + within_s
    while not done() and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert done(), what


def _two_ratings_saved(page: Page, data: Path) -> dict[tuple[str, str], int]:
    """Ruth's ratings once she has two, waiting in the page so that its held requests can go on."""
    _wait_in_page(page, lambda: len(_stored(data, "Ruth")) == 2, "the two ratings were not saved")
    return _stored(data, "Ruth")


def _answer_first_late(page: Page, matches: Callable[[Route], bool]) -> list[tuple[Route, APIResponse]]:
    """The first ``queue/join`` request that ``matches`` runs on the server at once, but the page is answered only
    when the test fulfills it with the response kept here; every other request goes on."""
    late: list[tuple[Route, APIResponse]] = []

    def answer(route: Route) -> None:
        if matches(route) and not late:
            late.append((route, route.fetch()))
            return
        route.continue_()

    page.route("**/queue/join*", answer)
    return late


def test_a_redraw_sent_before_the_name_and_arriving_after_it_leaves_the_cards_to_the_reviewer(
    review_page: tuple[Page, RunningApp, Path], question_set: Path
) -> None:
    """Requests in flight can reach the server in either order: here a redraw sent with the name box empty arrives once Ruth rates."""
    page, app, data = review_page
    _open_review(page, app, question_set, None)
    held: list[Route] = []

    def hold_first_redraw(route: Route) -> None:
        if '"All answers"' in (route.request.post_data or "") and not held:
            held.append(route)
            return
        route.continue_()

    page.route("**/queue/join*", hold_first_redraw)
    page.locator("#review-jump input").press("Enter")  # "go to answer 1", sent while no name is typed
    _wait_in_page(page, lambda: bool(held), "the redraw was not sent")
    box = page.locator("#review-reviewer textarea, #review-reviewer input").first
    box.fill("Ruth")
    box.press("Enter")
    expect(page.locator("#review-progress")).to_contain_text("Ruth: reviewed 0 of 8 answers", timeout=30_000)
    page.locator("#review-keys").click()
    page.keyboard.press("2")
    _wait_in_page(page, lambda: _stored(data, "Ruth") == {(FIRST, VERSES[0][0]): 2}, "the 2 was not saved")
    view = page.locator("#review-view textarea, #review-view input").first
    before = view.input_value()
    held.pop().continue_()
    _wait_in_page(page, lambda: view.input_value() != before, "the held redraw never reached the page")
    radios = page.locator("#review-panel .review-rating:visible")
    expect(radios.nth(1).locator("input[type=radio]").first).to_be_enabled()
    expect(radios.nth(0).locator("input[type=radio]").nth(0)).to_be_checked()
    page.keyboard.press("0")
    assert _two_ratings_saved(page, data) == TWO_THEN_ZERO
    expect(page.locator("#review-progress")).to_contain_text("Ruth: reviewed 0 of 8 answers · 2 citations rated")
    _assert_clean_log(app)


def _is_rating(route: Route) -> bool:
    """A rating's save: a short request with Ruth's name and a rating (a redraw sends every card)."""
    try:
        data = json.loads(route.request.post_data or "")["data"]
    except (ValueError, KeyError, TypeError):
        return False
    return len(data) <= 6 and "Ruth" in data and any(type(value) is int and value in RATINGS for value in data)


def test_the_progress_line_counts_every_rating_when_the_page_learns_of_the_first_one_last(
    review_page: tuple[Page, RunningApp, Path], question_set: Path
) -> None:
    """The server saves the first rating at once, but the page hears that it was sent only after the second has come back.

    Gradio then shows the first rating's outputs last: a count returned with each rating
    would leave "1 citations rated" on screen for two.
    """
    page, app, data = review_page
    _open_review(page, app, question_set, "Ruth")
    late = _answer_first_late(page, _is_rating)  # saved on the server at once; the page is answered below
    page.keyboard.press("2")
    _wait_in_page(page, lambda: bool(late), "the first rating was not sent")
    page.keyboard.press("0")
    assert _two_ratings_saved(page, data) == TWO_THEN_ZERO
    progress = page.locator("#review-progress")
    expect(progress).to_contain_text("2 citations rated", timeout=30_000)
    route, response = late.pop()
    route.fulfill(response=response)
    page.wait_for_timeout(2000)  # the first rating's outputs reach the page now
    expect(progress).to_contain_text("Ruth: reviewed 0 of 8 answers · 2 citations rated")
    _assert_clean_log(app)


def test_an_older_redraw_that_lands_after_the_reviewers_is_drawn_over_and_the_keys_rate(
    review_page: tuple[Page, RunningApp, Path], question_set: Path
) -> None:
    """A redraw for no reviewer runs first, but the page hears of it only after Ruth's has landed, and shows it last."""
    page, app, data = review_page
    _open_review(page, app, question_set, None)
    late = _answer_first_late(page, lambda route: '"All answers"' in (route.request.post_data or ""))  # drawn at once, for no reviewer
    page.locator("#review-jump input").press("Enter")  # "go to answer 1", with no name typed
    _wait_in_page(page, lambda: bool(late), "the redraw was not sent")
    box = page.locator("#review-reviewer textarea, #review-reviewer input").first
    box.fill("Ruth")
    box.press("Enter")
    radios, mark = page.locator("#review-panel .review-rating:visible"), page.locator("#review-mark")
    expect(mark).to_be_enabled(timeout=30_000)
    route, response = late[0]
    route.fulfill(response=response)  # the older redraw lands on the page now: drawn for no reviewer, its button takes no click
    page.wait_for_timeout(1000)
    expect(mark).to_be_enabled()
    expect(radios.nth(0).locator("input[type=radio]").first).to_be_enabled()
    expect(page.locator("#review-progress")).to_contain_text("Ruth: reviewed 0 of 8 answers", timeout=30_000)
    page.locator("#review-keys").click()
    page.keyboard.press("2")
    page.keyboard.press("0")
    assert _two_ratings_saved(page, data) == TWO_THEN_ZERO
    page.screenshot(path=ARTIFACTS / "review-older-redraw-drawn-over.png", full_page=True)
    _assert_clean_log(app)
