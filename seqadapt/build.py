"""Everything a run is made of, built from the composed Hydra config (``conf/``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from seqadapt.adapters import adapter_config, method_of
from seqadapt.backbone import Backbone, BackboneConfig, load_backbone
from seqadapt.config_check import RULES, ConfigError, check_max_length
from seqadapt.console import StageProgress
from seqadapt.continual import make_plugin
from seqadapt.data import build_splits, load_task_stream, read_source
from seqadapt.data.splits import SIZE_KEYS, TaskSplits, task_split_sizes
from seqadapt.data.tasks import DEFAULT_TASK_DIR
from seqadapt.distributed import is_rank_zero
from seqadapt.model import OptimConfig, SeqAdaptModule
from seqadapt.overrides import stage_settings
from seqadapt.selection import SelectionConfig
from seqadapt.strategies import get_strategy
from seqadapt.stream import LoaderConfig, StreamCallback, StreamRun
from seqadapt.tracking import WandbConfig, WandbTracker


def container(node: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(node, resolve=True)


def build_tasks(cfg: DictConfig) -> list[TaskSplits]:
    """Every task's definition, data and splits: read and checked before the first stage, so a bad file fails
    in seconds rather than after hours of training."""
    task_dir = resolve_task_dir(cfg.task_dir)
    specs = load_task_stream(list(cfg.tasks.order), task_dir)
    data = container(cfg.data)
    check_task_sizes(data, list(cfg.tasks.order))
    return [build_splits(spec, read_source(spec), task_split_sizes(data, spec.name)) for spec in specs]


def check_task_sizes(data: dict[str, Any], order: list[str]) -> None:
    """Refuse a ``data.task_sizes`` entry (a task's own split sizes, kept for each earlier task of a grown run) for a
    task not in ``tasks.order``, of another key, or of a size the ``data.*_size`` rules refuse."""
    problems = []
    for task, sizes in (data.get("task_sizes") or {}).items():
        where = f"data.task_sizes.{task}"
        if task not in order:
            problems.append(f"  {where}: '{task}' is not in tasks.order {order}")
        elif not isinstance(sizes, dict) or set(sizes) - set(SIZE_KEYS):
            problems.append(f"  {where}={sizes!r}: expected a mapping of {', '.join(SIZE_KEYS)}")
        else:
            problems += [f"  {where}.{key}={value!r}: expected {RULES[f'data.{key}'][1]}"
                         for key, value in sizes.items() if not RULES[f"data.{key}"][0](value)]
    if problems:
        raise ConfigError("the config has split sizes seqadapt cannot run with:\n" + "\n".join(problems))


def build_module(cfg: DictConfig, backbone: Backbone) -> SeqAdaptModule:
    strategy = get_strategy(cfg.strategy.name, cfg.strategy.get("top_k"))
    adapter = adapter_config(container(cfg.adapter))
    return SeqAdaptModule(
        backbone.model, adapter, strategy=strategy,
        continual=make_plugin(strategy.continual, container(cfg.strategy), method_of(adapter)),
        pooling=cfg.pooling, head_dropout=cfg.head_dropout, optim=OptimConfig(**cfg.optim),
        selection=SelectionConfig.from_mapping(container(cfg.selection)), tokenizer=backbone.tokenizer,
    )


def build_tracker(cfg: DictConfig, output_dir: Path) -> WandbTracker | None:
    settings = container(cfg.logger)
    backend = settings.pop("backend")
    if backend == "none":
        return None
    if backend != "wandb":
        raise ValueError(f"unknown logger backend '{backend}'; choose logger=wandb or logger=none")
    settings["tags"] = tuple(settings.get("tags") or ())
    return WandbTracker(WandbConfig(**settings), output_dir, container(cfg))


def build_callbacks(cfg: DictConfig) -> list[StreamCallback]:
    """The ``callbacks`` group: each entry instantiated with ``hydra.utils.instantiate`` (``_target_`` + args).

    ``cfg.callbacks`` is always this invocation's own (its command line and
    ``conf/``): a resume takes them from the command line, never from the saved
    run_config.yaml (:func:`seqadapt.cli.train.resume_target`), whose author
    could otherwise name any code to run.
    """
    callbacks = []
    for key, node in (cfg.get("callbacks") or {}).items():
        callback = instantiate(node)
        if not isinstance(callback, StreamCallback):
            raise TypeError(
                f"callbacks.{key}: {node.get('_target_')} made a {type(callback).__name__}, not a "
                "seqadapt.stream.StreamCallback; subclass StreamCallback and override the hooks you need"
            )
        callbacks.append(callback)
    return callbacks


def build_stream(cfg: DictConfig, output_dir: Path) -> StreamRun:
    """The stream the config describes, writing into ``output_dir``; under DDP only rank 0 tracks to W&B.

    Users' callbacks are built first and the data next, so a config or data mistake fails before any model loads.
    """
    callbacks = build_callbacks(cfg)
    tasks = build_tasks(cfg)
    backbone = load_backbone(BackboneConfig(**container(cfg.backbone)))
    check_max_length(cfg.data.max_length, backbone, [task.spec for task in tasks])
    tracker = build_tracker(cfg, output_dir) if is_rank_zero() else None
    trainer_kwargs = container(cfg.trainer)
    progress = [StageProgress()] if trainer_kwargs.get("enable_progress_bar", True) else []

    def make_trainer() -> pl.Trainer:
        logger = tracker.lightning_logger if tracker else False
        return pl.Trainer(default_root_dir=str(output_dir), logger=logger, callbacks=progress, **trainer_kwargs)

    data, config = cfg.data, container(cfg)
    return StreamRun(
        build_module(cfg, backbone), tasks, backbone.tokenizer, make_trainer=make_trainer, output_dir=output_dir,
        loaders=LoaderConfig(max_length=data.max_length, batch_size=data.batch_size, eval_batch_size=data.eval_batch_size),
        seed=cfg.seed, guard_mode=cfg.guard.mode, full_check_every=cfg.guard.get("full_check_every", 1),
        rotating=cfg.guard.get("rotating", 0),
        selectors=list(cfg.selection.selectors),
        reference_accuracy=container(cfg.reference_accuracy) if cfg.reference_accuracy else None,
        backbone_name=backbone.name, resume=bool(cfg.resume),
        run_info={"run_name": cfg.run_name, "config": config},
        stage_settings=lambda names: stage_settings(config, names),
        imports={name: Path(folder) for name, folder in (container(cfg.tasks).get("imports") or {}).items()},
        callbacks=[*progress, *callbacks, *([tracker] if tracker else [])],
    )


def resolve_task_dir(task_dir: str | None) -> Path:
    """The folder of task definitions: the repository's ``tasks/`` by default; a relative path is taken from the
    working directory, else from the repository (so ``task_dir: tasks/hub`` works from anywhere)."""
    if not task_dir:
        return DEFAULT_TASK_DIR
    path = Path(task_dir)
    if path.is_absolute() or path.is_dir():
        return path
    return DEFAULT_TASK_DIR.parent / path
