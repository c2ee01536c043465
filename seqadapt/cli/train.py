"""``seqadapt``: run a task stream from the Hydra config in ``conf/``; a thin entry point over :mod:`seqadapt.build`."""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import hydra
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from seqadapt.artefacts import ARTEFACTS, RUN_CONFIG
from seqadapt.build import build_stream
from seqadapt.config_check import check_config
from seqadapt.console import RunLogHandler, configure_console
from seqadapt.distributed import close_process_group, is_rank_zero
from seqadapt.io import atomic_write, own_folder
from seqadapt.lock import RunLock
from seqadapt.overrides import continued_config
from seqadapt.record import RESULTS_FILE, RunRecord
from seqadapt.saved_config import config_text, load_saved_config

log = logging.getLogger("seqadapt")
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")
OmegaConf.register_new_resolver("join", lambda items: "-".join(items), replace=True)
HYDRA_DIR = ".hydra"


def resume_target(cfg: DictConfig, output_dir: Path, overrides: Sequence[str] = ()) -> tuple[DictConfig, Path]:
    """The config to run and the directory to run in, after ``resume``.

    ``resume=<run dir>`` continues that run with its own saved config.
    ``resume=true`` continues in this run's output directory (fixed with
    ``hydra.run.dir``, or each multirun job's own folder). The saved
    ``run_config.yaml`` is read as plain data (:func:`load_saved_config`: no
    interpolation is resolved) and gives the settings the stages were trained
    with. What this command line gives (``overrides``, Hydra's
    ``hydra.overrides.task``, and every key composed to another value than
    ``conf/``'s) is compared with it key by key (:func:`continued_config`):
    settings that shape the learned stages are refused when they differ, those
    that shape only how stages train are applied, and a ``tasks.order`` that
    appends tasks grows the run. ``callbacks``, ``logger`` and ``verbose``
    always come from this command line, so resume builds callbacks only from
    it: a received folder cannot name code for resume to run.

    Where the folder has no ``run_config.yaml`` and nothing a stage saves (no
    results.json, no artefacts: the run was killed before its config was
    written), the stream starts afresh in it with the current config, so a
    killed run or sweep can be rerun as is. A folder with saved stages but no
    ``run_config.yaml`` is refused: what config its stages were trained with
    is unknown.
    """
    if not cfg.resume:
        return cfg, output_dir
    target = output_dir if cfg.resume is True else Path(cfg.resume)
    saved = target / RUN_CONFIG
    if saved.is_file() or saved.is_symlink():
        log.info("resuming %s with its saved config %s", target, saved)
        return continued_config(load_saved_config(saved), cfg, package_defaults(), overrides, target), target
    if cfg.resume is not True and not target.is_dir():
        raise FileNotFoundError(f"cannot resume {target}: it has no {RUN_CONFIG}, there is no such folder "
                                "(resume= takes the directory of a run, e.g. runs/<date>/<time>)")
    left = saved_stages(target)
    if left:
        raise FileNotFoundError(
            f"cannot resume {target}: it has {' and '.join(left)} but no {RUN_CONFIG}, so the config its stages "
            f"were trained with is unknown. Put that run's {RUN_CONFIG} back into {target} (the same settings; "
            "results.json's \"config\" holds them) and resume again, or start a new run in another folder"
        )
    log.info("resume: %s has no %s and no saved stage (killed before its config was written); starting the "
             "stream afresh in it with the current config", target, RUN_CONFIG)
    return OmegaConf.merge(cfg, {"resume": None}), target


def package_defaults() -> DictConfig:
    """``conf/train.yaml`` composed without overrides: what a key is where the command line does not set it."""
    if GlobalHydra.instance().is_initialized():  # inside seqadapt's own @hydra.main
        return compose(config_name="train")
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="train")


def saved_stages(run_dir: Path) -> list[str]:
    """What in ``run_dir`` a finished stage leaves (results.json, a non-empty artefacts/), as paths to name."""
    artefacts = run_dir / ARTEFACTS
    left = [str(path) for path in (run_dir / RESULTS_FILE,) if path.exists() or path.is_symlink()]
    return left + ([str(artefacts)] if artefacts.is_dir() and any(artefacts.iterdir()) else [])


def refuse_overwrite(run_dir: Path) -> None:
    """Never write a new run into a folder that holds another run's stages: the two runs' artefacts would mix, and
    seqadapt-predict would serve both."""
    left = saved_stages(run_dir)
    if left:
        raise FileExistsError(
            f"{run_dir} already holds a run ({' and '.join(left)}); seqadapt does not write over it. Continue that "
            f"run with resume={run_dir} (resume=true for the jobs of a -m sweep), or give this run another folder "
            "(hydra.run.dir=... or hydra.sweep.dir=...)"
        )


def run(
    cfg: DictConfig, output_dir: Path, hydra_files: dict[str, str] | None = None, overrides: Sequence[str] = ()
) -> RunRecord:
    """Build everything the config names and run the stream; returns its record (what ``results.json`` holds).

    All task data is read and checked before the first stage. With ``resume``
    (see :func:`resume_target`; ``overrides`` are the command line's) the stream
    continues after the last finished stage of an earlier run, or grows it by
    the tasks its ``tasks.order`` appends, and this invocation's own output folder only logs.
    Nothing is written into either folder before both are locked and checked
    (:func:`refuse_overwrite`), not even Hydra's ``.hydra/`` files
    (``hydra_files``, see :func:`hydra_record`), so a refused writer changes nothing.
    """
    log_dir = output_dir
    cfg, output_dir = resume_target(cfg, output_dir, overrides)
    check_config(cfg)
    writer = is_rank_zero()  # under DDP every process runs this; one holds the folder and writes files
    holding = _writing(cfg, output_dir, log_dir, hydra_files) if writer else contextlib.nullcontext()
    with holding, _log_also_to(output_dir, log_dir):
        stream = build_stream(cfg, output_dir)
        if writer and not cfg.resume:
            atomic_write(output_dir / RUN_CONFIG, config_text(OmegaConf.to_container(cfg, resolve=True)))
        record = stream.run()
    close_process_group()  # DDP: every rank finished the stream
    return record


@contextlib.contextmanager
def _writing(cfg: DictConfig, run_dir: Path, log_dir: Path, hydra_files: dict[str, str] | None) -> Iterator[None]:
    """The run folder, and a resume's own log folder, locked for the whole block and checked; then Hydra's files."""
    with contextlib.ExitStack() as held:
        held.enter_context(RunLock(run_dir))
        if Path(log_dir).resolve() != Path(run_dir).resolve():  # resume=<dir>: this invocation logs elsewhere
            held.enter_context(RunLock(log_dir))
            refuse_overwrite(log_dir)
        if not cfg.resume:
            refuse_overwrite(run_dir)
        for name, text in (hydra_files or {}).items():
            atomic_write(own_folder(log_dir / HYDRA_DIR) / name, text)
        yield


def hydra_record(cfg: DictConfig) -> dict[str, str]:
    """What Hydra writes into ``.hydra/`` (``hydra.output_subdir``), with its names and content, for :func:`run` to
    write once the run folder is locked: conf/train.yaml turns Hydra's own early writing off."""
    hydra_cfg = HydraConfig.instance().cfg
    return {"config.yaml": OmegaConf.to_yaml(cfg), "hydra.yaml": OmegaConf.to_yaml(hydra_cfg),
            "overrides.yaml": OmegaConf.to_yaml(hydra_cfg.hydra.overrides.task)}


@contextlib.contextmanager
def _log_also_to(run_dir: Path, log_dir: Path) -> Iterator[None]:
    """A resumed run logs into its own folder's train.log too, not only into this invocation's new folder."""
    if Path(run_dir).resolve() == Path(log_dir).resolve():
        yield
        return
    handler = RunLogHandler(Path(run_dir) / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


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
    configure_console(verbose=bool(cfg.verbose))
    hydra_cfg = HydraConfig.get()
    check_launch(cfg, hydra_cfg.mode)
    run(cfg, Path(hydra_cfg.runtime.output_dir), hydra_record(cfg), list(hydra_cfg.overrides.task))


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
    """The ``seqadapt`` command: ``-v`` restores third-party output, override keys are checked, then Hydra runs."""
    sys.argv = [("verbose=true" if arg in ("-v", "--verbose") else arg) for arg in sys.argv]
    messages = unknown_override_keys(sys.argv[1:])
    if messages:
        sys.exit("seqadapt: error: " + "\n".join(messages))
    main()


if __name__ == "__main__":
    cli()
