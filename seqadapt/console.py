"""What a person sees on the console: seqadapt's own lines, one progress line per stage, no third-party noise.

Noise is silenced where it is made: Lightning's INFO chatter (device
availability, tips, "fit stopped") by its loggers' level, W&B's banners by
``WANDB_SILENT``, the progress bars of ``datasets``' maps and of
``transformers``' weight loading by their switches, and two
known warnings of our dependencies by their exact message. Every other warning
still shows; ``verbose=true`` (``seqadapt -v``) restores all of it.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

import datasets
import pytorch_lightning as pl
import transformers
from pytorch_lightning.callbacks import ProgressBar

from seqadapt.io import open_regular
from seqadapt.stream.callbacks import StreamCallback
from seqadapt.stream.plan import Stage

THIRD_PARTY_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning")
KNOWN_WARNINGS = (  # (message regex, category): deprecations inside our dependencies, nothing a user can act on
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning),
    (r"Found \d+ module\(s\) in eval mode", UserWarning),  # the frozen backbone is in eval mode on purpose
)


def configure_console(verbose: bool = False) -> None:
    """Quiet third-party output unless ``verbose``; seqadapt's own log lines are unaffected."""
    if verbose:
        return
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for message, category in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    os.environ.setdefault("WANDB_SILENT", "true")
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()  # "Loading weights" of the backbone


class RunLogHandler(logging.FileHandler):
    """``logging.FileHandler`` for a run folder's ``train.log`` (conf/train.yaml's ``job_logging``, and a resumed
    run's own folder): appends, and refuses a symbolic link there, which a received folder could point at any file
    of yours (:func:`seqadapt.io.open_regular`)."""

    def _open(self):
        handle = open_regular(Path(self.baseFilename), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        return os.fdopen(handle, "a", encoding=self.encoding, errors=self.errors)


class StageProgress(ProgressBar, StreamCallback):
    """One line per stage, redrawn in place on a terminal: ``stage 2/4 sms_spam  epoch 1/2  [#####   ] 40/63``.

    A Lightning progress bar (given to each stage's Trainer) that also hears the
    stream's ``on_stage_start``; it clears its line when the stage's fit ends, so
    the stage's one-line summary takes its place. Off a terminal (CI, files) it
    draws nothing.
    """

    def __init__(self, stream=None) -> None:
        super().__init__()
        self.stream = stream if stream is not None else sys.stderr
        self.label = "training"
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_stage_start(self, run, stage: Stage) -> None:
        self.label = f"stage {stage.number}/{stage.count} {stage.name}"

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int) -> None:
        if not (self._enabled and self.stream.isatty()):
            return
        total = trainer.num_training_batches
        done = batch_idx + 1
        filled = int(20 * done / total) if total else 0
        epoch = f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"
        self.stream.write(f"\r\x1b[K{self.label}  {epoch}  [{'#' * filled}{' ' * (20 - filled)}] {done}/{total}")
        self.stream.flush()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._enabled and self.stream.isatty():
            self.stream.write("\r\x1b[K")
            self.stream.flush()
