"""What the server answers with: a run's loaded stream (:func:`seqadapt.serving.load_stream`), checked as
``seqadapt-predict`` checks it, and swapped whole when the run folder changes (a growth, a retrain, a retire).

A reload builds the new stream beside the one being served and only then swaps the reference; a batch takes
the reference once, so requests in flight finish on the stream they started on. A reload that fails keeps the
old stream serving and says why (``reload_error``, ``GET /health``, the log); a folder being written (its
writer holds the lock) is tried again at the next look.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqadapt.artefacts import ARTEFACTS, MANIFEST_FILE, RUN_CONFIG, ArtefactError
from seqadapt.kinds.base import RequestError
from seqadapt.lock import RunLockedError
from seqadapt.record import RESULTS_FILE
from seqadapt.selection import DEFAULT_SELECTOR
from seqadapt.serve.requests import Item
from seqadapt.serve.task_list import describe
from seqadapt.serving import LoadedStream, load_stream
from seqadapt.versions import RETIRED_FILE

log = logging.getLogger("seqadapt.serve")


def folder_signature(run_dir: Path) -> tuple:
    """What changes when the served set changes: the run's config, record, retirements and each artefact's
    manifest (names, sizes, modification times); a few ``stat`` calls, cheap enough to take every second."""
    paths = [run_dir / RUN_CONFIG, run_dir / RESULTS_FILE, run_dir / RETIRED_FILE,
             *sorted((run_dir / ARTEFACTS).glob(f"*/{MANIFEST_FILE}"))]
    signature = []
    for path in paths:
        try:
            status = path.stat()
            signature.append((str(path), status.st_size, status.st_mtime_ns))
        except FileNotFoundError:
            signature.append((str(path), None, None))
    return tuple(signature)


@dataclass(frozen=True)
class Loaded:
    """One loaded set: the stream, the folder's signature it was loaded at, and its number."""

    stream: LoadedStream
    signature: tuple
    version: int
    tasks: list[dict[str, Any]]  # what GET /tasks lists


def logged_load(run_dir: Path) -> LoadedStream:
    """The run's stream; what loading it warned of (refused tasks, another environment) goes to the server's log."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stream = load_stream(run_dir)
    for warning in caught:
        if issubclass(warning.category, UserWarning):
            log.warning("%s", warning.message)
    return stream


class ServedRun:
    """The run folder and the set loaded from it; :meth:`reload_if_changed` picks up what changed."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        signature = folder_signature(self.run_dir)
        stream = logged_load(self.run_dir)
        self.current = Loaded(stream, signature, 1, describe(self.run_dir, stream))
        self.reload_error: str | None = None

    def reload_if_changed(self) -> bool:
        """Load the folder again if it changed since the set being served was loaded; True if it was swapped."""
        signature = folder_signature(self.run_dir)
        if signature == self.current.signature:
            return False
        try:
            stream = logged_load(self.run_dir)
        except RunLockedError:
            return False  # a writer is at work: look again later
        except (ArtefactError, OSError, ValueError, RuntimeError) as err:
            if self.reload_error != str(err):
                log.error("reloading %s failed; still serving version %d (%s): %s", self.run_dir,
                          self.current.version, ", ".join(self.current.stream.tasks), err)
            self.reload_error = str(err)
            return False
        before = set(self.current.stream.tasks)
        self.current = Loaded(stream, signature, self.current.version + 1, describe(self.run_dir, stream))
        self.reload_error = None
        log.info("reloaded %s as version %d: serving %s (added %s, removed %s)", self.run_dir, self.current.version,
                 stream.tasks, sorted(set(stream.tasks) - before), sorted(before - set(stream.tasks)))
        return True

    def check(self, item: Item) -> str | None:
        """Why ``item`` cannot be answered by the set being served, or ``None``."""
        try:
            self.current.stream.check(item.request, item.task, item.where)
        except (RequestError, ArtefactError) as err:
            return str(err)
        return None

    def expected_fields(self, task: str | None) -> dict[str, list[str]]:
        """The input fields each served task reads (``task``'s alone where it is served): what a fix needs."""
        stream = self.current.stream
        module = stream.module
        names = [task] if task in module.specs else stream.tasks
        return {name: list(module.kind(name).input_fields(module.specs[name])) for name in names}


def answer(stream: LoadedStream, items: list[Item]) -> list[dict[str, Any]]:
    """Each item's answer (what a ``seqadapt-predict`` line prints) or ``{"error": ...}``, in one pass per group:
    items given a task together (mixed tasks share backbone passes), items to select per selector
    (:meth:`~seqadapt.serving.LoadedStream.predict_each`: only an item that fails gets an error)."""
    answers: list[dict[str, Any]] = [{} for _ in items]
    groups: dict[str | None, list[int]] = {}
    for position, item in enumerate(items):
        groups.setdefault(item.selector, []).append(position)
    for selector, positions in groups.items():
        requests = [items[p].request for p in positions]
        tasks = None if selector else [items[p].task for p in positions]
        for position, result in zip(positions, stream.predict_each(requests, tasks, selector or DEFAULT_SELECTOR)):
            answers[position] = {"error": str(result)} if isinstance(result, Exception) else result.to_json()
    return answers
