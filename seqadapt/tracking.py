"""Weights & Biases: one run per stream, offline unless the user asks otherwise, and a reader for offline runs.

Per run: the config, Lightning's per-stage train/val curves (through
``WandbLogger``), one ``stage/*`` record per stage, and at the end the
accuracy matrix as a ``wandb.Table``, the plots, and ACC/BWT/forgetting,
params-per-task and the last stage's task-ID-free inference numbers in the
summary. Runs of one experiment share a ``group``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pytorch_lightning.loggers import WandbLogger

WandbMode = Literal["offline", "online", "disabled"]


@dataclass(frozen=True)
class WandbConfig:
    mode: WandbMode = "offline"
    project: str = "seqadapt"
    entity: str | None = None
    group: str | None = None
    name: str | None = None
    tags: tuple[str, ...] = ()


def selection_metrics(stage: dict[str, Any], prefix: str) -> dict[str, float]:
    """A stage's task-ID-free inference numbers as flat W&B keys (none if the stage measured none)."""
    selection = stage.get("task_selection")
    if not selection:
        return {}
    record = {f"{prefix}/acc_with_task_id": selection["with_task_id"]["accuracy"]}
    for selector, result in selection["selectors"].items():
        record[f"{prefix}/task_id_acc/{selector}"] = result["task_id_accuracy"]
        record[f"{prefix}/acc_without_task_id/{selector}"] = result["accuracy"]
    return record


class WandbTracker:
    """Owns the W&B run of one stream; always finished, also when the stream fails."""

    def __init__(self, config: WandbConfig, output_dir: Path, run_config: dict[str, Any]) -> None:
        import wandb

        if config.mode not in ("offline", "online", "disabled"):
            raise ValueError(f"unknown wandb mode '{config.mode}'; choose offline, online or disabled")
        self._wandb = wandb
        self.run = wandb.init(
            project=config.project,
            entity=config.entity,
            group=config.group,
            name=config.name,
            tags=list(config.tags),
            mode=config.mode,
            dir=str(output_dir),
            config=run_config,
            reinit="finish_previous",
        )
        self.lightning_logger = WandbLogger(experiment=self.run)

    def log_stage(self, stage: dict[str, Any]) -> None:
        record = {
            "stage/index": stage["stage"],
            "stage/guard_passed": int(stage["guard"]["passed"]),
            "stage/train_seconds": stage["train_seconds"],
            "stage/eval_seconds": stage["eval_seconds"],
            "stage/guard_seconds": stage.get("guard_seconds", 0.0),
            "stage/selection_seconds": stage.get("selection_seconds", 0.0),
        }
        record.update({f"stage/acc/{task}": accuracy for task, accuracy in stage.get("carried", {}).items()})
        record.update({f"stage/acc/{e['task']}": e["accuracy"] for e in stage["evaluations"]})
        record.update(selection_metrics(stage, "stage"))
        self.run.log(record)

    def log_results(self, results: dict[str, Any], plots: dict[str, Path]) -> None:
        tasks = results["tasks"]
        rows = [[results["stages"][i]["task"], *row] for i, row in enumerate(results["accuracy_matrix"])]
        record: dict[str, Any] = {"accuracy_matrix": self._wandb.Table(columns=["after_stage", *tasks], data=rows)}
        record.update({f"plots/{name}": self._wandb.Image(str(path)) for name, path in plots.items()})
        self.run.log(record)
        self.run.summary.update({key: value for key, value in results["metrics"].items() if value is not None})
        for task, budget in results.get("params_per_task", {}).items():
            self.run.summary[f"params_per_task/{task}"] = budget["total_params"]
        self.run.summary["completed_stages"] = results["completed_stages"]
        if results["stages"]:
            self.run.summary.update(selection_metrics(results["stages"][-1], "task_selection"))

    def finish(self, failed: bool = False) -> None:
        self.run.finish(exit_code=1 if failed else 0)


# ----------------------------------------------------------------- reading back
_HEADER = b":W&B\xe1\xbe\x00"
_BLOCK = 32 * 1024
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _records(path: Path) -> list[bytes]:
    """The payloads of a ``.wandb`` transaction log (LevelDB log framing, 32 KiB blocks)."""
    data = path.read_bytes()
    if not data.startswith(_HEADER):
        raise ValueError(f"{path} is not a W&B transaction log")
    records, pending, offset = [], b"", len(_HEADER)
    while offset + 7 <= len(data):
        left_in_block = _BLOCK - offset % _BLOCK
        if left_in_block < 7:  # block trailer padding
            offset += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[offset : offset + 7])
        if length == 0 and kind == 0:
            offset += left_in_block
            continue
        chunk = data[offset + 7 : offset + 7 + length]
        offset += 7 + length
        if kind == _FULL:
            records.append(chunk)
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            records.append(pending + chunk)
    return records


def read_offline_run(run_dir: Path) -> dict[str, Any]:
    """Config, history rows, summary, run metadata and exit code of an offline run directory.

    For tests and CI that assert what was logged without a W&B server.
    """
    from wandb.proto import wandb_internal_pb2 as pb

    (log_file,) = Path(run_dir).glob("run-*.wandb")
    out: dict[str, Any] = {"config": {}, "history": [], "summary": {}, "run": {}, "exit_code": None}

    def key(item) -> str:
        return item.key or "/".join(item.nested_key)

    for payload in _records(log_file):
        record = pb.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            out["history"].append({key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            out["summary"].update({key(i): json.loads(i.value_json) for i in record.summary.update})
        elif kind == "config":
            out["config"].update({key(i): json.loads(i.value_json) for i in record.config.update})
        elif kind == "exit":  # written by finish(): a run without it was never finished
            out["exit_code"] = record.exit.exit_code
        elif kind == "run":
            out["run"] = {"group": record.run.run_group, "name": record.run.display_name, "project": record.run.project}
            out["config"].update({key(i): json.loads(i.value_json) for i in record.run.config.update})
    return out
