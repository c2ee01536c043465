"""``seqadapt-predict``'s standard input, read as it comes: numbered lines of bounded length, in batches of what
has arrived.

A filter answers line by line. Reading all of standard input first made a
20 MB line cost 28 s and 3.5 GB before the first answer, and a producer that
waits for each answer before writing the next line never got one. Here lines
are read with a bounded ``readline``, so a line longer than the limit is read
past in pieces, never held whole, and reported as too long; a thread reads
ahead (at most two batches) while the caller answers whatever has arrived,
up to a batch at a time: piped input still fills batches, and a line typed or
written by a waiting producer is answered at once.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import BinaryIO, TypeVar

DEFAULT_MAX_LINE_BYTES = 2**20  # 1 MiB: far more than any backbone reads; a longer line gets an error answer
SKIP_BYTES = 2**16  # how much of an over-long line is held at a time while it is read past
T = TypeVar("T")


def read_lines(stream: BinaryIO, max_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """Each line of ``stream`` with its number (from 1), without its line end (``\\n`` or ``\\r\\n``); ``None``
    for a line of more than ``max_bytes`` bytes, which is read past, never held whole."""
    number = 0
    while raw := stream.readline(max_bytes + 2):
        number += 1
        ended = raw.endswith(b"\n")
        line = raw.removesuffix(b"\n").removesuffix(b"\r")
        if len(line) <= max_bytes:
            yield number, line
            continue
        while not ended and (rest := stream.readline(SKIP_BYTES)):
            ended = rest.endswith(b"\n")
        yield number, None


def arrived_batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size``, each handed over as soon as one item has arrived, with those that
    arrived meanwhile. A thread reads ``items`` (at most ``2 * size`` ahead); its error is raised here, after
    the items read before it."""
    arrived: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=2 * size)

    def read() -> None:
        try:
            for item in items:
                arrived.put(("item", item))
        except BaseException as err:  # noqa: BLE001 - handed to the reading thread, which raises it
            arrived.put(("error", err))
        else:
            arrived.put(("end", None))

    threading.Thread(target=read, name="seqadapt-predict-input", daemon=True).start()
    while True:
        batch: list[T] = []
        kind, value = arrived.get()
        while kind == "item":
            batch.append(value)  # type: ignore[arg-type]
            if len(batch) >= size:
                break
            try:
                kind, value = arrived.get_nowait()
            except queue.Empty:
                break
        if batch:
            yield batch
        if kind == "error":
            raise value  # type: ignore[misc]
        if kind == "end":
            return
