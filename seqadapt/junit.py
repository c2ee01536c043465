"""A run's preservation verdicts as JUnit XML, the report format CI dashboards read (GitHub, GitLab, Jenkins).

One ``<testcase name="test_preserved[<task>]">`` per task, named as the pytest plugin names its tests. A task
that changed or whose artefact was refused is a ``<failure>``; one whose test data changed is an ``<error>``
(the check could not be made as intended); the message is the explanation ``seqadapt-verify`` prints. The
file is written atomically (:func:`seqadapt.io.atomic_write`): a dashboard never reads half of it.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from seqadapt.comparison import TaskCheck
from seqadapt.io import atomic_write
from seqadapt.preservation import RunCheck

SUITE = "seqadapt-verify"
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")  # no XML 1.0 document may hold these


def testcase_name(task: str) -> str:
    return f"test_preserved[{task}]"


def _text(value: str) -> str:
    return NOT_XML.sub("\ufffd", value)


def junit_xml(checked: RunCheck) -> bytes:
    """``checked`` as a JUnit XML document (one suite, one testcase per task)."""
    failures = sum(check.outcome in ("changed", "refused") for check in checked.tasks)
    errors = sum(check.outcome == "data changed" for check in checked.tasks)
    counts = {"tests": str(len(checked.tasks)), "failures": str(failures), "errors": str(errors), "skipped": "0",
              "time": f"{checked.seconds:.3f}"}
    root = ElementTree.Element("testsuites", {"name": SUITE, **counts})
    suite = ElementTree.SubElement(root, "testsuite", {
        "name": _text(f"{SUITE} {checked.run_dir}"), **counts,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime()),
    })
    properties = ElementTree.SubElement(suite, "properties")
    for key, value in {"run_dir": str(checked.run_dir), **checked.environment}.items():
        ElementTree.SubElement(properties, "property", {"name": key, "value": _text(str(value))})
    for check in checked.tasks:
        _testcase(suite, check)
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _testcase(suite: ElementTree.Element, check: TaskCheck) -> None:
    case = ElementTree.SubElement(suite, "testcase", {
        "classname": SUITE, "name": testcase_name(check.task), "time": f"{check.seconds:.3f}"})
    if not check.passed:
        tag = "error" if check.outcome == "data changed" else "failure"
        problem = ElementTree.SubElement(case, tag, {"message": _text(check.explanation), "type": check.outcome})
        problem.text = _text(check.explanation)
    ElementTree.SubElement(case, "system-out").text = _text(check.explanation)


def write_junit(path: Path, checked: RunCheck) -> None:
    """Write :func:`junit_xml` of ``checked`` to ``path`` atomically."""
    atomic_write(Path(path), junit_xml(checked))
