"""``seqadapt``: run a task stream from the Hydra config in ``conf/``."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import RichProgressBar

from seqadapt.adapters import AdapterConfig
from seqadapt.backbone import BackboneConfig, load_backbone
from seqadapt.data import SplitSizes, build_splits, load_task_stream, read_source
from seqadapt.data.tasks import DEFAULT_TASK_DIR
from seqadapt.module import OptimConfig, SeqAdaptModule
from seqadapt.strategies import get_strategy
from seqadapt.stream import LoaderConfig, StreamRun
from seqadapt.tracking import WandbConfig, WandbTracker

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


def run(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    """Build everything the config names and run the stream; returns what ``results.json`` holds.

    All task data is read and checked before the first stage, so a bad file
    fails in seconds rather than after hours of training.
    """
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
    tracker = make_tracker(cfg, output_dir)
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
        reference_accuracy=_container(cfg.reference_accuracy) if cfg.reference_accuracy else None,
        tracker=tracker,
        run_info={"backbone": backbone.name, "run_name": cfg.run_name, "config": _container(cfg)},
    )
    return stream.run()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> None:
    # The frozen backbone is in eval mode on purpose; Lightning warns about that at every stage.
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
    run(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
