"""What a resume may change in a saved run: a table of config keys and their rules, and the config it continues with.

``resume=<run dir>`` (or ``resume=true``) continues a run with its saved
``run_config.yaml``, and a ``tasks.order`` that extends the saved one grows the
run by new stages (docs/how-to/grow-a-run.md). No setting on the command line
is ignored without a word: each one that differs from the saved value is looked
up in :data:`RULES` (the longest dotted prefix that names it wins):

- ``model``: shapes the model or the tasks already learned (backbone, adapter,
  strategy, pooling, seed, splits, ``max_length``, selection statistics, the
  evaluation batches the guard's output hashes depend on, an earlier task's
  split sizes). The run's artefacts were made with the saved value, so a
  change is refused, naming the key, both values and the way out.
- ``stage``: shapes only how stages train (epochs, optimiser, training batch
  size, the new tasks' split sizes). Applied to the stages this invocation
  trains; every stage records the values it trained with (``settings`` in
  results.json).
- ``report``: what is measured and reported (selectors, FWT references, how
  often the guard re-evaluates). Applied; each stage's record says what ran.
- ``invocation``: how this invocation runs and reports (callbacks, logger,
  verbose, resume): always this command line's, never the saved file's, so a
  received run folder cannot name code to run.

A key the table does not name is refused: seqadapt cannot tell what it would do
to the stages already learned.

Which settings the command line gives: Hydra composes every key, defaults
included, so a key counts as given where an override names it (or a group or
parent of it) or where its composed value differs from what ``conf/`` alone
composes to (a group choice such as ``strategy=finetune`` sets keys outside its
group). Every other key keeps the saved value, also where seqadapt's default
changed since the run was saved.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from omegaconf import DictConfig, OmegaConf

from seqadapt.data.splits import SIZE_KEYS, task_split_sizes

log = logging.getLogger("seqadapt")
Kind = Literal["model", "stage", "report", "invocation"]
ORDER = "tasks.order"
TASK_SIZES = "data.task_sizes"
IMPORTS = "tasks.imports"
PER_TASK = (TASK_SIZES, IMPORTS)  # keys holding one entry per task: a new task's may be given, an earlier task's not
RETRAIN = ("to train a task of the run again (new data, more epochs), retrain it in place with "
           "`seqadapt-task retrain RUN_DIR --task NAME` (docs/how-to/retrain-retire-restore.md)")
NEW_FOLDER = "start a new run in another folder (hydra.run.dir=...)"

RULES: dict[str, Kind] = {
    # what the learned stages are made of
    "backbone": "model", "adapter": "model", "strategy": "model", "pooling": "model", "head_dropout": "model",
    "seed": "model", "task_dir": "model", "run_name": "model", "guard.mode": "model",
    "data.split_seed": "model", "data.drop_leaked": "model", "data.max_length": "model",
    "data.eval_batch_size": "model",  # the guard compares each earlier task's test outputs bit for bit
    "selection.layers": "model", "selection.shrinkage": "model", "selection.ridge": "model",
    "selection.projection_dim": "model", "selection.projection_seed": "model",
    "trainer.accelerator": "model", "trainer.precision": "model",  # the device and numbers outputs are measured in
    # how the stages of this invocation train
    "trainer": "stage", "optim": "stage", "data.batch_size": "stage",
    "data.train_size": "stage", "data.val_size": "stage", "data.test_size": "stage",
    TASK_SIZES: "stage",  # a new task's own sizes; an earlier task's are refused (see kind_of)
    IMPORTS: "stage",  # the folder a new task is imported from; an earlier task's is refused
    # what is measured and reported
    "selection.selectors": "report", "reference_accuracy": "report", "guard.full_check_every": "report",
    "guard.rotating": "report",
    # this invocation's own
    "callbacks": "invocation", "logger": "invocation", "verbose": "invocation", "resume": "invocation",
}
INVOCATION_KEYS = tuple(key for key, kind in RULES.items() if kind == "invocation")
ABSENT = object()  # a key one of the configs does not hold


class OverrideError(ValueError):
    """The command line asks a resume for something the saved run cannot take; the message names each key."""


@dataclass(frozen=True)
class Change:
    """A setting the command line gives with another value than the saved run's (``ABSENT``: not set there)."""

    key: str
    saved: Any
    given: Any
    kind: Kind | None  # None: a key the table does not know

    def describe(self) -> str:
        return f"{self.key}: the run has {shown(self.saved)}, this command line gives {shown(self.given)}"


def shown(value: Any) -> str:
    return "(not set)" if value is ABSENT else repr(value)


def kind_of(key: str, earlier: Sequence[str] = ()) -> Kind | None:
    """The rule of ``key`` (dotted): its longest prefix in :data:`RULES`; ``None`` where none names it. A task's
    own entry of a :data:`PER_TASK` key (``data.task_sizes.<task>``, ``tasks.imports.<task>``) is ``model`` for a
    task among ``earlier`` (learned already)."""
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in RULES:
            if prefix in PER_TASK and (len(parts) < 3 or parts[2] in earlier):
                return "model"
            return RULES[prefix]
    return None


def leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    """Every value of a nested mapping by its dotted key; lists are values, empty mappings hold none."""
    if not isinstance(node, Mapping):
        return {prefix: node}
    found: dict[str, Any] = {}
    for key, value in node.items():
        found.update(leaves(value, f"{prefix}.{key}" if prefix else str(key)))
    return found


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types (``1`` is not ``1.0`` nor ``True``): how a saved and a given value compare."""
    if a is ABSENT or b is ABSENT:
        return a is b
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def override_key(override: str) -> str:
    """The dotted config key an override string names (``+trainer.x=1`` → ``trainer.x``, ``adapter=lora`` →
    ``adapter``, ``hydra/launcher=joblib`` → ``hydra.launcher``)."""
    key = override.lstrip("~+").split("=", 1)[0].split("@", 1)[0]
    return key.replace("/", ".")


def given_keys(
    cfg: dict[str, Any], defaults: dict[str, Any], saved: dict[str, Any], overrides: Sequence[str]
) -> set[str]:
    """The leaf keys (of ``cfg`` or ``saved``) the command line gives: named by an override (or under a named
    group or parent, or a parent of a named key), or composed to another value than ``conf/``'s ``defaults``."""
    named = [override_key(o) for o in overrides]

    def covered(key: str) -> bool:
        return any(key == n or key.startswith(n + ".") or n.startswith(key + ".") for n in named)

    keys = set(cfg) | set(saved)
    return {k for k in keys if covered(k) or not same(cfg.get(k, ABSENT), defaults.get(k, ABSENT))}


def continued_config(
    saved: DictConfig, cfg: DictConfig, defaults: DictConfig, overrides: Sequence[str], target: Path
) -> DictConfig:
    """The config a resume of the run in ``target``, saved as ``saved``, continues with.

    ``cfg`` is this command line's composed config, ``defaults`` what ``conf/``
    composes to without overrides, ``overrides`` the command line's override
    strings. Settings the command line gives are compared with the saved ones
    by :data:`RULES`: ``model`` changes and unknown keys are refused (one
    :class:`OverrideError` naming every one), ``stage`` and ``report`` changes are
    applied and logged, a longer ``tasks.order`` grows the run
    (:func:`grown_order`), and the invocation keys are this command line's.
    """
    plain = {name: leaves(resolved(node)) for name, node in (("saved", saved), ("cfg", cfg), ("defaults", defaults))}
    given = given_keys(plain["cfg"], plain["defaults"], plain["saved"], overrides)
    earlier = saved_order(saved, target)
    order = grown_order(target, earlier, list(cfg.tasks.order)) if ORDER in given else earlier
    changes = [Change(k, plain["saved"].get(k, ABSENT), plain["cfg"].get(k, ABSENT), kind_of(k, earlier))
               for k in sorted(given - {ORDER})
               if kind_of(k) != "invocation" and not same(plain["saved"].get(k, ABSENT), plain["cfg"].get(k, ABSENT))]
    refuse_changes(target, changes, added=order[len(earlier):])
    continued = OmegaConf.create(OmegaConf.to_container(saved))
    for change in sorted(changes, key=lambda c: c.given is not ABSENT):  # removals first: a value may replace a group
        apply(continued, change)
        log.info("resume: %s; applied %s", change.describe(), "to the stages this run trains now (each records its "
                 "settings in results.json)" if change.kind == "stage" else "to what this run measures from now on")
    if any(is_split_size(c.key) for c in changes):
        pin_split_sizes(continued, resolved(saved.data), earlier)
    if order != earlier:
        continued.tasks.order = order
        added = order[len(earlier):]
        stages = f"stage {len(order)}" if len(added) == 1 else f"stages {len(earlier) + 1}-{len(order)}"
        log.info("resume: growing %s from %d to %d tasks: %s as %s", target, len(earlier), len(order),
                 ", ".join(added), stages)
    return with_invocation(continued, cfg, target)


def saved_order(saved: DictConfig, target: Path) -> list[str]:
    """The saved config's ``tasks.order``, or a refusal naming the file where it holds none."""
    order = OmegaConf.to_container(saved).get("tasks", {})
    order = order.get("order") if isinstance(order, dict) else None
    if not isinstance(order, list) or not order or not all(isinstance(name, str) for name in order):
        raise OverrideError(f"{target}: its run_config.yaml has no tasks.order list ({order!r}), so which tasks the "
                            "run learned is unknown; put back the run_config.yaml its run wrote, or "
                            f"{NEW_FOLDER}")
    return order


def resolved(node: Any) -> Any:
    """A config as plain values, without Hydra's own node (present where it was composed with it)."""
    plain = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    return {key: value for key, value in plain.items() if key != "hydra"} if isinstance(plain, dict) else plain


def is_split_size(key: str) -> bool:
    """``data.train_size``, ``data.val_size`` or ``data.test_size``: the sizes every task without its own takes."""
    return key in {f"data.{name}" for name in SIZE_KEYS}


def grown_order(target: Path, earlier: list[str], given: list[str]) -> list[str]:
    """The order a resume continues with: the saved one, or the saved one followed by new tasks (a growth).
    Any other order is refused with the way out."""
    if given == earlier:
        return earlier
    again = [name for name in given[len(earlier):] if name in earlier]
    if given[: len(earlier)] != earlier:
        dropped = [name for name in earlier if name not in given]
        what = f"leaves out its task(s) {dropped}" if dropped else "puts its tasks in another order"
        raise OverrideError(
            f"cannot resume the run in {target}: its tasks.order is {earlier}, and tasks.order={given} {what}. A run "
            f"grows by appending tasks (tasks.order=[{','.join(earlier)},<new tasks>]); a learned task is never "
            f"dropped or moved; {RETRAIN}; for another order, {NEW_FOLDER}"
        )
    if again:
        raise OverrideError(
            f"cannot grow the run in {target}: task(s) {again} are already stage(s) "
            f"{[earlier.index(name) + 1 for name in again]} of it (tasks.order {earlier}); {RETRAIN}"
        )
    return given


def refuse_changes(target: Path, changes: list[Change], added: list[str]) -> None:
    """One :class:`OverrideError` naming every change the run cannot take, each with both values."""
    problems = [f"  {c.describe()} (shapes the model or the tasks it has learned)"
                for c in changes if c.kind == "model"]
    problems += [f"  {c.describe()} (seqadapt does not know what this key does to the learned stages)"
                 for c in changes if c.kind is None]
    sizes = [c for c in changes if is_split_size(c.key)]
    if sizes and not added:
        problems += [f"  {c.describe()} (split sizes apply to tasks added to the run, and tasks.order adds none: "
                     "every task keeps the sizes it was declared with)" for c in sizes]
    if problems:
        raise OverrideError(
            f"cannot resume the run in {target} with this command line:\n" + "\n".join(problems) + "\n"
            "Its learned stages were made with its saved settings. Drop these from the command line to continue "
            f"the run as it is, or {NEW_FOLDER} to train with them. Settings that may change on a resume: "
            "trainer.* (but accelerator and precision), optim.*, data.batch_size, and data.train_size, "
            "data.val_size, data.test_size for the tasks a growth adds (docs/how-to/grow-a-run.md)."
        )


def apply(config: DictConfig, change: Change) -> None:
    """Set (or remove, where the command line leaves it out) one changed setting in ``config``."""
    if change.given is not ABSENT:
        OmegaConf.update(config, change.key, change.given, merge=False, force_add=True)
        return
    *parents, last = change.key.split(".")
    node = OmegaConf.select(config, ".".join(parents)) if parents else config
    if isinstance(node, DictConfig) and last in node:
        del node[last]


def pin_split_sizes(config: DictConfig, saved_data: dict[str, Any], earlier: list[str]) -> None:
    """Keep each earlier task's split sizes (``data.task_sizes.<task>``) where the sizes change for new tasks:
    its test split is what the guard re-evaluates, so it must stay the rows it was learned on."""
    for name in earlier:
        sizes = task_split_sizes(saved_data, name)
        pinned = {"train_size": sizes.train, "val_size": sizes.val, "test_size": sizes.test}
        OmegaConf.update(config, f"{TASK_SIZES}.{name}", pinned, merge=False, force_add=True)


def with_invocation(config: DictConfig, cfg: DictConfig, target: Path) -> DictConfig:
    """``config`` with this invocation's :data:`INVOCATION_KEYS` in place of the saved ones (the saved file's
    callbacks are never built: a received folder could otherwise name any code to run)."""
    dropped = sorted(set(config.get("callbacks") or {}) - set(cfg.get("callbacks") or {}))
    if dropped:
        log.warning("resume: the callbacks %r of the saved config are not rebuilt (resume builds callbacks only from "
                    "the command line); give them again (+callbacks.<name>._target_=...) to run them", dropped)
    for key in INVOCATION_KEYS:
        config[key] = cfg.get(key)
    config.resume = str(target)
    return config


def run_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """A config without the invocation keys: what two configs of one run must agree on to describe it alike."""
    return {key: value for key, value in config.items() if key not in INVOCATION_KEYS}


def stage_settings(config: Mapping[str, Any], tasks: Sequence[str]) -> dict[str, Any]:
    """The ``stage`` settings a stage of ``tasks`` trains with (dotted keys), its tasks' split sizes included: what
    results.json records per stage. A stage of several tasks with different sizes records each task's."""
    settings = {key: value for key, value in leaves(config).items()
                if kind_of(key) == "stage" and not key.startswith(tuple(f"{per}." for per in PER_TASK))}
    for key in SIZE_KEYS:
        values = {name: getattr(task_split_sizes(config.get("data", {}), name), key.removesuffix("_size"))
                  for name in tasks}
        distinct = {json.dumps(value) for value in values.values()}
        settings[f"data.{key}"] = next(iter(values.values())) if len(distinct) == 1 else values
    return settings
