"""Dynamic micro-batching: requests arriving together share one batched generation on one model instance.

Requests from the HTTP handlers queue up; one worker thread owns the pipeline (a model is not thread-safe, and
one instance per process keeps memory flat). It takes the first waiting request, gathers more for at most
``max_wait_ms`` or until ``max_batch`` are waiting, retrieves each request's documents, and answers them with one
:meth:`PRGPipeline.batch` call. Batching costs the first request up to ``max_wait_ms``; under load it multiplies
throughput because the model's cost per step barely grows with the batch (benchmarks/bench_serve.py).

Written by hand: no library batches calls into an in-process PyTorch model this way (serving frameworks such as
Triton or Ray Serve bring their own server and process model), and the logic is fifty lines.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from prg.pipeline import CitationOut, PRGInputError, PRGPipeline, PRGRequest, PRGResult
from prg.serve.decode import RequestError

__all__ = ["Job", "MicroBatcher"]


@dataclass
class Job:
    """One request waiting for the model. ``on_retrieved`` (streaming) is called on the worker thread with the
    chunks the prompt will hold; ``streamer`` gets the answer's tokens (``put`` / ``end``)."""

    request: PRGRequest
    k_docs: int | None = None
    k_grasps: int | None = None
    streamer: Any = None
    on_retrieved: Callable[[list[CitationOut]], None] | None = None
    future: Future[PRGResult] = field(default_factory=Future)
    enqueued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """A queue of :class:`Job` and the one worker thread that answers them in micro-batches.

    ``observe_batch(size)`` (optional) is told each batch's size, for metrics."""

    def __init__(
        self,
        pipeline: PRGPipeline,
        max_batch: int = 8,
        max_wait_ms: float = 10.0,
        max_queue: int = 256,
        observe_batch: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self.pipeline = pipeline
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self.observe_batch = observe_batch
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="prg-batcher", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """Requests waiting (not yet in a batch)."""
        return self._queue.qsize()

    def submit(self, job: Job) -> Future[PRGResult]:
        """Queue a job; 503 ``busy`` when ``max_queue`` are already waiting (the client should retry later)."""
        if not self._thread.is_alive():
            raise RequestError(503, "not_serving", "the model worker has stopped")
        if self._queue.qsize() >= self.max_queue:
            raise RequestError(503, "busy", f"{self.max_queue} requests are already waiting; retry later")
        self._queue.put(job)
        return job.future

    def close(self, timeout: float = 30.0) -> None:
        """Finish the batch in progress, fail the waiting jobs, stop the worker."""
        self._queue.put(None)
        self._thread.join(timeout)

    # -- the worker ------------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                break
            jobs = [first]
            deadline = time.perf_counter() + self.max_wait
            stop = False
            while len(jobs) < self.max_batch:
                remaining = deadline - time.perf_counter()
                try:
                    nxt = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                jobs.append(nxt)
            # a job whose client gave up (timeout, disconnect) was cancelled: skip it
            live = [j for j in jobs if j.future.set_running_or_notify_cancel()]
            groups: dict[int | None, list[Job]] = {}
            for j in live:
                groups.setdefault(j.k_grasps, []).append(j)
            for group in groups.values():
                self._answer(group)
            if stop:
                break
        while True:  # stopping: nothing more will be answered
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is not None and job.future.set_running_or_notify_cancel():
                job.future.set_exception(RequestError(503, "not_serving", "the server is shutting down"))

    def _answer(self, jobs: list[Job]) -> None:
        """Retrieve for each job, then one batched generation; a job's own error fails that job only."""
        pipe = self.pipeline
        ready: list[tuple[Job, list[str], float]] = []
        for j in jobs:
            try:
                t0 = time.perf_counter()
                rgb, text, depth, _ = j.request.checked()
                seen: list[str] = []
                if j.request.documents is None:
                    docs, seen = pipe.retrieve(text, rgb, depth, j.k_docs)
                    j.request.documents = docs
                if j.on_retrieved is not None:
                    j.on_retrieved(list(j.request.documents))
                ready.append((j, seen, 1000 * (time.perf_counter() - t0)))
            except BaseException as e:
                _fail(j, e)
        if not ready:
            return
        if self.observe_batch is not None:
            self.observe_batch(len(ready))
        try:
            results = pipe.batch(
                [j.request for j, _, _ in ready],
                k_grasps=ready[0][0].k_grasps,
                streamers=[j.streamer for j, _, _ in ready],
            )
        except PRGInputError as e:
            if len(ready) == 1:
                _fail(ready[0][0], e)
                return
            for one in ready:  # a request the endpoint's checks let through: find it, answer the others
                self._answer_alone(one)
            return
        except BaseException as e:
            for j, _, _ in ready:
                _fail(j, e)
            return
        for (j, seen, t_retrieval), res in zip(ready, results, strict=True):
            timings = dict(res.timings_ms)
            timings["retrieval"] = round(t_retrieval, 3)
            timings["queue"] = round(1000 * (time.perf_counter() - j.enqueued) - timings.get("total", 0.0), 3)
            timings["batch_size"] = float(len(ready))
            j.future.set_result(res.model_copy(update={"seen_tools": seen, "timings_ms": timings}))

    def _answer_alone(self, item: tuple[Job, list[str], float]) -> None:
        j, seen, t_retrieval = item
        try:
            (res,) = self.pipeline.batch([j.request], k_grasps=j.k_grasps, streamers=[j.streamer])
        except BaseException as e:
            _fail(j, e)
            return
        timings = {**res.timings_ms, "retrieval": round(t_retrieval, 3), "batch_size": 1.0}
        j.future.set_result(res.model_copy(update={"seen_tools": seen, "timings_ms": timings}))


def _fail(job: Job, error: BaseException) -> None:
    if job.streamer is not None:
        job.streamer.end()
    if not job.future.done():
        job.future.set_exception(error)
