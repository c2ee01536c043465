"""The pytest plugin (entry point ``pytest11``): ``pytest --seqadapt-run RUN_DIR`` adds one test per task of
the run, ``test_preserved[<task>]``, which fails with the explanation ``seqadapt-verify`` prints.

The run is checked once (:func:`seqadapt.preservation.check_run`), when the first of its tests runs, for the
tasks whose tests were selected (``-k`` works as usual); each test then reports its own task. Nothing is
imported beyond pytest until ``--seqadapt-run`` is given, so the plugin costs other test sessions nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from seqadapt.preservation import RunCheck


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("seqadapt", "seqadapt: tests that a run's tasks are preserved")
    group.addoption("--seqadapt-run", action="append", default=[], metavar="RUN_DIR",
                    help="add a test_preserved[<task>] test per task of this run folder (may be repeated)")
    group.addoption("--seqadapt-tasks", metavar="A,B", help="only these tasks of each run")
    group.addoption("--seqadapt-tolerance", type=float, default=None, metavar="ABS",
                    help="largest absolute output difference in another environment (seqadapt-verify --tolerance)")
    group.addoption("--seqadapt-compare", choices=("auto", "exact", "tolerance"), default="auto",
                    help="as seqadapt-verify --compare")
    group.addoption("--seqadapt-device", default="auto", help="as seqadapt-verify --device")


class RunVerification:
    """One run's check, made once for the tasks of its selected tests and shared by them."""

    def __init__(self, run_dir: Path, config: pytest.Config) -> None:
        self.run_dir, self.config = run_dir, config
        self._result: RunCheck | Exception | None = None

    def result(self, session: pytest.Session) -> RunCheck:
        if self._result is None:
            self._result = self._check([item.task for item in session.items
                                        if isinstance(item, PreservedItem) and item.verification is self])
        if isinstance(self._result, Exception):
            raise PreservationFailure(f"{self.run_dir} could not be checked: {self._result}")
        return self._result

    def _check(self, tasks: list[str]) -> RunCheck | Exception:
        from seqadapt.comparison import Tolerance
        from seqadapt.lock import RunLockedError
        from seqadapt.preservation import VerifyUsageError, check_run
        from seqadapt.saved_config import SavedConfigError

        option = self.config.getoption
        given = option("seqadapt_tolerance")
        tolerance = Tolerance() if given is None else Tolerance(max_abs_diff=given)
        try:
            return check_run(self.run_dir, tasks, tolerance, device=option("seqadapt_device"),
                             compare=option("seqadapt_compare"))
        except (VerifyUsageError, RunLockedError, SavedConfigError, OSError) as err:
            return err


class PreservationFailure(AssertionError):
    """A task that is not preserved; its message is the whole report."""


class RunCollector(pytest.Collector):
    """A run folder's tests: one :class:`PreservedItem` per task to check."""

    def __init__(self, *, tasks: list[str], verification: RunVerification, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tasks, self.verification = tasks, verification

    def collect(self) -> list[PreservedItem]:
        return [PreservedItem.from_parent(self, name=f"test_preserved[{task}]", task=task,
                                          verification=self.verification) for task in self.tasks]


class PreservedItem(pytest.Item):
    """``test_preserved[<task>]``: passes when the task is preserved."""

    def __init__(self, *, task: str, verification: RunVerification, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task, self.verification = task, verification

    def runtest(self) -> None:
        check = next(c for c in self.verification.result(self.session).tasks if c.task == self.task)
        if not check.passed:
            raise PreservationFailure(check.explanation)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, PreservationFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.verification.run_dir, None, self.name


@pytest.hookimpl(tryfirst=True)  # before -k and -m deselect: they see these tests like any other
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    runs = config.getoption("seqadapt_run")
    if not runs:
        return
    from seqadapt.preservation import VerifyUsageError, tasks_to_check

    given = config.getoption("seqadapt_tasks")
    wanted = [name.strip() for name in given.split(",") if name.strip()] if given else None
    for run_dir in runs:
        try:
            names = tasks_to_check(Path(run_dir), wanted)
        except VerifyUsageError as err:
            raise pytest.UsageError(f"--seqadapt-run: {err}") from None
        collector = RunCollector.from_parent(session, name=run_dir, nodeid=run_dir, tasks=names,
                                             verification=RunVerification(Path(run_dir), config))
        items.extend(session.genitems(collector))  # reported as collected, like tests found in files
