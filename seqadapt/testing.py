"""Preservation checks for users' own test files: ``assert_preserved(run_dir)`` in any pytest or unittest test.

It runs the check ``seqadapt-verify`` runs (:func:`seqadapt.preservation.check_run`) and raises an
``AssertionError`` naming every task that is not preserved and why, so a team's existing test job proves its
shipped model still does what it did when each task was learned::

    from seqadapt.testing import assert_preserved

    def test_shipped_model_is_preserved():
        assert_preserved("models/current")
"""

from __future__ import annotations

from pathlib import Path

from seqadapt.comparison import Tolerance
from seqadapt.preservation import RunCheck, check_run


def assert_preserved(
    run_dir: str | Path, tasks: list[str] | None = None, tolerance: Tolerance = Tolerance(), *,
    device: str = "auto", compare: str = "auto",
) -> RunCheck:
    """Check ``run_dir``'s tasks (all, or ``tasks``) and return the verdicts; an ``AssertionError`` with each
    failing task's explanation if any is not preserved. ``tolerance``, ``device`` and ``compare`` are
    ``seqadapt-verify``'s ``--tolerance``/``--min-agreement``/``--score-tolerance``, ``--device`` and
    ``--compare``; a folder that cannot be checked raises what :func:`~seqadapt.preservation.check_run` raises."""
    checked = check_run(Path(run_dir), tasks, tolerance, device=device, compare=compare)
    if not checked.passed:
        raise AssertionError(checked.failure_report())
    return checked
