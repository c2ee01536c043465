"""The LightningModule: a shared backbone, per-task heads, and the adapters a strategy asks for."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel
from transformers import PreTrainedModel, get_linear_schedule_with_warmup

from seqadapt.adapters import AdapterConfig, TaskAdapters, shared_state
from seqadapt.backbone import freeze
from seqadapt.data.tasks import TaskSpec
from seqadapt.heads import ClassificationHead, Pooling, pool
from seqadapt.prototypes import TaskPrototypes
from seqadapt.strategies import SHARED_ADAPTER, STRATEGIES, Strategy


@dataclass(frozen=True)
class OptimConfig:
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    warmup_ratio: float = 0.06


@dataclass(frozen=True)
class ParameterBudget:
    """What one task owns on top of what all tasks share."""

    adapter_params: int
    head_params: int
    layer_norm_params: int
    total_params: int
    bytes: int
    percent_of_backbone: float


class SeqAdaptModule(pl.LightningModule):
    """Trains the active task(s) over a shared backbone.

    With the default ``adapter`` strategy, ``add_task`` creates the task's
    adapters in every layer and its head, and ``set_active_task`` routes the
    forward pass through that task and makes its parameters, and only those,
    trainable. A frozen backbone stays in eval mode even when Lightning calls
    ``train()``, so its dropout never switches on. Other strategies (see
    :mod:`seqadapt.strategies`) share one adapter or train the backbone itself.
    """

    def __init__(
        self,
        backbone: PreTrainedModel,
        adapter_config: AdapterConfig,
        *,
        strategy: Strategy = STRATEGIES["adapter"],
        pooling: Pooling = "mean",
        head_dropout: float = 0.1,
        optim: OptimConfig = OptimConfig(),
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.strategy = strategy
        self.adapters = TaskAdapters(backbone, adapter_config) if strategy.adapters != "none" else None
        freeze(backbone)
        self.heads = nn.ModuleDict()
        self.prototypes = nn.ModuleDict()  # per task: class centroids for task-ID-free inference (seqadapt.selection)
        self.specs: dict[str, TaskSpec] = {}
        self.pooling = pooling
        self.head_dropout = head_dropout
        self.optim = optim
        self._active: list[str] = []
        self._task_keys: dict[str, list[str]] = {}  # a task's tensor names never change once it is added
        self.strict_loading = False  # checkpoints hold no frozen backbone weights (see on_save_checkpoint)
        self._backbone_params = sum(p.numel() for p in backbone.parameters())

    # ----------------------------------------------------------------- tasks
    @property
    def active_task(self) -> str | None:
        """The single task being trained or evaluated (``None`` if none or several)."""
        return self._active[0] if len(self._active) == 1 else None

    @property
    def tasks(self) -> list[str]:
        return list(self.specs)

    def adapter_of(self, task: str) -> str | None:
        """The adapter a task runs through: its own, the shared one, or none."""
        return {"per_task": task, "shared": SHARED_ADAPTER, "none": None}[self.strategy.adapters]

    def add_task(self, spec: TaskSpec) -> None:
        """A head for ``spec`` plus, per strategy, fresh adapters in every layer; other tasks are untouched."""
        if spec.name in self.specs:
            raise ValueError(f"task '{spec.name}' was already added; task names must be unique in a stream")
        adapter = self.adapter_of(spec.name)
        if adapter is not None and adapter not in self.adapters.tasks:
            self.adapters.add_task(adapter)
        if not self.strategy.train_backbone:
            self.backbone.eval()  # new adapters live inside the backbone: keep the whole tree in eval mode
        ref = next(self.backbone.parameters())
        self.heads[spec.name] = ClassificationHead(
            self.backbone.config.hidden_size, spec.num_labels, self.pooling, self.head_dropout
        ).to(device=ref.device, dtype=ref.dtype)
        self.prototypes[spec.name] = TaskPrototypes(self.backbone.config.hidden_size, spec.num_labels).to(ref.device)
        self.specs[spec.name] = spec

    def set_active_task(self, name: str | None) -> None:
        """Route through ``name`` (``None``: bare backbone) and make only what it trains trainable."""
        self.set_active_tasks([] if name is None else [name])

    def set_active_tasks(self, names: list[str]) -> None:
        """Train several tasks at once (joint training); they must share their adapter, if any."""
        self._require_known(names)
        routes = {self.adapter_of(name) for name in names}
        if len(routes) > 1:
            raise ValueError(f"tasks {names} use different adapters and cannot be active together")
        trainable = {id(p) for name in names for p in self.trainable_parameters(name)}
        for param in self.parameters():
            param.requires_grad_(id(param) in trainable)
        self._active = list(names)
        if self.adapters is not None:
            self.adapters.router.active = routes.pop() if routes else None

    def _require_known(self, names: list[str]) -> None:
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
    def unrouted(self) -> Iterator[None]:
        """Temporarily run the bare backbone: no task's adapters, whatever is active or routed."""
        router = self.adapters.router if self.adapters is not None else None
        if router is None:
            yield
            return
        previous = router.active, router.rows
        router.active, router.rows = None, None
        try:
            yield
        finally:
            router.active, router.rows = previous

    @contextmanager
    def routed_to(self, name: str) -> Iterator[None]:
        """Temporarily run ``name``'s adapter and head without changing which parameters train."""
        if name not in self.specs:
            raise KeyError(f"unknown task '{name}'; this model has tasks {self.tasks}")
        previous = self._active
        self._active = [name]
        router = self.adapters.router if self.adapters is not None else None
        previous_route = router.active if router else None
        if router:
            router.active = self.adapter_of(name)
        try:
            yield
        finally:
            self._active = previous
            if router:
                router.active = previous_route

    def task_parameters(self, name: str) -> Iterator[nn.Parameter]:
        """Every parameter owned by task ``name`` alone: its own adapters and LayerNorm copies, and its head."""
        if self.strategy.adapters == "per_task":
            yield from self.adapters.task_parameters(name)
        yield from self.heads[name].parameters()

    def trainable_parameters(self, name: str) -> Iterator[nn.Parameter]:
        """What training task ``name`` updates: its own parameters plus, per strategy, shared ones."""
        yield from self.task_parameters(name)
        if self.strategy.adapters == "shared":
            yield from self.adapters.task_parameters(SHARED_ADAPTER)
        if self.strategy.train_backbone:
            yield from (p for p in self.backbone.parameters() if p.is_floating_point())

    def task_tensors(self, name: str) -> Iterator[torch.Tensor]:
        """Everything task ``name`` owns: its parameters and its class prototypes (buffers nothing trains)."""
        yield from self.task_parameters(name)
        yield from self.prototypes[name].buffers()

    def task_state(self, name: str) -> dict[str, torch.Tensor]:
        """Task ``name``'s own tensors, keyed by their names in this module: what an artefact stores."""
        return self.tasks_state([name])[name]

    def tasks_state(self, names: list[str]) -> dict[str, dict[str, torch.Tensor]]:
        """:meth:`task_state` of several tasks; each task's tensor names are looked up once and remembered."""
        unnamed = [name for name in names if name not in self._task_keys]
        if unnamed:
            keys = {id(t): key for key, t in [*self.named_parameters(), *self.named_buffers()]}
            for name in unnamed:
                self._task_keys[name] = [keys[id(t)] for t in self.task_tensors(name)]
        return {
            name: dict(zip(self._task_keys[name], (t.detach() for t in self.task_tensors(name)), strict=True))
            for name in names
        }

    def load_task_state(self, name: str, tensors: dict[str, torch.Tensor]) -> None:
        """Copy saved tensors into task ``name``; names and shapes must match exactly."""
        own = self.task_state(name)
        missing, unexpected = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
        wrong = sorted(k for k in set(own) & set(tensors) if own[k].shape != tensors[k].shape)
        if missing or unexpected or wrong:
            raise ValueError(
                f"saved tensors do not fit task '{name}' as configured: missing {missing[:3]}, "
                f"unexpected {unexpected[:3]}, wrong shape {wrong[:3]}. Use the adapter config the artefact was saved with."
            )
        with torch.no_grad():
            for key, target in own.items():
                target.copy_(tensors[key])

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Lightning checkpoints keep only what training changes, never the frozen backbone."""
        if not self.strategy.train_backbone:
            frozen = {f"backbone.{key}" for key in shared_state(self.backbone)}
            frozen |= {key.replace(".base_layer.", ".") for key in frozen}
            checkpoint["state_dict"] = {
                key: value for key, value in checkpoint["state_dict"].items()
                if key.replace(".base_layer.", ".") not in frozen
            }

    def parameter_budget(self, name: str) -> ParameterBudget:
        head = sum(p.numel() for p in self.heads[name].parameters())
        total = sum(p.numel() for p in self.task_parameters(name))
        norms = 0
        if self.strategy.adapters == "per_task":
            norms = sum(p.numel() for norm in self.adapters.norms for p in norm.norms[name].parameters())
        element = next(self.heads[name].parameters()).element_size()
        return ParameterBudget(
            adapter_params=total - head - norms,
            head_params=head,
            layer_norm_params=norms,
            total_params=total,
            bytes=total * element,
            percent_of_backbone=100.0 * total / self._backbone_params,
        )

    def setup(self, stage: str) -> None:
        """Under DDP, synchronise only what trains.

        DDP otherwise broadcasts every parameter and buffer from rank 0 in
        place when a fit starts (and buffers at every step): 22.7M frozen
        backbone weights moved for nothing, and writes to earlier tasks'
        tensors that the guard's tensor check rightly reports. Frozen tensors
        are identical on every rank by construction: the same loaded weights,
        and each stage seeded alike before its task is created.
        """
        if self.trainer.world_size > 1:
            for param in self.parameters():
                if param.requires_grad and hasattr(param, "_ddp_ignored"):
                    del param._ddp_ignored  # trained again (a shared adapter, a fine-tuned backbone)
            frozen = [name for name, param in self.named_parameters() if not param.requires_grad]
            DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
                self, frozen + [name for name, _ in self.named_buffers()]
            )

    # --------------------------------------------------------------- forward
    def train(self, mode: bool = True) -> SeqAdaptModule:
        super().train(mode)
        if not self.strategy.train_backbone:
            self.backbone.eval()
        return self

    def encode(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Token states of the backbone under the current routing."""
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        return self.backbone(**inputs).last_hidden_state

    def backbone_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Pooled features of the bare backbone (no adapters): what task prototypes are made of."""
        with self.unrouted():
            return pool(self.encode(input_ids, attention_mask, token_type_ids), attention_mask, self.pooling)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits of the active task."""
        task = self.active_task
        if task is None:
            raise RuntimeError("no single active task: call set_active_task(name) before the forward pass")
        return self.heads[task](self.encode(input_ids, attention_mask, token_type_ids), attention_mask)

    def mixed_logits(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        tasks: list[str],
        token_type_ids: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Logits of a batch whose rows belong to different tasks, in one pass over the shared backbone.

        Row i runs through the adapters of ``tasks[i]`` in every layer and then
        its head; tasks differ in label count, so the result is one tensor per
        row. A single-task batch takes the ordinary routed forward pass.
        """
        if len(tasks) != len(input_ids):
            raise ValueError(f"{len(tasks)} task names for a batch of {len(input_ids)} rows; give one per row")
        self._require_known(tasks)
        if len(set(tasks)) == 1:
            with self.routed_to(tasks[0]):
                return list(self(input_ids, attention_mask, token_type_ids))
        rows = {task: [i for i, t in enumerate(tasks) if t == task] for task in dict.fromkeys(tasks)}
        router = self.adapters.router if self.adapters is not None else None
        if router is not None:
            by_adapter: dict[str, list[int]] = {}
            for task, index in rows.items():
                by_adapter.setdefault(self.adapter_of(task), []).extend(index)
            router.rows = {name: torch.tensor(index, device=input_ids.device) for name, index in by_adapter.items()}
        try:
            hidden = self.encode(input_ids, attention_mask, token_type_ids)
        finally:
            if router is not None:
                router.rows = None
        logits: list[torch.Tensor] = [hidden.new_empty(0)] * len(tasks)
        for task, index in rows.items():
            for i, row in zip(index, self.heads[task](hidden[index], attention_mask[index])):
                logits[i] = row
        return logits

    def _step(self, batch: dict[str, torch.Tensor], split: str) -> torch.Tensor:
        if "task_index" in batch:
            return self._joint_step(batch, split)
        labels = batch["labels"]
        logits = self(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
        loss = F.cross_entropy(logits, labels)
        self._log(split, self.active_task, loss, (logits.argmax(dim=-1) == labels).float().mean(), len(labels))
        return loss

    def _joint_step(self, batch: dict[str, torch.Tensor], split: str) -> torch.Tensor:
        """A batch mixing tasks: one backbone pass, each example through its own task's head."""
        mask = batch["attention_mask"]
        hidden = self.encode(batch["input_ids"], mask, batch.get("token_type_ids"))
        total = hidden.new_zeros(())
        for index in batch["task_index"].unique().tolist():
            task = self._active[index]
            rows = batch["task_index"] == index
            logits = self.heads[task](hidden[rows], mask[rows])
            labels = batch["labels"][rows]
            loss = F.cross_entropy(logits, labels, reduction="sum")
            total = total + loss
            accuracy = (logits.argmax(dim=-1) == labels).float().mean()
            self._log(split, task, loss / len(labels), accuracy, len(labels))
        return total / len(batch["labels"])

    def _log(self, split: str, task: str, loss: torch.Tensor, accuracy: torch.Tensor, size: int) -> None:
        on_step = split == "train"
        # averaged over DDP processes, each of which sees a share of the batches; a no-op on one process
        self.log(f"{split}/{task}/loss", loss, prog_bar=on_step, on_step=on_step, on_epoch=True, batch_size=size,
                 sync_dist=True)
        self.log(f"{split}/{task}/acc", accuracy, prog_bar=True, on_step=False, on_epoch=True, batch_size=size,
                 sync_dist=True)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def make_optimizer(self) -> torch.optim.AdamW:
        """AdamW over exactly what the active task(s) train: no optimizer state for frozen weights."""
        if not self._active:
            raise RuntimeError("no active task to optimise: call set_active_task(name) before fitting")
        params = {id(p): p for name in self._active for p in self.trainable_parameters(name)}
        return torch.optim.AdamW(params.values(), lr=self.optim.learning_rate, weight_decay=self.optim.weight_decay)

    def configure_optimizers(self):
        optimizer = self.make_optimizer()
        total = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = get_linear_schedule_with_warmup(optimizer, int(self.optim.warmup_ratio * total), total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
