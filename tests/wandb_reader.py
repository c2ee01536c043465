"""Reading an offline W&B run back from disk, for tests that assert what users' dashboards will show.

W&B offline runs are a LevelDB-framed log of protobuf records (``run-*.wandb``);
this reads the config, history rows, summary, run metadata and exit code.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any

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


def read_offline_run(run_dir: Path, wait_seconds: float = 15.0) -> dict[str, Any]:
    """Config, history rows, summary, run metadata and exit code of an offline run directory.

    For tests and CI that assert what was logged without a W&B server. W&B's service process writes the log
    on its own schedule: a run whose exit record is not there yet is read again, for up to ``wait_seconds``
    (on a loaded machine it lands a moment after ``finish()`` returns).
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        out = _read_once(run_dir)
        if out["exit_code"] is not None or time.monotonic() > deadline:
            return out
        time.sleep(0.2)


def _read_once(run_dir: Path) -> dict[str, Any]:
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
