"""Generation jobs: per model a bounded queue and one worker thread, so each model runs one batch
at a time and the server's event loop never waits on torch. Requests that wait together with the
same sampling options are run as one batch of up to `max_batch` images (every image still the
one its own request would get alone)."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any


class QueueFull(Exception):
    """The model's queue holds as many requests as it may; the client should retry later."""


@dataclass
class Job:
    request: Any  # what run_batch takes, one per job
    key: Hashable  # jobs with equal keys may share a batch
    images: int  # how many images it asks for
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    started: threading.Event = field(default_factory=threading.Event)


class ModelWorker:
    """One model's queue (at most `max_waiting` jobs not yet started) and the thread that runs them.

    run_batch(requests) -> one result per request, in order. The worker takes the oldest job and
    every later waiting one with its key while the images add up to at most max_batch (1: each
    job alone). If a batch fails, its jobs run again one by one, so one bad request fails alone.
    """

    def __init__(self, name: str, max_waiting: int, run_batch: Callable[[list[Any]], list[Any]], *, max_batch: int = 1) -> None:
        self.name, self.max_waiting, self.run_batch, self.max_batch = name, max_waiting, run_batch, max_batch
        self.batches = 0  # batches run so far (the load benchmark and tests read it)
        self._jobs: list[Job] = []
        self._lock = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=f"t2i-serve-{name}", daemon=True)
        self._thread.start()

    def waiting(self) -> int:
        with self._lock:
            return len(self._jobs)

    async def submit(self, request: Any, *, key: Hashable = None, images: int = 1) -> Any:
        """Queue a request and wait for its result; QueueFull when the queue is full. A caller that
        stops waiting (a client that went away) cancels its job if it has not started."""
        loop = asyncio.get_running_loop()
        job = Job(request=request, key=key, images=images, future=loop.create_future(), loop=loop)
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

    def _next_batch(self) -> list[Job]:
        """The oldest job and the later ones that may join it (called with the lock held)."""
        first = self._jobs.pop(0)
        batch, total = [first], first.images
        for job in list(self._jobs):
            if job.key == first.key and total + job.images <= self.max_batch:
                self._jobs.remove(job)
                batch.append(job)
                total += job.images
        return [job for job in batch if not job.future.cancelled()]

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._jobs and not self._closed:
                    self._lock.wait()
                if not self._jobs:
                    return
                batch = self._next_batch()
            if not batch:
                continue
            for job in batch:
                job.started.set()
            self.batches += 1
            try:
                outcomes = [(result, None) for result in self.run_batch([job.request for job in batch])]
            except BaseException as e:  # handed to the waiting requests, which answer for it
                outcomes = [(None, e)] if len(batch) == 1 else [self._alone(job) for job in batch]
            for job, (result, error) in zip(batch, outcomes):
                job.loop.call_soon_threadsafe(_settle, job.future, result, error)

    def _alone(self, job: Job) -> tuple[Any, BaseException | None]:
        self.batches += 1
        try:
            return self.run_batch([job.request])[0], None
        except BaseException as e:
            return None, e

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
