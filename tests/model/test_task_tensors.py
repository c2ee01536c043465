"""A task's own tensors: saved names are looked up along their own paths and must land on exactly the tensors
the task owns."""

import pytest
import torch

from seqadapt.data import TaskSpec
from tests.model.test_module import make_module

SPEC = {"labels": ("a", "b"), "source": {}}


def test_saved_tensors_load_into_their_task_and_nowhere_else():
    module = make_module()
    for name in ("first", "second"):
        module.add_task(TaskSpec(name=name, **SPEC))
    saved = {key: torch.full_like(t, 0.5) for key, t in module.tensors.of("first").items()}
    module.tensors.load("first", saved)
    assert all(torch.equal(t, saved[key]) for key, t in module.tensors.of("first").items())
    assert not any(torch.equal(t, torch.full_like(t, 0.5)) for t in module.tensors.of("second").values() if t.numel())
    as_second = {key.replace(".first.", ".second."): t for key, t in saved.items()}  # names of another task
    with pytest.raises(ValueError, match="do not fit task 'first'.*missing"):
        module.tensors.load("first", as_second)
    with pytest.raises(ValueError, match="do not fit task 'first'.*unexpected"):
        module.tensors.load("first", {**saved, "heads.first.extra": torch.zeros(1)})
    key = next(k for k in saved if k.endswith("down.weight"))
    with pytest.raises(ValueError, match="do not fit task 'first'.*wrong shape"):
        module.tensors.load("first", {**saved, key: torch.zeros(1)})

