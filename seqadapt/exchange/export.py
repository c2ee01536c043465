"""``seqadapt-export``'s work: one task of a finished run written as a PEFT or AdapterHub folder, exactly or not at all.

Each library module translates (:mod:`~seqadapt.exchange.peft_format`, :mod:`~seqadapt.exchange.adapterhub_format`)
and refuses what its library cannot compute as seqadapt does; this one adds what seqadapt knows of the task
(``seqadapt_export.json``: definition, labels, pooling, backbone and its weights' SHA-256, the run it came from),
puts a head the library cannot hold beside the adapter where ``head=False`` asks for the adapter alone
(``seqadapt_head.safetensors``), and writes the folder whole or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from seqadapt import __version__
from seqadapt.exchange.adapterhub_format import export_adapterhub
from seqadapt.exchange.errors import ExchangeError
from seqadapt.exchange.package import SIDE_HEAD, SIDE_INFO, Package, write_package
from seqadapt.exchange.peft_format import export_peft
from seqadapt.exchange.task_state import TaskState, task_state

LIBRARIES: dict[str, Callable[[TaskState, bool], Package]] = {"peft": export_peft, "adapters": export_adapterhub}
SIDE_FORMAT = 1


@dataclass(frozen=True)
class ExportReport:
    """What was written: the folder, its files' sizes, where the head went, how to load it, what to know."""

    out_dir: Path
    library: str
    files: dict[str, int]
    head: str
    load: list[str]
    notes: list[str]


def export_task(run_dir: Path, task: str, library: str, out_dir: Path, head: bool = True) -> ExportReport:
    """Write ``task`` of the finished run in ``run_dir`` to ``out_dir`` as a ``library`` folder (``peft`` or
    ``adapters``); ``head=False`` writes the adapter alone, for the library (and vLLM), with the head beside it in
    seqadapt's own file. Refuses (:class:`ExchangeError`) anything the library would compute differently."""
    if library not in LIBRARIES:
        raise ExchangeError(f"unknown library {library!r}; seqadapt exports to {sorted(LIBRARIES)}")
    return export_state(task_state(run_dir, task), library, out_dir, head)


def export_state(state: TaskState, library: str, out_dir: Path, head: bool = True) -> ExportReport:
    """:func:`export_task` for a task already read (:func:`~seqadapt.exchange.task_state.task_state`)."""
    package = LIBRARIES[library](state, head)
    if not package.head:
        package.tensor_files[SIDE_HEAD] = state.head_tensors()
        package.head = f"{SIDE_HEAD}: seqadapt's own file ({library} loads the adapter alone; seqadapt imports both)"
    package.json_files[SIDE_INFO] = side_info(state, package)
    files = write_package(package, out_dir)
    load = [line.replace("OUT_DIR", repr(str(out_dir))) for line in package.load]
    return ExportReport(Path(out_dir), library, files, package.head, load, package.notes)


def side_info(state: TaskState, package: Package) -> dict[str, Any]:
    """What seqadapt knows of the task beyond the library's files: PEFT and AdapterHub ignore this file; seqadapt's
    import checks the backbone's weights and the head's labels and pooling against it."""
    return {
        "format": SIDE_FORMAT, "seqadapt_version": __version__, "library": package.library,
        "task": state.spec.to_dict(), "labels": list(state.spec.labels), "pooling": state.pooling,
        "adapter": {"method": state.method_name, **asdict(state.method)}, "head": package.head,
        "backbone": {"name": state.backbone.get("name"), "sha256": state.backbone.get("sha256"),
                     "model_type": state.layout.model_type, "location": state.backbone.get("location")},
        "origin": state.origin,
    }
