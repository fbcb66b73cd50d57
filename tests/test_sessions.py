"""A visitor's session holds only what is the visitor's, and the app keeps a bounded number.

In-process: Gradio's own ``StateHolder`` and ``process_api`` drive a :class:`LeanSession`
and Gradio's eager ``SessionState`` through the same events, and their deep-link configs
must come out the same. Through the running app (API mode, a local endpoint): distinct
sessions, each its own session hash as a browser tab, and the app's RSS after each round.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import gradio as gr
import pytest
from app_process import start_app
from fault_server import FaultServer, Ok
from gradio import state_holder

from ui.sessions import LeanSession, use_lean_sessions

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from bench_session_memory import rss_by_sessions  # the benchmark's own rounds, not a copy

ANSWER = "Grace is the free favour of God."


def _small_app() -> tuple[gr.Blocks, gr.Textbox, gr.Slider, gr.State]:
    with gr.Blocks() as demo:
        text = gr.Textbox(value="first")
        slider = gr.Slider(0, 2, value=0.2, label="Temperature")
        count = gr.State(0)
        shown = gr.Markdown()
        button = gr.Button("Go")
        button.click(
            lambda t, n: (gr.Slider(value=1.5, label="Hotter"), n + 1, f"{t} #{n + 1}"),
            [text, count],
            [slider, count, shown],
        )
    return demo, text, slider, count


def _click(demo: gr.Blocks, session: state_holder.SessionState, text: str) -> None:
    asyncio.run(demo.process_api(0, [text, None], state=session))


def test_gradio_starts_every_visitors_session_as_a_lean_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_holder, "SessionState", state_holder.SessionState)  # put back after the test
    demo, *_ = _small_app()
    use_lean_sessions()
    holder = state_holder.StateHolder()
    holder.set_blocks(demo)
    assert isinstance(holder["visitor-1"], LeanSession), (
        "Gradio no longer makes sessions through state_holder.SessionState"
    )


def test_a_lean_session_answers_deep_links_as_gradios_own_does() -> None:
    demo, text, slider, count = _small_app()
    eager, lean = state_holder.SessionState(demo), LeanSession(demo)
    assert list(lean.components) == list(eager.components)  # before any event
    for session in (eager, lean):
        _click(demo, session, "grace")
        _click(demo, session, "mercy")
    assert list(lean.components) == list(eager.components)
    assert lean[count._id] == eager[count._id] == 2
    by_id = {c["id"]: c for c in lean.components}
    assert lean[slider._id].label == by_id[slider._id]["props"]["label"] == "Hotter"
    assert by_id[slider._id]["props"]["value"] == 1.5
    assert by_id[text._id]["props"]["value"] == "mercy"  # the event's input, as the deep link keeps it


def test_what_one_session_changes_stays_its_own() -> None:
    demo, _text, slider, count = _small_app()
    changed, untouched = LeanSession(demo), LeanSession(demo)
    _click(demo, changed, "grace")
    assert changed[slider._id].label == "Hotter" and changed[count._id] == 1
    assert untouched[slider._id].label == "Temperature" and untouched[count._id] == 0
    assert demo.blocks[slider._id].label == "Temperature"
    assert demo.default_config.blocks[slider._id].label == "Temperature"


def test_a_sessions_tables_read_as_the_apps_with_its_own_changes_in_front() -> None:
    demo, _text, slider, count = _small_app()
    lean = LeanSession(demo)
    app_fns, app_blocks = demo.default_config.fns, demo.default_config.blocks
    assert list(lean.blocks_config.fns.items()) == list(app_fns.items())
    assert list(lean.blocks_config.fns.values()) == list(app_fns.values()) and list(lean.blocks_config.fns) == list(app_fns)
    _click(demo, lean, "grace")  # replaces the slider, for this session only
    blocks = dict(lean.blocks_config.blocks.items())
    assert list(blocks) == list(app_blocks) and len(lean.blocks_config.blocks) == len(app_blocks)
    assert blocks[slider._id].label == "Hotter" and app_blocks[slider._id].label == "Temperature"
    assert [key for key, block in lean.blocks_config.blocks.items() if block is not app_blocks[key]] == [slider._id]
    assert list(lean.blocks_config.blocks.values()) == list(blocks.values())
    assert lean[count._id] == 1


def test_a_sessions_events_render_no_config_until_a_deep_link_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gradio renders a component's config at its first event in a session, and a state's whenever it is set."""
    demo, _text, _slider, count = _small_app()
    lean = LeanSession(demo)
    rendered: list[int] = []
    render = lean.blocks_config.config_for_block
    monkeypatch.setattr(lean.blocks_config, "config_for_block", lambda key, *a: rendered.append(key) or render(key, *a))
    for word in ("grace", "mercy", "peace", "hope", "faith"):
        _click(demo, lean, word)
    assert lean[count._id] == 5 and lean._state_ttl[count._id][0] == demo.blocks[count._id].time_to_live
    assert rendered == []
    eager = state_holder.SessionState(demo)
    for word in ("grace", "mercy", "peace", "hope", "faith"):
        _click(demo, eager, word)
    assert list(lean.components) == list(eager.components)
    assert rendered.count(count._id) == 1  # for the deep link, when it is asked for


def test_an_app_with_a_render_keeps_gradios_own_tables() -> None:
    """A render deletes the app's handlers from one session's table; each session owns a copy then."""
    with gr.Blocks() as demo:
        words = gr.Textbox(value="a b")

        @gr.render(inputs=words)
        def _boxes(text: str) -> None:
            for word in text.split():
                gr.Button(word).click(lambda: None)

    first, second = LeanSession(demo), LeanSession(demo)
    assert type(first.blocks_config.fns) is dict and first.blocks_config.fns is not second.blocks_config.fns
    render_fn = next(fn._id for fn in demo.fns.values() if fn.renderable is not None)
    asyncio.run(demo.process_api(render_fn, ["x y z"], state=first))
    asyncio.run(demo.process_api(render_fn, ["one"], state=first))  # the second render removes the first one's handlers
    assert len(first.blocks_config.fns) != len(second.blocks_config.fns) == len(demo.fns)


def test_memory_per_visitor_is_small_and_levels_off_at_the_sessions_kept(tmp_path: Path) -> None:
    """400 sessions past a warm-up cost at most 50 KiB each; past ``SCRIBES_SESSIONS_KEPT`` (600) far less.

    What still grows past the sessions kept is Gradio's message queue per session hash
    (it keeps 2,000) and the allocator's slack. Gradio's own sessions fail both limits
    many times over, and are kept up to 10,000.
    """
    with FaultServer() as server:
        server.script([], then=Ok(ANSWER))
        app = start_app(
            {
                "HF_BASE_URL": server.base_url,
                "HF_GENERATION_MODEL": "test-model",
                "HF_TOKEN": "hf_FAKE_sessions",
                "HF_CACHE_SIZE": "0",
                "SCRIBES_DATA_DIR": str(tmp_path),
                "SCRIBES_SESSIONS_KEPT": "600",
            }
        )
        try:
            run = rss_by_sessions(app, 7, 200, ANSWER)
            assert run.failures == [], f"{len(run.failures)} of 2,800 chats failed: {run.failures[:3]}\n{app.log_tail()}"
        finally:
            app.stop()
    rss = run.rss_mib
    growing = (rss[600] - rss[200]) * 1024 / 400
    kept = (rss[1400] - rss[600]) * 1024 / 800
    print(
        f"\nRSS by sessions: { ({k: round(v) for k, v in rss.items()}) }; {growing:.1f} KiB per session up to 600, {kept:.1f} after"
    )
    assert growing <= 50, f"{growing:.1f} KiB per session (RSS {rss})"
    assert kept <= 20, f"still {kept:.1f} KiB per session past the 600 kept (RSS {rss})"
