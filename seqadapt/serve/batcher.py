"""Dynamic batching across concurrent requests: request objects that arrive within ``max_wait`` of the first one
waiting, up to ``max_batch`` of them, are answered together, so rows of different tasks share backbone passes
(the mixed-batch path of :mod:`seqadapt.answers`, per-row routing, answers as each would get alone).

One batch runs at a time, in a worker thread (the event loop keeps accepting requests meanwhile), on the
stream being served when it starts (:class:`~seqadapt.serve.served.ServedRun`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from seqadapt.serve.metrics import Metrics
from seqadapt.serve.requests import HttpError, Item
from seqadapt.serve.served import ServedRun, answer


class ModelFailure(RuntimeError):
    """The model failed on a batch (not a request's fault); its requests get a 500 and the server goes on."""


@dataclass
class Pending:
    """One HTTP request's items waiting for their answers."""

    items: list[Item]
    future: asyncio.Future
    arrived: float = field(default_factory=time.perf_counter)


class Batcher:
    """Collects pending requests into batches and answers them; :meth:`run` is the loop, :meth:`submit` the entry."""

    def __init__(self, served: ServedRun, metrics: Metrics, max_batch: int, max_wait_s: float, max_queue: int) -> None:
        self.served, self.metrics = served, metrics
        self.max_batch, self.max_wait_s, self.max_queue = max_batch, max_wait_s, max_queue
        self.queue: asyncio.Queue[Pending] = asyncio.Queue()
        self.waiting = 0  # request objects submitted and not yet answered

    async def submit(self, items: list[Item]) -> list[dict[str, Any]]:
        """The answers to ``items``, once the batch they join has run; refused (503, retry) while more than
        ``max_queue`` request objects wait, so an overloaded server sheds load instead of queueing without end."""
        if self.waiting + len(items) > self.max_queue:
            raise HttpError(503, f"overloaded: {self.waiting} request objects are waiting (--max-queue "
                                 f"{self.max_queue}); retry shortly", retry_after_s=1)
        pending = Pending(items, asyncio.get_running_loop().create_future())
        self.waiting += len(items)
        try:
            await self.queue.put(pending)
            return await pending.future
        finally:
            self.waiting -= len(items)

    async def run(self) -> None:
        """Forever: wait for a request, gather what arrives within the window, answer the batch."""
        while True:
            batch = await self._gather()
            items = [item for pending in batch for item in pending.items]
            self.metrics.batches.observe(len(items))
            try:
                answers = await asyncio.to_thread(answer, self.served.current.stream, items)
            except Exception as err:  # noqa: BLE001 - the model's failure is these requests', not the server's
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(ModelFailure(f"{type(err).__name__}: {err}"))
                continue
            start = 0
            for pending in batch:
                if not pending.future.done():  # its client may have gone
                    pending.future.set_result(answers[start:start + len(pending.items)])
                start += len(pending.items)

    async def _gather(self) -> list[Pending]:
        """The first waiting request and those that arrive within ``max_wait_s`` of it, up to ``max_batch`` rows."""
        batch = [await self.queue.get()]
        rows = len(batch[0].items)
        deadline = time.perf_counter() + self.max_wait_s
        while rows < self.max_batch:
            left = deadline - time.perf_counter()
            try:
                pending = self.queue.get_nowait() if left <= 0 else await asyncio.wait_for(self.queue.get(), left)
            except (asyncio.QueueEmpty, asyncio.TimeoutError):
                break
            batch.append(pending)
            rows += len(pending.items)
        return batch
