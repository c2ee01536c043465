"""``seqadapt``: run a task stream from the Hydra config in ``conf/``."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from seqadapt.adapters import AdapterConfig
from seqadapt.backbone import BackboneConfig, load_backbone
from seqadapt.data import SplitSizes, build_splits, load_task_stream, read_source
from seqadapt.data.tasks import DEFAULT_TASK_DIR
from seqadapt.module import OptimConfig, SeqAdaptModule
from seqadapt.stream import LoaderConfig, StreamRun


def run(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    """Build everything the config names and run the stream; returns what ``results.json`` holds.

    All task data is read and checked before the first stage, so a bad file
    fails in seconds rather than after hours of training.
    """
    task_dir = Path(cfg.task_dir) if cfg.task_dir else DEFAULT_TASK_DIR
    specs = load_task_stream(list(cfg.tasks.order), task_dir)
    sizes = SplitSizes(
        train=cfg.data.train_size, val=cfg.data.val_size, test=cfg.data.test_size, seed=cfg.data.split_seed
    )
    tasks = [build_splits(spec, read_source(spec), sizes) for spec in specs]

    backbone = load_backbone(BackboneConfig(**OmegaConf.to_container(cfg.backbone, resolve=True)))
    module = SeqAdaptModule(
        backbone.model,
        AdapterConfig(**OmegaConf.to_container(cfg.adapter, resolve=True)),
        pooling=cfg.pooling,
        head_dropout=cfg.head_dropout,
        optim=OptimConfig(**cfg.optim),
    )
    trainer_kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    stream = StreamRun(
        module,
        tasks,
        backbone.tokenizer,
        make_trainer=lambda: pl.Trainer(default_root_dir=str(output_dir), **trainer_kwargs),
        output_dir=output_dir,
        loaders=LoaderConfig(
            max_length=cfg.data.max_length, batch_size=cfg.data.batch_size, eval_batch_size=cfg.data.eval_batch_size
        ),
        seed=cfg.seed,
        guard_mode=cfg.guard.mode,
        run_info={"backbone": backbone.name, "config": OmegaConf.to_container(cfg, resolve=True)},
    )
    return stream.run()


CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "conf")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> None:
    # The frozen backbone is in eval mode on purpose; Lightning warns about that at every stage.
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
    run(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
