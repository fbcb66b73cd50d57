"""The one thread on which a local model is loaded and run.

One thread, for two reasons. It serialises generation: two threads driving one model at
once would thrash the CPU (or corrupt a CUDA stream) and make seeded runs unrepeatable.
And it keeps torch fast on a small CPU: every thread that runs torch operations gets its
own OpenMP team of worker threads, and once a process has more of those than cores,
libgomp stops spinning between parallel regions and sleeps instead. A decode step is
hundreds of tiny parallel regions, so on 2 vCPUs decoding nearly halved when each answer
ran on a new thread after loading on another (benchmarks/README.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class ModelThread:
    """A queue of jobs run in order on one long-lived thread."""

    def __init__(self, name: str = "local-model"):
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending = 0
        self._count_lock = threading.Lock()

    def submit(self, job: Callable[[], T]) -> Future[T]:
        with self._count_lock:
            self._pending += 1
        future = self._executor.submit(job)
        future.add_done_callback(self._finished)
        return future

    def run(self, job: Callable[[], T]) -> T:
        """Run ``job`` on the thread after those queued before it; its result or its exception."""
        return self.submit(job).result()

    @property
    def busy(self) -> bool:
        """Whether a job is running or waiting (closed streams must leave this false)."""
        with self._count_lock:
            return self._pending > 0

    @property
    def others_waiting(self) -> bool:
        """Asked by the running job: whether jobs are queued behind it (a long job yields to them)."""
        with self._count_lock:
            return self._pending > 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _finished(self, _: Future[object]) -> None:
        with self._count_lock:
            self._pending -= 1
