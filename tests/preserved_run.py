"""A finished two-task run (colors, animals) for the preservation tests: seqadapt-verify, JUnit, the pytest plugin.

It is trained once per test session, however many modules use it (:func:`finished_run` caches it by the
session's temporary folder), and each test that changes files gets its own copy (:func:`run_copy`).
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest
import yaml

from seqadapt.cli.train import run
from tests.cli.test_train import FAST, compose_train
from tests.conftest import write_toy_task

TASKS = ("colors", "animals")


@functools.cache
def _trained(base: Path) -> Path:
    root = base / "preserved_run"
    (root / "tasks").mkdir(parents=True)
    for name in TASKS:
        write_toy_task(root / "tasks", name)
    run(compose_train([*FAST, f"task_dir={root / 'tasks'}", f"tasks.order=[{','.join(TASKS)}]"]), root / "run")
    return root / "run"


@pytest.fixture
def finished_run(tmp_path_factory) -> Path:
    """The shared finished run, read only."""
    return _trained(tmp_path_factory.getbasetemp())


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    """A copy of the run with its own copy of the task folder, which its saved config now names."""
    root = Path(shutil.copytree(finished_run.parent, tmp_path / "copy"))
    config = yaml.safe_load((root / "run" / "run_config.yaml").read_text())
    config["task_dir"] = str(root / "tasks")
    (root / "run" / "run_config.yaml").write_text(yaml.safe_dump(config))
    return root / "run"
