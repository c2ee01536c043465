"""The seqadapt-verify command: one line per task, exit 0/1/2, and --junit."""

import re
import xml.etree.ElementTree as ElementTree
from importlib.metadata import entry_points

import pytest

from seqadapt.cli.verify import main
from tests.preserved_run import TASKS, finished_run, run_copy  # noqa: F401  (fixtures)
from tests.test_preservation import learned, tamper_adapter


def verify(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main([*map(str, args)])
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def test_a_preserved_run_prints_a_pass_line_per_task_and_exits_0(finished_run, capsys, tmp_path):
    code, out, _ = verify(capsys, finished_run, "--junit", tmp_path / "verify.xml")
    lines = out.splitlines()
    assert code == 0 and len(lines) == len(TASKS) + 1
    for line, task in zip(lines, TASKS):
        score = learned(finished_run)[task]
        assert line.startswith(f"PASS  {task}: preserved: accuracy {score:.4f} when learned, {score:.4f} now; [exact] "
                               "outputs identical to those recorded")
    assert lines[-1].startswith(f"seqadapt-verify: {finished_run}: every task preserved (2); evaluated on cpu, torch ")
    suite = ElementTree.parse(tmp_path / "verify.xml").getroot().find("testsuite")
    assert [case.get("name") for case in suite.iter("testcase")] == [f"test_preserved[{task}]" for task in TASKS]
    assert suite.get("failures") == "0" and not list(suite.iter("failure"))


def test_a_changed_task_prints_fail_with_why_exits_1_and_is_a_junit_failure(run_copy, capsys, tmp_path):
    tamper_adapter(run_copy, "colors", by=0.5)
    code, out, _ = verify(capsys, run_copy, "--junit", tmp_path / "verify.xml")
    assert code == 1
    failing = next(line for line in out.splitlines() if line.startswith("FAIL"))
    assert failing.startswith("FAIL  colors: changed: accuracy ") and "[exact] outputs differ from those recorded" in failing
    assert out.splitlines()[-1].startswith(f"seqadapt-verify: {run_copy}: 1 of 2 task(s) not preserved: colors;")
    (failure,) = ElementTree.parse(tmp_path / "verify.xml").getroot().iter("failure")
    assert failure.get("type") == "changed" and failure.get("message") == failing[len("FAIL  "):].rsplit("  (", 1)[0]


def test_only_the_tasks_asked_for_are_checked(finished_run, capsys):
    code, out, _ = verify(capsys, finished_run, "--tasks", "animals")
    assert code == 0 and [line.split(":")[0] for line in out.splitlines()[:-1]] == ["PASS  animals"]


@pytest.mark.parametrize(("args", "message"), [
    (["--tasks", "colors,weather"], r"has no artefact for task\(s\) \['weather'\]; its tasks are \['colors', 'animals'\]"),
    (["--min-agreement", "1.5"], r"argument --min-agreement: must be between 0 and 1, not 1.5"),
    (["--device", "nonsense"], r"cannot evaluate on device 'nonsense' here"),
])
def test_usage_errors_exit_2_naming_the_fix(finished_run, capsys, args, message):
    code, out, err = verify(capsys, finished_run, *args)
    assert code == 2 and not out
    assert re.search(message, err)


def test_the_command_and_the_pytest_plugin_are_installed_entry_points():
    scripts = {entry.name: entry.value for entry in entry_points(group="console_scripts")}
    plugins = {entry.name: entry.value for entry in entry_points(group="pytest11")}
    assert scripts["seqadapt-verify"] == "seqadapt.cli.verify:main" and plugins["seqadapt"] == "seqadapt.pytest_plugin"
