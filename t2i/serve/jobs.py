"""Generation jobs: per model a bounded queue and one worker thread, so requests to one model run
one at a time, in order, and the server's event loop never waits on torch."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class QueueFull(Exception):
    """The model's queue holds as many requests as it may; the client should retry later."""


@dataclass
class Job:
    run: Callable[[], Any]  # the generation itself, called on the worker thread
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    started: threading.Event = field(default_factory=threading.Event)


class ModelWorker:
    """One model's queue (at most `max_waiting` jobs not yet started) and the thread that runs them."""

    def __init__(self, name: str, max_waiting: int) -> None:
        self.name, self.max_waiting = name, max_waiting
        self._jobs: list[Job] = []
        self._lock = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=f"t2i-serve-{name}", daemon=True)
        self._thread.start()

    def waiting(self) -> int:
        with self._lock:
            return len(self._jobs)

    async def submit(self, run: Callable[[], Any]) -> Any:
        """Queue `run` and wait for its result; QueueFull when the queue is full. A caller that
        stops waiting (a client that went away) cancels its job if it has not started."""
        loop = asyncio.get_running_loop()
        job = Job(run=run, future=loop.create_future(), loop=loop)
        with self._lock:
            if self._closed:
                raise QueueFull(f"the server is shutting down; {self.name} takes no new requests")
            if len(self._jobs) >= self.max_waiting:
                raise QueueFull(f"{len(self._jobs)} requests already wait for {self.name}; try again later")
            self._jobs.append(job)
            self._lock.notify()
        try:
            return await job.future
        except asyncio.CancelledError:
            with self._lock:
                if job in self._jobs:  # never started: drop it, so it costs nothing
                    self._jobs.remove(job)
            raise

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._jobs and not self._closed:
                    self._lock.wait()
                if not self._jobs:
                    return
                job = self._jobs.pop(0)
            if job.future.cancelled():
                continue
            job.started.set()
            try:
                result, error = job.run(), None
            except BaseException as e:  # handed to the waiting request, which answers for it
                result, error = None, e
            job.loop.call_soon_threadsafe(_settle, job.future, result, error)

    def close(self) -> None:
        """Refuse new jobs; those queued still run, then the thread ends."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
