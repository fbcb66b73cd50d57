"""Work on worker threads whose results are read, as they come, on the caller's thread.

A Gradio handler (or the Tune tab's compare) must stay free to yield each update while the
generation runs elsewhere, and must be able to stop that work when the person leaves.
:class:`Background` is the one way this is done: each worker gets an ``emit`` function and
a shared cancel event; the caller iterates over what they emit, in the order it arrives.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: ``work(emit, cancel)``: calls ``emit`` with each update, returns its result, and should
#: stop soon once ``cancel`` is set.
Work = Callable[[Callable[[T], None], threading.Event], R]


@dataclass(frozen=True)
class _Ended:
    index: int
    result: object = None
    failure: BaseException | None = None


class Background(Generic[T, R]):
    """Run every ``work`` on its own daemon thread at once; iterate to receive their updates.

    Iteration ends when every worker has returned; their return values are then in
    :attr:`results`, in the order given. A worker's exception is raised on the caller's
    thread as soon as it arrives (the other workers are told to stop). Leaving the
    iteration early (closing the generator, a closed browser tab) sets the cancel event.
    """

    def __init__(self, *works: Work[T, R], name: str, cancel: threading.Event | None = None) -> None:
        self.cancel = cancel or threading.Event()
        self.results: list[R] = []
        self._works = works
        self._name = name
        self._updates: queue.Queue[T | _Ended] = queue.Queue()

    def __iter__(self) -> Iterator[T]:
        ended: dict[int, object] = {}
        for index, work in enumerate(self._works):
            thread = threading.Thread(target=self._run, args=(index, work), name=f"{self._name}-{index}", daemon=True)
            thread.start()
        try:
            while len(ended) < len(self._works):
                item = self._updates.get()
                if not isinstance(item, _Ended):
                    yield item
                    continue
                if item.failure is not None:
                    raise item.failure
                ended[item.index] = item.result
        finally:
            self.cancel.set()
        self.results = [ended[i] for i in range(len(self._works))]  # type: ignore[misc]

    def _run(self, index: int, work: Work[T, R]) -> None:
        try:
            result = work(self._updates.put, self.cancel)
        except BaseException as error:  # handed to the caller's thread, which raises it
            self._updates.put(_Ended(index, failure=error))
        else:
            self._updates.put(_Ended(index, result=result))
