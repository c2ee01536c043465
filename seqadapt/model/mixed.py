"""Batches whose rows belong to different tasks: one pass over the shared backbone, each row through its own
task's adapters and head."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from seqadapt.model.module import SeqAdaptModule


def mixed_outputs(
    module: SeqAdaptModule, input_ids: torch.Tensor, attention_mask: torch.Tensor, tasks: list[str],
    token_type_ids: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """Outputs of a batch whose rows belong to different tasks, in one pass over the shared backbone.

    Row i runs through the adapters of ``tasks[i]`` in every layer and then
    its head; tasks differ in output shape, so the result is one tensor per
    row. A single-task batch takes the ordinary routed forward pass.
    """
    if len(tasks) != len(input_ids):
        raise ValueError(f"{len(tasks)} task names for a batch of {len(input_ids)} rows; give one per row")
    module.require_known(tasks)
    if len(set(tasks)) == 1:
        with module.routed_to(tasks[0]):
            return list(module(input_ids, attention_mask, token_type_ids))
    rows = {task: [i for i, t in enumerate(tasks) if t == task] for task in dict.fromkeys(tasks)}
    if not all(module.kind(task).shares_passes for task in rows):  # e.g. generation: one routed pass per task
        outputs = [input_ids.new_empty(0)] * len(tasks)
        for task, index in rows.items():
            part = None if token_type_ids is None else token_type_ids[index]
            for i, row in zip(index, mixed_outputs(module, input_ids[index], attention_mask[index], [task] * len(index), part)):
                outputs[i] = row
        return outputs
    by_route: dict[str | None, list[int]] = {}
    for task, index in rows.items():
        by_route.setdefault(module.strategy.route_of(task), []).extend(index)
    if len(by_route) == 1:  # one route for every row (a shared adapter, none, or all summed): one plain pass
        routing = module.router.route(next(iter(by_route)))
    else:
        routing = module.router.route_rows({name: torch.tensor(index, device=input_ids.device)
                                            for name, index in by_route.items()})
    with routing:
        hidden = module.encode(input_ids, attention_mask, token_type_ids)
    outputs: list[torch.Tensor] = [hidden.new_empty(0)] * len(tasks)
    for task, index in rows.items():
        for i, row in zip(index, module.heads[task](hidden[index], attention_mask[index])):
            outputs[i] = row
    return outputs

