"""What the server keeps for each visitor: a session that holds only what is the visitor's.

Gradio's ``SessionState`` renders the config of every component of the app (some 300
here) when a session starts, and these make the bulk of what a visitor costs, for as
many as 10,000 visitors. They serve one purpose, the deep-link button
(``gr.DeepLinkButton``), which reads them all at once. It also copies the app's tables
of components and event handlers, so that an update can change them for one visitor.
A :class:`LeanSession` renders configs only if a deep link is asked for, keeping until
then the values events set; its tables hold what the session changed, in front of the
app's own (a ``ChainMap``). Same result,
everything else Gradio's own; ``benchmarks/bench_session_memory.py`` has the figures.
An app with a ``gr.render`` keeps Gradio's copies of the tables: a render deletes the
handlers of its last drawing from the session's table, and a ``ChainMap`` can delete only
what the session itself added.

How many sessions are kept is ``Settings.sessions_kept`` (``SCRIBES_SESSIONS_KEPT``).
"""

from __future__ import annotations

import datetime
from collections import ChainMap
from collections.abc import ItemsView, Iterator, ValuesView
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
from gradio import state_holder
from gradio.blocks import BlocksConfig


@dataclass(frozen=True)
class _NoConfigsYet:
    """What ``SessionState.__init__`` reads from the app, with no component to render up front."""

    default_config: BlocksConfig
    blocks: dict[int, Any] = field(default_factory=dict)


class _SessionTable(ChainMap):
    """What one session changed (``maps[0]``) in front of the app's own table (``maps[1]``).

    Gradio walks the table of handlers at every update of a stream (to find which states
    have a change listener), and a ``ChainMap`` walks by merging the keys of both maps
    first. A session that changed nothing, nearly all of them, reads the app's dict directly.
    """

    def __iter__(self) -> Iterator[Any]:
        return iter(self.maps[1]) if not self.maps[0] else super().__iter__()

    def values(self) -> ValuesView[Any]:
        return self.maps[1].values() if not self.maps[0] else super().values()

    def items(self) -> ItemsView[Any, Any]:
        return self.maps[1].items() if not self.maps[0] else super().items()


class LeanSession(state_holder.SessionState):
    """A Gradio session that renders components' configs only when a deep link asks for them.

    Until then it keeps what events set: a replaced component in its table, and the value
    each event gave a component (``_values``), which Gradio would write into that
    component's config, rendering the config first, at a session's first events.
    """

    def __init__(self, blocks: gr.Blocks) -> None:
        super().__init__(_NoConfigsYet(blocks.default_config))  # type: ignore[arg-type]
        self._app_blocks = blocks.blocks
        self._values: dict[int, Any] = {}
        if not blocks.default_config.renderables:
            self.blocks_config.blocks = _SessionTable({}, blocks.default_config.blocks)  # type: ignore[assignment]
            self.blocks_config.fns = _SessionTable({}, blocks.default_config.fns)  # type: ignore[assignment]

    def __setitem__(self, key: int, value: Any) -> None:
        """What an event set (a state's value, a component replaced), kept as Gradio keeps it.

        Gradio renders the component's whole config at every set, a state's at every update
        of a stream; here it is rendered when a deep link asks (:attr:`components`).
        """
        block = self.blocks_config.blocks.get(key)
        if isinstance(block, gr.State):
            self._state_ttl[key] = (block.time_to_live, datetime.datetime.now())
            self.state_data[key] = value
        else:
            self.blocks_config.blocks[key] = value
            self._values.pop(key, None)

    def _update_config(self, key: int) -> None:
        """Nothing to render: a deep link renders a replaced component from the table, whose old value ``__setitem__`` dropped."""

    def _update_value_in_config(self, key: int, value: Any) -> None:
        self._values[key] = value

    @property
    def components(self) -> Iterator[dict]:
        """Every component's config, as Gradio's eager session would hold it (for deep links)."""
        for key, block in self.blocks_config.blocks.items():
            if key not in self._app_blocks and key not in self._values:
                continue
            config = self.blocks_config.config_for_block(key, [], block)
            if key in self._values and "props" in config:
                config["props"]["value"] = self._values[key]
            if config:
                yield config


def use_lean_sessions() -> None:
    """Every session this process starts from now on is a :class:`LeanSession`.

    Gradio's ``StateHolder`` makes each visitor's session through its module's
    ``SessionState`` name; a test checks that it still does.
    """
    state_holder.SessionState = LeanSession  # type: ignore[misc]
