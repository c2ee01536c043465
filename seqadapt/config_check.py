"""The whole config checked before any work: every wrong value named with its key, what is allowed, and a fix.

Hydra parses ``data.train_size=abc`` as a string and ``data.train_size=-5``
as a number that pandas-style slicing would quietly misread; both must stop
the run in its first second, not after a stage or as a bare ``TypeError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from seqadapt.adapters import adapter_config
from seqadapt.backbone import Backbone, max_positions
from seqadapt.families import model_family
from seqadapt.heads import POOLINGS
from seqadapt.kinds import kind_of
from seqadapt.strategies import STRATEGIES

if TYPE_CHECKING:
    from seqadapt.data.tasks import TaskSpec


class ConfigError(ValueError):
    """One or more config values are out of range; the message lists each key, its value and the fix."""


def _whole(low: int, optional: bool = False) -> tuple[Callable[[Any], bool], str]:
    ok = lambda v: (v is None and optional) or (isinstance(v, int) and not isinstance(v, bool) and v >= low)  # noqa: E731
    return ok, f"a whole number >= {low}" + (" or null (all of them)" if optional else "")


def _real(low: float, high: float, high_open: bool = False) -> tuple[Callable[[Any], bool], str]:
    def ok(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and low <= v and (v < high if high_open else v <= high)

    return ok, f"a number in [{low}, {high}{')' if high_open else ']'}"


def _one_of(*choices: Any) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v in choices), "one of " + ", ".join(map(str, choices))


def _or_absent(rule: tuple[Callable[[Any], bool], str]) -> tuple[Callable[[Any], bool], str]:
    """``rule``, or no value at all: a key that run configs written before it existed lack (its default applies)."""
    ok, allowed = rule
    return (lambda v: v is None or ok(v)), allowed


RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": _whole(0),
    "data.train_size": _whole(1, optional=True),
    "data.val_size": _whole(0, optional=True),
    "data.test_size": _whole(1, optional=True),
    "data.split_seed": _whole(0),
    "data.max_length": _whole(8),  # room for the special tokens and a few words
    "data.batch_size": _whole(1),
    "data.eval_batch_size": _whole(1),
    "head_dropout": _real(0.0, 1.0, high_open=True),
    "pooling": _one_of("auto", *POOLINGS),
    "optim.learning_rate": _real(1e-12, 10.0),
    "optim.weight_decay": _real(0.0, 10.0),
    "optim.warmup_ratio": _real(0.0, 1.0),
    "guard.mode": _one_of("strict", "report"),
    "guard.full_check_every": _whole(1, optional=True),
    "guard.rotating": _or_absent(_whole(0)),
    "trainer.max_epochs": _whole(1),
    "data.drop_leaked": ((lambda v: v is None or isinstance(v, bool)), "true or false"),
    "selection.shrinkage": _or_absent(_real(0.0, 1.0)),
    "selection.ridge": _or_absent(_real(1e-12, 1e6)),
    "selection.projection_dim": _or_absent(_whole(0)),
    "selection.projection_seed": _or_absent(_whole(0)),
    "strategy.top_k": _or_absent(_whole(1)),  # finetune_top_k: the top layers that train
}


def check_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` listing every key in :data:`RULES` whose value is not allowed."""
    problems = []
    for key, (ok, allowed) in RULES.items():
        value = OmegaConf.select(cfg, key, default=None)
        if not ok(value):
            problems.append(f"  {key}={value!r}: expected {allowed}")
    order = OmegaConf.select(cfg, "tasks.order", default=None)
    if not order or not all(isinstance(name, str) for name in order):
        problems.append(f"  tasks.order={order!r}: expected a list of task names, e.g. tasks.order=[trec,sms_spam]")
    problems += import_problems(cfg, order or [])
    adapter = OmegaConf.select(cfg, "adapter", default=None)
    try:
        adapter_config(OmegaConf.to_container(adapter, resolve=True) if adapter is not None else {})
    except (TypeError, ValueError) as err:
        problems.append(f"  adapter: {err}")
    if problems:
        raise ConfigError(
            "the config has values seqadapt cannot run with:\n" + "\n".join(problems)
            + "\nFix them on the command line (key=value) or in your config files; `seqadapt --cfg job` prints "
            "the composed config."
        )


def import_problems(cfg: DictConfig, order: Sequence[str]) -> list[str]:
    """What is wrong with ``tasks.imports`` ({task: folder}): a task the stream does not learn, a folder that is
    not one, or a strategy whose tasks do not each have their own adapter and head."""
    imports = OmegaConf.select(cfg, "tasks.imports", default=None) or {}
    if not isinstance(imports, Mapping) or not all(isinstance(v, str) for v in imports.values()):
        return [f"  tasks.imports={imports!r}: expected {{task: folder}}, e.g. +tasks.imports.my_task=exports/my_task"]
    problems = [f"  tasks.imports.{name}: '{name}' is not in tasks.order {list(order)}; add it there (an imported "
                "task is a stage of the stream)" for name in imports if name not in order]
    problems += [f"  tasks.imports.{name}={folder!r}: no such folder (an absolute path, or one relative to where "
                 "seqadapt runs)" for name, folder in imports.items() if not Path(folder).is_dir()]
    name = OmegaConf.select(cfg, "strategy.name", default="adapter")
    strategy = STRATEGIES.get(name)  # an unknown name is refused where the strategy is built
    if imports and strategy is not None and (strategy.adapters != "per_task" or strategy.continual or strategy.joint):
        problems.append(f"  tasks.imports: strategy={name} does not give each task its own adapter and head to import "
                        "into; use strategy=adapter")
    return problems


def check_max_length(max_length: int, backbone: Backbone, specs: Sequence[TaskSpec]) -> None:
    """Raise :class:`ConfigError` if ``data.max_length`` (plus what a task's rows take after their input, e.g. a
    decoder's generated answer) needs more positions than the loaded backbone has (:func:`max_positions`).
    Checked as soon as the backbone loads, before any stage trains: past its positions a model fails in the
    middle of a stage, and a finished stage would pin the length in its manifest."""
    limit = max_positions(backbone.model)
    if limit is None:
        return
    architecture = model_family(backbone.model).architecture

    def after_input(spec: TaskSpec) -> int:
        return kind_of(spec).positions_after_input(spec, architecture)

    spec = max(specs, key=after_input)  # the task whose rows run longest
    extra = after_input(spec)
    if max_length + extra <= limit:
        return
    after = (f" plus max_target_length {extra} of task '{spec.name}' (generated after the prompt, in the same "
             f"sequence)" if extra else "")
    fix = f"set data.max_length={limit - extra} or lower" + (
        f", or lower max_target_length in tasks/{spec.name}.yaml" if extra else "")
    raise ConfigError(
        f"data.max_length={max_length}{after} needs {max_length + extra} positions, but backbone "
        f"'{backbone.name}' ({backbone.model.config.model_type}) has {limit}; {fix}"
    )
