"""``seqadapt``: run a task stream from the Hydra config in ``conf/``."""

from __future__ import annotations

import difflib
import logging
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import RichProgressBar

from seqadapt.adapters import AdapterConfig
from seqadapt.artefacts import RUN_CONFIG
from seqadapt.backbone import BackboneConfig, load_backbone
from seqadapt.data import SplitSizes, build_splits, load_task_stream, read_source
from seqadapt.data.tasks import DEFAULT_TASK_DIR
from seqadapt.distributed import close_process_group, is_rank_zero
from seqadapt.module import OptimConfig, SeqAdaptModule
from seqadapt.strategies import get_strategy
from seqadapt.stream import LoaderConfig, StreamRun
from seqadapt.tracking import WandbConfig, WandbTracker

log = logging.getLogger("seqadapt")
CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "conf")
OmegaConf.register_new_resolver("join", lambda items: "-".join(items), replace=True)


def _container(node: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(node, resolve=True)


def make_tracker(cfg: DictConfig, output_dir: Path) -> WandbTracker | None:
    settings = _container(cfg.logger)
    backend = settings.pop("backend")
    if backend == "none":
        return None
    if backend != "wandb":
        raise ValueError(f"unknown logger backend '{backend}'; choose logger=wandb or logger=none")
    settings["tags"] = tuple(settings.get("tags") or ())
    return WandbTracker(WandbConfig(**settings), output_dir, _container(cfg))


def resume_target(cfg: DictConfig, output_dir: Path) -> tuple[DictConfig, Path]:
    """The config to run and the directory to run in, after ``resume``.

    ``resume=<run dir>`` continues that run with its own saved config.
    ``resume=true`` continues in this run's output directory (fixed with
    ``hydra.run.dir``, or each multirun job's own folder) and starts afresh
    where nothing has been saved yet, so a killed sweep can be rerun as is.
    """
    if not cfg.resume:
        return cfg, output_dir
    target = output_dir if cfg.resume is True else Path(cfg.resume)
    saved = target / RUN_CONFIG
    if saved.is_file():
        log.info("resuming %s with its saved config %s", target, saved)
        return OmegaConf.merge(OmegaConf.load(saved), {"resume": str(target)}), target
    if cfg.resume is True:
        log.info("resume=true: nothing saved in %s yet, starting the stream", target)
        return OmegaConf.merge(cfg, {"resume": None}), target
    raise FileNotFoundError(f"cannot resume {target}: it has no {RUN_CONFIG} (is it a seqadapt run directory?)")


def run(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    """Build everything the config names and run the stream; returns what ``results.json`` holds.

    All task data is read and checked before the first stage, so a bad file
    fails in seconds rather than after hours of training. With ``resume``
    (see :func:`resume_target`) the stream continues after the last finished
    stage of an earlier run.
    """
    cfg, output_dir = resume_target(cfg, output_dir)
    strategy = get_strategy(cfg.strategy.name)
    task_dir = Path(cfg.task_dir) if cfg.task_dir else DEFAULT_TASK_DIR
    specs = load_task_stream(list(cfg.tasks.order), task_dir)
    sizes = SplitSizes(
        train=cfg.data.train_size, val=cfg.data.val_size, test=cfg.data.test_size, seed=cfg.data.split_seed
    )
    tasks = [build_splits(spec, read_source(spec), sizes) for spec in specs]

    backbone = load_backbone(BackboneConfig(**_container(cfg.backbone)))
    module = SeqAdaptModule(
        backbone.model,
        AdapterConfig(**_container(cfg.adapter)),
        strategy=strategy,
        pooling=cfg.pooling,
        head_dropout=cfg.head_dropout,
        optim=OptimConfig(**cfg.optim),
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    writer = is_rank_zero()  # under DDP every process runs this; one writes files and logs to W&B
    if writer and not cfg.resume:
        OmegaConf.save(cfg, output_dir / RUN_CONFIG, resolve=True)
    tracker = make_tracker(cfg, output_dir) if writer else None
    trainer_kwargs = _container(cfg.trainer)
    callbacks = [RichProgressBar()] if trainer_kwargs.get("enable_progress_bar", True) else []

    def make_trainer() -> pl.Trainer:
        logger = tracker.lightning_logger if tracker else False
        return pl.Trainer(default_root_dir=str(output_dir), logger=logger, callbacks=callbacks, **trainer_kwargs)

    stream = StreamRun(
        module,
        tasks,
        backbone.tokenizer,
        make_trainer=make_trainer,
        output_dir=output_dir,
        loaders=LoaderConfig(
            max_length=cfg.data.max_length, batch_size=cfg.data.batch_size, eval_batch_size=cfg.data.eval_batch_size
        ),
        seed=cfg.seed,
        guard_mode=cfg.guard.mode,
        full_check_every=cfg.guard.get("full_check_every", 1),
        selectors=list(cfg.selection.selectors),
        reference_accuracy=_container(cfg.reference_accuracy) if cfg.reference_accuracy else None,
        tracker=tracker,
        backbone_name=backbone.name,
        resume=bool(cfg.resume),
        run_info={"run_name": cfg.run_name, "config": _container(cfg)},
    )
    results = stream.run()
    close_process_group()  # DDP: every rank finished the stream
    return results


def check_launch(cfg: DictConfig, mode: RunMode) -> None:
    """Refuse DDP inside a local multirun: Lightning starts each extra DDP process by re-running the
    command line, which under ``-m`` would re-run the whole sweep. Where SLURM or torchrun start the
    processes themselves (``hydra/launcher=submitit_slurm``), nothing is re-run and it is fine."""
    trainer = cfg.trainer
    processes = str(trainer.get("devices", 1)) not in ("1", "[0]") or int(trainer.get("num_nodes", 1)) > 1
    external = any(name in os.environ for name in ("SLURM_NTASKS", "TORCHELASTIC_RUN_ID"))
    if mode == RunMode.MULTIRUN and str(trainer.get("strategy", "auto")).startswith("ddp") and processes and not external:
        raise ValueError(
            "trainer.strategy=ddp with several devices or nodes cannot run inside a local -m multirun: Lightning "
            "starts each extra process by re-running the command, which would re-run the whole sweep. Run each "
            "DDP job as its own seqadapt call, or sweep with hydra/launcher=submitit_slurm, where SLURM starts "
            "the processes (hydra.launcher.tasks_per_node = trainer.devices)."
        )


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> None:
    # The frozen backbone is in eval mode on purpose; Lightning warns about that at every stage.
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
    hydra_cfg = HydraConfig.get()
    check_launch(cfg, hydra_cfg.mode)
    run(cfg, Path(hydra_cfg.runtime.output_dir))


def unknown_override_keys(overrides: list[str]) -> list[str]:
    """Messages for overrides whose top-level key is neither a config group nor a key of ``train.yaml``.

    Hydra answers a mistyped group (``stratgy=adapter``) with "not in struct"
    and a hint to append it with ``+``; naming the groups and their choices
    is what the user actually needs.
    """
    root = Path(CONFIG_DIR)
    groups = {path.name: sorted(p.stem for p in path.glob("*.yaml")) for path in root.iterdir() if path.is_dir()}
    known = set(groups) | set(yaml.safe_load((root / "train.yaml").read_text())) | {"hydra"}
    messages = []
    for override in overrides:
        if override.startswith(("-", "+", "~")) or "=" not in override:
            continue
        key = re.split(r"[./]", override.split("=", 1)[0], maxsplit=1)[0]
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            choices = "; ".join(f"{group}: {', '.join(options)}" for group, options in sorted(groups.items()))
            messages.append(f"unknown config group or key '{key}' in '{override}'.{hint} Config groups: {choices}")
    return messages


def cli() -> None:
    """The ``seqadapt`` command: checks override keys, then hands over to Hydra."""
    messages = unknown_override_keys(sys.argv[1:])
    if messages:
        sys.exit("seqadapt: error: " + "\n".join(messages))
    main()


if __name__ == "__main__":
    cli()
