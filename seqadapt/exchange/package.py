"""An exported folder before it is written: its JSON files, its safetensors files and what to tell the user."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as save_safetensors

from seqadapt.exchange.errors import ExchangeError
from seqadapt.io import fsync_dir

CONFIG = "adapter_config.json"
SIDE_INFO = "seqadapt_export.json"  # what seqadapt knows of the task; PEFT and AdapterHub ignore it
SIDE_HEAD = "seqadapt_head.safetensors"  # the head where the target's head types cannot express it (--no-head)


@dataclass
class Package:
    """A folder's contents by file name, where the head went (``head``), how to load it and anything to know."""

    library: str
    json_files: dict[str, dict[str, Any]]
    tensor_files: dict[str, dict[str, torch.Tensor]]
    head: str
    load: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def file_bytes(self) -> dict[str, bytes]:
        """Each file's exact bytes (safetensors without metadata and in name order: the same tensors give the same
        bytes, so two exports of one task can be compared with ``sha256sum``)."""
        files = {name: (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()
                 for name, value in self.json_files.items()}
        files.update({name: save_safetensors({key: value.detach().cpu().contiguous() for key, value in sorted(tensors.items())})
                      for name, tensors in self.tensor_files.items()})
        return files


def write_package(package: Package, out_dir: Path) -> dict[str, int]:
    """Write ``package`` to ``out_dir`` (which must not exist, or be empty): into a new folder beside it first,
    renamed into place when complete, so an interrupted export leaves nothing half-written. Returns file sizes."""
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ExchangeError(f"{out_dir} already exists and is not an empty folder; seqadapt-export does not write over "
                            "files. Give another output folder, or remove it first")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    files = package.file_bytes()
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would keep the folder from whoever serves it
    try:
        for name, data in files.items():
            with open(staging / name, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        if out_dir.exists():
            out_dir.rmdir()
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_dir(out_dir.parent)
    return {name: len(data) for name, data in files.items()}
