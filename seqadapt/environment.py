"""What a run's exact output hashes depend on besides its weights: the device, the torch build, its threads.

The same weights give bit-identical outputs only on the same kind of device
with the same torch and the same number of CPU threads (a matrix product
splits its sums differently per thread count). Runs record these; resume and
predict compare them, so a difference is reported as what it is and never as
forgetting.
"""

from __future__ import annotations

from typing import Any

import torch

COMPARED = ("device", "torch", "torch_threads")


def current_environment(device: str, precision: str | None = None) -> dict[str, Any]:
    """This process's environment for outputs computed on ``device`` (``precision``: the training precision)."""
    environment = {"device": device, "torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    return environment if precision is None else {**environment, "precision": precision}


def environment_differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``key: now X, recorded Y`` for each compared key that differs (keys a record lacks are not compared)."""
    return [
        f"{key}: {current.get(key)} here, {recorded[key]} when recorded"
        for key in COMPARED if key in recorded and recorded[key] != current.get(key)
    ]
