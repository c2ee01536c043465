"""The LightningModule: a frozen shared backbone, per-task adapters and heads, one active task."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel, get_linear_schedule_with_warmup

from seqadapt.adapters import AdapterConfig, TaskAdapters
from seqadapt.backbone import freeze
from seqadapt.data.tasks import TaskSpec
from seqadapt.heads import ClassificationHead, Pooling


@dataclass(frozen=True)
class OptimConfig:
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    warmup_ratio: float = 0.06


@dataclass(frozen=True)
class ParameterBudget:
    """What one task costs on top of the shared backbone."""

    adapter_params: int
    head_params: int
    layer_norm_params: int
    total_params: int
    bytes: int
    percent_of_backbone: float


class SeqAdaptModule(pl.LightningModule):
    """Trains one task at a time over a frozen backbone.

    ``add_task`` creates the task's adapters in every layer and its head;
    ``set_active_task`` routes the forward pass through that task and makes its
    parameters, and only those, trainable. The backbone stays in eval mode even
    when Lightning calls ``train()``, so its dropout never switches on.
    """

    def __init__(
        self,
        backbone: PreTrainedModel,
        adapter_config: AdapterConfig,
        *,
        pooling: Pooling = "mean",
        head_dropout: float = 0.1,
        optim: OptimConfig = OptimConfig(),
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.adapters = TaskAdapters(backbone, adapter_config)
        freeze(backbone)
        self.heads = nn.ModuleDict()
        self.specs: dict[str, TaskSpec] = {}
        self.pooling = pooling
        self.head_dropout = head_dropout
        self.optim = optim
        self._backbone_params = sum(p.numel() for p in backbone.parameters())

    # ----------------------------------------------------------------- tasks
    @property
    def active_task(self) -> str | None:
        return self.adapters.router.active

    @property
    def tasks(self) -> list[str]:
        return list(self.specs)

    def add_task(self, spec: TaskSpec) -> None:
        """Fresh adapters in every layer plus a head for ``spec``; existing tasks are untouched."""
        if spec.name in self.specs:
            raise ValueError(f"task '{spec.name}' was already added; task names must be unique in a stream")
        self.adapters.add_task(spec.name)
        self.backbone.eval()  # new adapters live inside the backbone: keep the whole tree in eval mode
        ref = next(self.backbone.parameters())
        self.heads[spec.name] = ClassificationHead(
            self.backbone.config.hidden_size, spec.num_labels, self.pooling, self.head_dropout
        ).to(device=ref.device, dtype=ref.dtype)
        self.specs[spec.name] = spec

    def set_active_task(self, name: str | None) -> None:
        """Route through ``name`` (``None``: bare backbone) and make only its parameters trainable."""
        if name is not None and name not in self.specs:
            raise KeyError(f"unknown task '{name}'; this model has tasks {self.tasks}")
        for task in self.specs:
            for param in self.task_parameters(task):
                param.requires_grad_(task == name)
        self.adapters.router.active = name

    @contextmanager
    def routed_to(self, name: str) -> Iterator[None]:
        """Temporarily run ``name``'s adapters without changing which parameters train."""
        if name not in self.specs:
            raise KeyError(f"unknown task '{name}'; this model has tasks {self.tasks}")
        previous, self.adapters.router.active = self.adapters.router.active, name
        try:
            yield
        finally:
            self.adapters.router.active = previous

    def task_parameters(self, name: str) -> Iterator[nn.Parameter]:
        """Every parameter owned by task ``name``: its adapters, LayerNorm copies and head."""
        yield from self.adapters.task_parameters(name)
        yield from self.heads[name].parameters()

    def parameter_budget(self, name: str) -> ParameterBudget:
        head = sum(p.numel() for p in self.heads[name].parameters())
        norms = sum(p.numel() for norm in self.adapters.norms for p in norm.norms[name].parameters())
        adapters = self.adapters.adapter_parameter_count()
        total = sum(p.numel() for p in self.task_parameters(name))
        assert total == adapters + head + norms, "task parameters and budget disagree"
        element = next(self.heads[name].parameters()).element_size()
        return ParameterBudget(
            adapter_params=adapters,
            head_params=head,
            layer_norm_params=norms,
            total_params=total,
            bytes=total * element,
            percent_of_backbone=100.0 * total / self._backbone_params,
        )

    # --------------------------------------------------------------- forward
    def train(self, mode: bool = True) -> SeqAdaptModule:
        super().train(mode)
        self.backbone.eval()
        return self

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits of the active task."""
        task = self.active_task
        if task is None:
            raise RuntimeError("no active task: call set_active_task(name) before the forward pass")
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        hidden = self.backbone(**inputs).last_hidden_state
        return self.heads[task](hidden, attention_mask)

    def _step(self, batch: dict[str, torch.Tensor], split: str) -> torch.Tensor:
        labels = batch["labels"]
        logits = self(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
        loss = F.cross_entropy(logits, labels)
        accuracy = (logits.argmax(dim=-1) == labels).float().mean()
        task = self.active_task
        on_step = split == "train"
        self.log(f"{split}/{task}/loss", loss, prog_bar=on_step, on_step=on_step, on_epoch=True, batch_size=len(labels))
        self.log(f"{split}/{task}/acc", accuracy, prog_bar=True, on_step=False, on_epoch=True, batch_size=len(labels))
        return loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self):
        task = self.active_task
        if task is None:
            raise RuntimeError("no active task to optimise: call set_active_task(name) before fitting")
        optimizer = torch.optim.AdamW(
            self.task_parameters(task), lr=self.optim.learning_rate, weight_decay=self.optim.weight_decay
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = get_linear_schedule_with_warmup(optimizer, int(self.optim.warmup_ratio * total), total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
