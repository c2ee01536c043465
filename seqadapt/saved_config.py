"""A saved ``run_config.yaml`` read as plain data: the settings a run was trained with, and nothing that runs.

Run folders are passed between people, so the file may have been written by
anyone. seqadapt writes it resolved (``OmegaConf.to_yaml(cfg, resolve=True)``),
so a genuine one holds plain values only; this reader accepts exactly that:
YAML's safe subset (no Python tags), at most :data:`MAX_BYTES`, nested at most
:data:`MAX_DEPTH` deep, :data:`MAX_NODES` values in all (aliases counted each
time they are used, so a "billion laughs" file is refused rather than expanded),
and no OmegaConf interpolation (``${...}``): resolving one would run a resolver
chosen by the file's author (``${oc.env:AWS_SECRET_ACCESS_KEY}`` would copy a
secret into results.json and W&B). What a saved config *names* to instantiate
(``callbacks``' ``_target_``) is never used: see :func:`seqadapt.cli.train.resume_target`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from seqadapt.io import open_regular

MAX_BYTES = 1 << 20  # a saved config is ~3 kB
MAX_DEPTH = 32
MAX_NODES = 100_000
PLAIN = (str, int, float, bool, type(None))


class SavedConfigError(ValueError):
    """A saved run_config.yaml that is not plain data as seqadapt writes it."""


def load_saved_config(path: Path) -> DictConfig:
    """``path`` as a config of plain values, or :class:`SavedConfigError` naming the file, the key and the way out."""
    path = Path(path)
    with os.fdopen(open_regular(path, os.O_RDONLY), "rb") as handle:  # a link could point at any file of yours
        raw = handle.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise _refuse(path, f"it is larger than {MAX_BYTES} bytes (a saved config is a few kB)")
    try:
        data = yaml.safe_load(raw)
    except (yaml.YAMLError, RecursionError, UnicodeDecodeError) as err:
        raise _refuse(path, f"it is not readable YAML ({' '.join(str(err).split())[:300]})") from None
    if not isinstance(data, dict):
        raise _refuse(path, f"it holds a {type(data).__name__}, not a mapping of settings")
    _check_plain(path, data, "", 0, [0])
    return OmegaConf.create(data)


def _check_plain(path: Path, value: Any, key: str, depth: int, count: list[int]) -> None:
    """Refuse anything but nested mappings and lists of plain values, within the size limits."""
    count[0] += 1
    if count[0] > MAX_NODES or depth > MAX_DEPTH:
        raise _refuse(path, f"it is nested deeper than {MAX_DEPTH} or holds more than {MAX_NODES} values "
                            f"(at {key[:200]!r})")
    if isinstance(value, dict):
        for name, item in value.items():
            if not isinstance(name, (str, int)) or "${" in str(name):
                raise _refuse(path, f"key {str(name)[:100]!r} under {key[:200]!r} is not a plain name")
            _check_plain(path, item, f"{key}.{name}" if key else str(name), depth + 1, count)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_plain(path, item, f"{key}[{index}]", depth + 1, count)
    elif not isinstance(value, PLAIN):
        raise _refuse(path, f"{key[:200]!r} holds a {type(value).__name__}, not a plain value")
    elif isinstance(value, str) and "${" in value:
        raise _refuse(path, f"{key[:200]!r} holds an interpolation ({value[:100]!r}); seqadapt writes this file resolved "
                            "and never resolves one from a saved file (a resolver could read your environment)")


def _refuse(path: Path, problem: str) -> SavedConfigError:
    return SavedConfigError(
        f"{path}: {problem}. seqadapt reads a saved config as plain data only. If this folder came from someone "
        "else, ask them for the run_config.yaml seqadapt wrote (results.json's \"config\" holds the same settings); "
        "or start a new run in another folder"
    )


def config_text(config: Mapping[str, Any]) -> str:
    """The text of ``run_config.yaml`` for a resolved config: what a run writes when it starts, and a resume that
    grows or changes the run when its restored stages verified. ``resume`` is left out (null): the file says how
    the run's stages are trained, not how it was last invoked."""
    return OmegaConf.to_yaml(OmegaConf.create({**config, "resume": None}))
