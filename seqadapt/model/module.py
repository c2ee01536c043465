"""The LightningModule: a shared backbone, per-task heads, and the adapters a strategy asks for."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytorch_lightning as pl
import torch
from datasets import Dataset
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase, get_linear_schedule_with_warmup

from seqadapt.adapters import MethodConfig, TaskAdapters, TaskRouter
from seqadapt.backbone import freeze
from seqadapt.data.tasks import TaskSpec
from seqadapt.distributed import ignore_frozen_under_ddp
from seqadapt.families import model_family, num_hidden_states, token_states
from seqadapt.kinds import TaskKind, kind_of
from seqadapt.kinds.base import HeadContext
from seqadapt.model.backbone_scope import backbone_parameters
from seqadapt.model.checkpoint import without_frozen_backbone
from seqadapt.model.steps import batch_loss
from seqadapt.model.task_tensors import TaskTensors
from seqadapt.selection.config import SelectionConfig
from seqadapt.selection.state import SelectionState
from seqadapt.strategies import SHARED_ADAPTER, STRATEGIES, Strategy

if TYPE_CHECKING:
    from seqadapt.continual import ContinualPlugin


@dataclass(frozen=True)
class OptimConfig:
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    warmup_ratio: float = 0.06


class SeqAdaptModule(pl.LightningModule):
    """Trains the active task(s) over a shared backbone.

    With the default ``adapter`` strategy, ``add_task`` creates the task's
    adapters in every layer and its head, and ``set_active_task`` routes the
    forward pass through that task and makes its parameters, and only those,
    trainable. A frozen backbone stays in eval mode even when Lightning calls
    ``train()``, so its dropout never switches on. Other strategies (see
    :mod:`seqadapt.strategies`) share one adapter or train the backbone itself.
    What differs between kinds of task (head, loss, metrics) comes from each
    task's kind (:mod:`seqadapt.kinds`); a task's own tensors are named,
    saved and restored by :attr:`tensors` (:class:`~seqadapt.model.task_tensors.TaskTensors`).
    """

    def __init__(
        self,
        backbone: PreTrainedModel,
        adapter_config: MethodConfig,
        *,
        strategy: Strategy = STRATEGIES["adapter"],
        pooling: str = "auto",
        head_dropout: float = 0.1,
        optim: OptimConfig = OptimConfig(),
        selection: SelectionConfig = SelectionConfig(),
        tokenizer: PreTrainedTokenizerBase | None = None,
        continual: ContinualPlugin | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.strategy = strategy
        self.adapters = TaskAdapters(backbone, adapter_config) if strategy.adapters != "none" else None
        self.router = self.adapters.router if self.adapters is not None else TaskRouter()  # nothing reads a bare one
        freeze(backbone)
        self.heads = nn.ModuleDict()
        self.family = model_family(backbone)  # where adapters go, which states heads read (seqadapt.families)
        hidden, states = backbone.config.hidden_size, num_hidden_states(backbone, self.family)
        self.selection = SelectionState(hidden, states, selection)  # per task: what task-ID-free selectors read
        self.specs: dict[str, TaskSpec] = {}
        self.pooling = self.family.pooling if pooling == "auto" else pooling
        self.head_dropout = head_dropout
        self.optim = optim
        self.tokenizer = tokenizer  # what heads that generate decode with (text-to-text tasks)
        self.continual = continual  # a CL method's loss term / gradient projection / memory (seqadapt.continual)
        self._active: list[str] = []
        self.tensors = TaskTensors(self)
        self.backbone_params = sum(p.numel() for p in backbone.parameters())  # before any task adds its own
        self.strict_loading = False  # checkpoints hold no frozen backbone weights (see on_save_checkpoint)

    # ----------------------------------------------------------------- tasks
    @property
    def active_task(self) -> str | None:
        """The single task being trained or evaluated (``None`` if none or several)."""
        return self._active[0] if len(self._active) == 1 else None

    @property
    def active_tasks(self) -> list[str]:
        """The tasks being trained, in the order a joint batch's ``task_index`` refers to them."""
        return list(self._active)

    @property
    def tasks(self) -> list[str]:
        return list(self.specs)

    def kind(self, task: str) -> TaskKind:
        return kind_of(self.specs[task])

    def add_task(self, spec: TaskSpec, train: Dataset | None = None, *, initialise: bool = True) -> None:
        """A head for ``spec`` plus, per strategy, fresh adapters in every layer; other tasks are untouched.
        ``train`` rows let a head keep target statistics (absent: they come with an artefact's tensors);
        ``initialise=False`` leaves the adapters' values undrawn, for an artefact's tensors to be copied in."""
        if spec.name in self.specs:
            raise ValueError(f"task '{spec.name}' was already added; task names must be unique in a stream")
        adapter = self.strategy.adapter_of(spec.name)
        if adapter is not None and adapter not in self.adapters.tasks:
            self.adapters.add_task(adapter, initialise)  # in eval mode, as the frozen backbone around them
        ref = next(self.backbone.parameters())
        kind = kind_of(spec)
        context = HeadContext(self.backbone.config.hidden_size, self.pooling, self.head_dropout, self.backbone,
                              self.family, self.tokenizer)
        head = kind.make_head(spec, context, train)
        self.heads[spec.name] = head.to(device=ref.device, dtype=ref.dtype)
        self.selection.add_task(spec.name, kind.prototype_classes(spec), ref.device)
        self.specs[spec.name] = spec

    def set_active_task(self, name: str | None) -> None:
        """Route through ``name`` (``None``: bare backbone) and make only what it trains trainable."""
        self.set_active_tasks([] if name is None else [name])

    def set_active_tasks(self, names: list[str]) -> None:
        """Train several tasks at once (joint training); they must share their adapter, if any."""
        self.require_known(names)
        routes = {self.strategy.route_of(name) for name in names}
        if len(routes) > 1:
            raise ValueError(f"tasks {names} use different adapters and cannot be active together")
        trainable = {id(p) for name in names for p in self.trainable_parameters(name)}
        for param in self.parameters():
            param.requires_grad_(id(param) in trainable)
        self._active = list(names)
        self.router.activate(routes.pop() if routes else None)

    def require_known(self, names: list[str]) -> None:
        unknown = sorted(set(names) - set(self.specs))
        if unknown:
            raise KeyError(f"unknown task(s) {unknown}; this model has tasks {self.tasks}")

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """Eval mode (dropout off) for the duration, then back to the mode it had: measuring never changes training."""
        was_training = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(was_training)

    @contextmanager
    def routed_to(self, name: str) -> Iterator[None]:
        """Temporarily run ``name``'s adapter and head without changing which parameters train."""
        self.require_known([name])
        previous, self._active = self._active, [name]
        try:
            with self.router.route(self.strategy.route_of(name)):
                yield
        finally:
            self._active = previous

    def task_parameters(self, name: str) -> Iterator[nn.Parameter]:
        """Every parameter owned by task ``name`` alone: its own adapters and LayerNorm copies, and its head."""
        if self.strategy.adapters in ("per_task", "summed"):
            yield from self.adapters.task_parameters(name)
        yield from self.heads[name].parameters()

    def trainable_parameters(self, name: str) -> Iterator[nn.Parameter]:
        """What training task ``name`` updates: its own parameters plus, per strategy, shared ones."""
        yield from self.task_parameters(name)
        if self.strategy.adapters == "shared":
            yield from self.adapters.task_parameters(SHARED_ADAPTER)
        yield from backbone_parameters(self.backbone, self.family, self.strategy)

    # --------------------------------------------------------------- forward
    def train(self, mode: bool = True) -> SeqAdaptModule:
        super().train(mode)
        if not self.strategy.train_backbone:
            self.backbone.eval()
        return self

    def encode(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Token states heads read, under the current routing (per family: :func:`seqadapt.families.token_states`)."""
        return token_states(self.backbone, self.family, input_ids, attention_mask, token_type_ids).last

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Outputs of the active task, as its kind runs it (:meth:`~seqadapt.kinds.TaskKind.run`)."""
        task = self.active_task
        if task is None:
            raise RuntimeError("no single active task: call set_active_task(name) before the forward pass")
        return self.kind(task).run(self, task, input_ids, attention_mask, token_type_ids)

    # -------------------------------------------------------------- training
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = batch_loss(self, batch, "train")
        return loss if self.continual is None else self.continual.training_loss(self, batch, loss)

    def on_after_backward(self) -> None:
        if self.continual is not None:  # A-GEM projects the gradient here, before the optimizer steps
            self.continual.after_backward(self)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        batch_loss(self, batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        batch_loss(self, batch, "test")

    def make_optimizer(self) -> torch.optim.AdamW:
        """AdamW over exactly what the active task(s) train: no optimizer state for frozen weights."""
        if not self._active:
            raise RuntimeError("no active task to optimise: call set_active_task(name) before fitting")
        params = {id(p): p for name in self._active for p in self.trainable_parameters(name)}
        return torch.optim.AdamW(params.values(), lr=self.optim.learning_rate, weight_decay=self.optim.weight_decay)

    def configure_optimizers(self) -> dict:
        optimizer = self.make_optimizer()
        total = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = get_linear_schedule_with_warmup(optimizer, int(self.optim.warmup_ratio * total), total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def setup(self, stage: str) -> None:
        if self.trainer.world_size > 1:
            ignore_frozen_under_ddp(self)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Lightning checkpoints keep only what training changes, never the frozen backbone."""
        if not self.strategy.train_backbone:
            checkpoint["state_dict"] = without_frozen_backbone(checkpoint["state_dict"], self.backbone)
