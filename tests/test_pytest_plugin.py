"""The pytest plugin (``pytest --seqadapt-run RUN_DIR``) and ``seqadapt.testing.assert_preserved``."""

import pytest

from seqadapt.testing import assert_preserved
from tests.preserved_run import TASKS, finished_run, run_copy  # noqa: F401  (fixtures)
from tests.test_preservation import tamper_adapter

pytest_plugins = ["pytester"]


def test_a_test_per_task_each_passing_when_preserved(finished_run, pytester):
    result = pytester.runpytest("--seqadapt-run", str(finished_run), "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=len(TASKS))
    result.stdout.fnmatch_lines(["*collected 2 items", f"*{finished_run.name}::test_preserved[[]colors] PASSED*",
                                 f"*{finished_run.name}::test_preserved[[]animals] PASSED*"])


def test_a_changed_task_fails_with_the_explanation_and_k_selects_tests(run_copy, pytester):
    tamper_adapter(run_copy, "animals", by=0.5)
    result = pytester.runpytest("--seqadapt-run", str(run_copy), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*_ test_preserved[[]animals] _*", "animals: changed: accuracy * when learned, * now; "
                                 "[[]exact] outputs differ from those recorded when it was learned, in the same *"])
    assert "Traceback" not in result.stdout.str() and "def runtest" not in result.stdout.str()
    only = pytester.runpytest("--seqadapt-run", str(run_copy), "-k", "colors", "-p", "no:cacheprovider")
    only.assert_outcomes(passed=1, deselected=1)


def test_an_unknown_task_is_a_usage_error_listing_the_run_s_tasks(finished_run, pytester):
    result = pytester.runpytest("--seqadapt-run", str(finished_run), "--seqadapt-tasks", "weather")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (f"ERROR: --seqadapt-run: {finished_run} has no artefact for task(s) ['weather']; its tasks are "
            "['colors', 'animals']") in result.stderr.str()


def test_without_the_option_the_plugin_adds_nothing(pytester):
    pytester.makepyfile("def test_plain():\n    pass\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_assert_preserved_returns_the_verdicts_or_raises_with_each_failing_task(run_copy):
    assert [check.task for check in assert_preserved(run_copy).tasks] == list(TASKS)
    tamper_adapter(run_copy, "colors", by=0.5)
    with pytest.raises(AssertionError, match=rf"^1 of 2 task\(s\) of {run_copy} not preserved:\n  colors: changed: "
                                             r"accuracy .* \[exact\] outputs differ"):
        assert_preserved(run_copy)
    assert_preserved(run_copy, tasks=["animals"])
