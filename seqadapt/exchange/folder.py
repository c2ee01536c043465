"""Reading an adapter folder someone handed over (PEFT, AdapterHub, or either as seqadapt-export wrote it) as
received input: JSON parsed within a size cap, weights only from ``.safetensors`` files of a size the task's
tensors allow, every file a regular file directly in the folder; nothing imported, instantiated or unpickled."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors

from seqadapt.data.tasks import TaskSpec
from seqadapt.exchange.adapterhub_format import HEAD_CONFIG, HEAD_WEIGHTS
from seqadapt.exchange.adapterhub_format import WEIGHTS as HUB_WEIGHTS
from seqadapt.exchange.adapterhub_import import import_adapterhub
from seqadapt.exchange.errors import ExchangeError, refused
from seqadapt.exchange.imported import Imported
from seqadapt.exchange.layout import ModelLayout
from seqadapt.exchange.package import CONFIG, SIDE_HEAD, SIDE_INFO
from seqadapt.exchange.peft_format import WEIGHTS as PEFT_WEIGHTS
from seqadapt.exchange.peft_import import import_peft
from seqadapt.untrusted_json import UntrustedJsonError, parse_json_object, read_bounded

MAX_JSON_BYTES = 16 * 2**20  # a config is a few kB; seqadapt_export.json holds a task's labels
PICKLES = {PEFT_WEIGHTS: "adapter_model.bin", HUB_WEIGHTS: "pytorch_adapter.bin", HEAD_WEIGHTS: "pytorch_model_head.bin"}


@dataclass(frozen=True)
class ReadFolder:
    """A folder's task (:class:`Imported`), what seqadapt_export.json says of it (empty where absent) and where
    it came from: its path, format and each file read with its SHA-256, for the task's manifest."""

    imported: Imported
    side: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)


def read_folder(folder: Path, layout: ModelLayout, spec: TaskSpec, max_tensor_bytes: int) -> ReadFolder:
    """The adapter in ``folder`` as task ``spec`` on ``layout``'s backbone; weight files over
    ``max_tensor_bytes`` (what the task's own tensors take, plus room for a header) are refused unread."""
    reader = _Reader(Path(folder), max_tensor_bytes)
    config = reader.json(CONFIG)
    where = str(folder)
    if "peft_type" in config:
        library = "peft"
        imported = import_peft(config, reader.tensors(PEFT_WEIGHTS), layout, spec, where)
    elif isinstance(config.get("config"), dict) and "model_type" in config:
        library = "adapters"
        head = (reader.json(HEAD_CONFIG), reader.tensors(HEAD_WEIGHTS)) if reader.has(HEAD_CONFIG) else None
        imported = import_adapterhub(config, reader.tensors(HUB_WEIGHTS), layout, spec, where, head)
    else:
        raise ExchangeError(f"{folder / CONFIG} is neither PEFT's (no peft_type) nor AdapterHub's (no config and "
                            "model_type): seqadapt imports folders written by PeftModel.save_pretrained, "
                            "model.save_adapter or seqadapt-export")
    side = reader.json(SIDE_INFO) if reader.has(SIDE_INFO) else {}
    if reader.has(SIDE_HEAD):
        if imported.head:
            raise refused(f"cannot import {folder}", f"it holds a head in {library}'s files and another in "
                          f"{SIDE_HEAD}", "Remove one of them")
        imported = Imported(imported.method, imported.tensors, reader.tensors(SIDE_HEAD), _side_pooling(side, folder))
    return ReadFolder(imported, side, {"folder": str(Path(folder).resolve()), "format": library, "files": reader.read})


def _side_pooling(side: dict[str, Any], folder: Path) -> str:
    """The pooling a head from seqadapt_head.safetensors was trained with (seqadapt_export.json says)."""
    pooling = side.get("pooling")
    if not isinstance(pooling, str):
        raise ExchangeError(f"{folder / SIDE_HEAD} comes without the pooling its head reads: {folder / SIDE_INFO} is "
                            "missing or has no 'pooling'; put back the seqadapt_export.json it was exported with")
    return pooling


class _Reader:
    """Files of one received folder, each checked to be a regular file directly in it and read within its cap;
    remembers the SHA-256 of each file read."""

    def __init__(self, folder: Path, max_tensor_bytes: int) -> None:
        if not folder.is_dir():
            raise ExchangeError(f"{folder} is not a folder: import an adapter folder (one holding {CONFIG})")
        self.folder, self.max_tensor_bytes = folder, max_tensor_bytes
        self.read: dict[str, str] = {}

    def has(self, name: str) -> bool:
        return (self.folder / name).exists()

    def _bytes(self, name: str, cap: int) -> bytes:
        path = self.folder / name
        if not path.exists():
            pickle = PICKLES.get(name)
            hint = (f"; it holds {pickle}, a pickle seqadapt does not load (it can run code): re-save with "
                    "safetensors (save_pretrained's default; save_adapter(..., use_safetensors=True))"
                    if pickle and (self.folder / pickle).exists() else "")
            raise ExchangeError(f"{self.folder} has no {name}{hint}")
        if path.is_symlink() or path.resolve().parent != self.folder.resolve():
            raise ExchangeError(f"{path} is a link; an imported folder's files must be plain files inside it")
        try:
            data = read_bounded(path, cap)
        except UntrustedJsonError as err:
            raise ExchangeError(f"{err}: refused unread (the task's own tensors take {self.max_tensor_bytes} bytes "
                                "at most)") from None
        self.read[name] = hashlib.sha256(data).hexdigest()
        return data

    def json(self, name: str) -> dict[str, Any]:
        try:
            return parse_json_object(self._bytes(name, MAX_JSON_BYTES), str(self.folder / name))
        except UntrustedJsonError as err:
            raise ExchangeError(str(err)) from None

    def tensors(self, name: str) -> dict[str, torch.Tensor]:
        data = self._bytes(name, self.max_tensor_bytes)
        try:
            return load_safetensors(data)
        except (SafetensorError, ValueError, RuntimeError) as err:
            raise ExchangeError(f"{self.folder / name} is not a readable safetensors file ({err})") from None
