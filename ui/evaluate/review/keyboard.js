// Keys of the "Review citations" panel, run once per page by the panel's help line.
//
// j / → next answer, k / ← previous, 2 / 1 / 0 rate the citation that has the focus (or
// the first one not rated yet), then the focus moves on. Keys act only while the panel is
// on screen and never while the focus is in a text field, so notes can contain "j" and "2".
//
// Nothing typed is lost and nothing lands on the wrong answer: after a step to another
// answer (j, k, or "Mark reviewed"), the keys that follow are held until that answer is
// on screen (the hidden #review-view changes), then replayed on it in order; so are keys
// pressed while the cards cannot be rated yet (the reviewer's name is on its way). A rating
// event carries the answer and citation that were on screen when it was made.
//
// Gradio shows an event's outputs in the order the page learns of the events, not the
// order they ran in, so an older redraw can land after a newer one. Each redraw's view has
// a rising token: when an older one lands, the page asks for the answer last drawn again.
if (!window.scribesReviewKeys) {
  window.scribesReviewKeys = true;
  const style = document.createElement("style");
  style.textContent = `
    #review-panel .review-citation:focus-within { outline: 3px solid var(--color-accent); outline-offset: 2px; }
    #review-panel .review-flagged { border-left: 4px solid var(--color-red-500, #ef4444); }
    #review-panel kbd { border: 1px solid var(--border-color-primary); border-radius: 4px; padding: 0 4px; font-size: 0.85em; }
  `;
  document.head.appendChild(style);
  const TEXT_INPUTS = /^(text|search|email|number|password|url|tel|date|time|datetime-local|month|week)$/;
  const isTyping = (el) => !!el && (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT"
    || (el.tagName === "INPUT" && TEXT_INPUTS.test(el.type)));
  const OPTION_OF_KEY = { "2": 0, "1": 1, "0": 2 };
  const STEPS = { j: "review-next", ArrowRight: "review-next", k: "review-previous", ArrowLeft: "review-previous" };
  const STEP_BUTTONS = ["review-next", "review-previous", "review-mark"];
  const GIVE_UP_MS = 20000;  // a step the server never answers: drop the held keys
  const shown = (el) => el.getClientRects().length > 0;
  const view = () => document.querySelector("#review-view textarea, #review-view input")?.value ?? "";
  const answerOf = (text) => { try { return JSON.parse(text).key; } catch { return null; } };
  const tokenOf = (text) => { try { return JSON.parse(text).token; } catch { return 0; } };
  // Gradio draws a Group as two nested elements that both carry its classes: keep the outer one.
  const rateable = (panel) => [...panel.querySelectorAll(".review-citation")].filter((card) =>
    !card.parentElement.closest(".review-citation") && shown(card)
    && [...card.querySelectorAll("input[type=radio]")].some((input) => shown(input) && !input.disabled));
  const focusCard = (card) => {
    const input = card.querySelector("input[type=radio]:checked") || card.querySelector("input[type=radio]");
    input.focus({ preventScroll: true });
    card.scrollIntoView({ block: "nearest" });
  };

  let lastView = view();
  let newest = tokenOf(lastView);
  let waiting = null;  // {from: view before the step, since: time}
  const held = [];

  const act = (key) => {
    const panel = document.getElementById("review-panel");
    if (!panel) return;
    if (key in STEPS) {
      waiting = { from: view(), since: performance.now() };
      document.getElementById(STEPS[key])?.click();
      return;
    }
    const cards = rateable(panel);
    if (!cards.length && [...panel.querySelectorAll(".review-rating input[type=radio]:disabled")].some(shown)) {
      // cards that cannot be rated yet (no reviewer name until the redraw arrives): hold the key
      waiting = { from: view(), since: performance.now() };
      held.unshift(key);
      return;
    }
    const focused = cards.find((c) => c.contains(document.activeElement));
    const card = focused || cards.find((c) => !c.querySelector("input[type=radio]:checked"));
    if (!card) return;  // every citation on screen is rated: nothing to do
    card.querySelectorAll("input[type=radio]")[OPTION_OF_KEY[key]]?.click();
    const next = cards[cards.indexOf(card) + 1];
    focusCard(next || card);
  };

  const replay = () => {
    while (held.length && waiting === null) act(held.shift());
  };

  setInterval(() => {
    const now = view();
    if (now !== lastView) {
      const another = answerOf(now) !== answerOf(lastView);
      lastView = now;
      if (tokenOf(now) < newest) document.getElementById("review-redraw")?.click();  // an older redraw landed last
      newest = Math.max(newest, tokenOf(now));
      // a new answer: the focus belonged to the old one's cards (a redraw of the same answer keeps it)
      const panel = document.getElementById("review-panel");
      if (another && panel && panel.contains(document.activeElement) && !isTyping(document.activeElement)) document.activeElement.blur();
      if (waiting !== null && now !== waiting.from) {
        waiting = null;
        requestAnimationFrame(() => requestAnimationFrame(replay));  // let the new cards paint first
      }
    } else if (waiting !== null && performance.now() - waiting.since > GIVE_UP_MS) {
      waiting = null;
      held.length = 0;
    }
  }, 20);

  document.addEventListener("click", (event) => {
    const button = event.target.closest?.("button");
    if (button && STEP_BUTTONS.includes(button.id) && event.isTrusted) waiting = { from: view(), since: performance.now() };
  }, true);

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
    const panel = document.getElementById("review-panel");
    if (!panel || !shown(panel)) return;  // another tab is showing
    if (!(event.key in STEPS) && !(event.key in OPTION_OF_KEY)) return;
    event.preventDefault();
    if (waiting !== null || held.length) held.push(event.key);
    else act(event.key);
  }, true);
}
