"""What a retrain may change, and the config a task's new version trains with.

A retrained task runs over the run's frozen backbone, beside the run's other
tasks, and is compared with its earlier versions on the same test split. So
the same rule table as a resume's decides (:mod:`seqadapt.overrides`): the
``stage`` settings may change (``trainer.*`` but accelerator and precision,
``optim.*``, ``data.batch_size``, and the task's ``data.train_size`` and
``data.val_size``); everything that shapes the model, the stream or what the
run's tasks are measured on stays the run's, and so does the task's
``data.test_size`` (its versions are compared on one test split). Overrides are
written as on seqadapt's command line (Hydra's grammar; ``+trainer.x=…`` adds a
Trainer argument).

The task's split sizes become its own (``data.task_sizes.<task>``, the same
per-task entry a grown run keeps for its earlier tasks), so the run's config
goes on rebuilding the splits of the version that is current (:func:`with_task_sizes`).
"""

from __future__ import annotations

from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType
from hydra.errors import OverrideParseException
from omegaconf import DictConfig, OmegaConf

from seqadapt.data.splits import SIZE_KEYS, task_split_sizes
from seqadapt.overrides import TASK_SIZES, kind_of

TASK_SIZE_KEYS = ("data.train_size", "data.val_size")  # a retrain's own; data.test_size stays the task's
ALLOWED = "trainer.* (but accelerator and precision), optim.*, data.batch_size, data.train_size, data.val_size"
_MISSING = object()


class RetrainSettingError(ValueError):
    """An override a retrain cannot apply; the message names it, the run's value and what may change."""


def retrain_config(saved: DictConfig, task: str, overrides: list[str], source: str) -> tuple[DictConfig, dict[str, Any]]:
    """The config ``task``'s new version trains with: the run's (``saved``, read from ``source``) with
    ``overrides`` applied, the split sizes as the task's own; and what changed (``{key: {"run": old, "now":
    new}}``, sizes as the task had them). An override outside :data:`ALLOWED` is refused, naming both values."""
    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except OverrideParseException as err:
        raise RetrainSettingError(f"cannot read the override(s) {overrides}: {' '.join(str(err).split())}") from None
    cfg = OmegaConf.create(OmegaConf.to_container(saved))
    sizes = task_sizes(saved, task)
    changed: dict[str, Any] = {}
    for override in parsed:
        key = override.key_or_group
        old = sizes[key.split(".")[1]] if key in TASK_SIZE_KEYS else OmegaConf.select(saved, key, default=_MISSING)
        _check(key, override.input_line, override.type, override.is_sweep_override(), old, source)
        new = override.value()
        if key in TASK_SIZE_KEYS:
            sizes[key.split(".")[1]] = new
        else:
            OmegaConf.update(cfg, key, new, force_add=True)
        if old is _MISSING or old != new:
            changed[key] = {"run": None if old is _MISSING else _plain(old), "now": _plain(new)}
    _check_one_process(cfg, source)
    return with_task_sizes(cfg, task, sizes), changed


def task_sizes(cfg: DictConfig, task: str) -> dict[str, int | None]:
    """``task``'s split sizes under ``cfg`` (its own ``data.task_sizes`` entry, else the run's), by size key."""
    sizes = task_split_sizes(OmegaConf.to_container(cfg.data), task)
    return {"train_size": sizes.train, "val_size": sizes.val, "test_size": sizes.test}


def settings_sizes(settings: dict[str, Any]) -> dict[str, int | None] | None:
    """A version's split sizes from its stage's recorded ``settings`` (:func:`seqadapt.overrides.stage_settings`);
    ``None`` where they are not all there as sizes (a record from before stages had settings)."""
    sizes = {key: settings.get(f"data.{key}", "") for key in SIZE_KEYS}
    plain = all(value is None or isinstance(value, int) and not isinstance(value, bool) for value in sizes.values())
    return sizes if plain else None


def with_task_sizes(cfg: DictConfig, task: str, sizes: dict[str, Any]) -> DictConfig:
    """``cfg`` with ``sizes`` as ``task``'s split sizes: its own entry where they differ from the run's sizes,
    none where they are the same (so a config no retrain changed stays as the run wrote it)."""
    cfg = OmegaConf.create(OmegaConf.to_container(cfg))
    own = cfg.data.get("task_sizes") or {}
    if all(sizes[key] == cfg.data[key] for key in SIZE_KEYS):
        own = {name: value for name, value in own.items() if name != task}
    else:
        own = {**own, task: dict(sizes)}
    if own:
        OmegaConf.update(cfg, TASK_SIZES, own, merge=False, force_add=True)
    elif "task_sizes" in cfg.data:
        del cfg.data["task_sizes"]
    return cfg


def _check(key: str, text: str, kind: OverrideType, sweep: bool, old: Any, source: str) -> None:
    if sweep or kind not in (OverrideType.CHANGE, OverrideType.ADD):
        raise RetrainSettingError(f"'{text}': a retrain takes key=value overrides (one value each, +key=value to add "
                                  "a Trainer argument), not sweeps or deletions")
    if kind_of(key) != "stage" or key.startswith(f"{TASK_SIZES}.") or key in (TASK_SIZES, "data.test_size"):
        value = "has no such key" if old is _MISSING else f"has {key}={_plain(old)!r}"
        raise RetrainSettingError(
            f"'{text}': {key} is not a setting a retrain may change: it shapes the model, the stream or what the run's "
            f"tasks are measured on, which stay the run's ({source} {value}). A retrain may change {ALLOWED}")
    if old is _MISSING and not (kind == OverrideType.ADD and key.startswith("trainer.")):
        raise RetrainSettingError(f"'{text}': {source} has no {key}; only Trainer arguments can be added "
                                  f"(+trainer.<argument>=...). A retrain may change {ALLOWED}")


def _check_one_process(cfg: DictConfig, source: str) -> None:
    """A retrain trains in this one process: Lightning would start DDP's others by re-running the command."""
    trainer = cfg.trainer
    if str(trainer.get("devices", 1)) not in ("1", "[0]") or int(trainer.get("num_nodes", 1)) > 1 or \
            str(trainer.get("strategy", "auto")).startswith("ddp"):
        raise RetrainSettingError(
            f"a retrain trains one task in one process, but the trainer settings ({source} and the overrides) ask for "
            f"devices={trainer.get('devices')}, num_nodes={trainer.get('num_nodes')}, strategy={trainer.get('strategy')}; "
            "add trainer.devices=1 trainer.num_nodes=1 trainer.strategy=auto")


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
