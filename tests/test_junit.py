"""JUnit XML of a run's verdicts: one testcase per task, failures and errors as CI dashboards count them."""

import xml.etree.ElementTree as ElementTree
from pathlib import Path

from seqadapt.comparison import TaskCheck
from seqadapt.junit import junit_xml, write_junit
from seqadapt.preservation import RunCheck

ENVIRONMENT = {"device": "cpu", "torch": "2.13.0", "torch_threads": 2}
CHECKS = [
    TaskCheck("trec", "preserved", "exact", "outputs identical", "accuracy", 0.9, 0.9, 0.0, 1.0, 1.5),
    TaskCheck("sms_spam", "changed", "tolerance", "largest output difference 0.5 > 0.001", "accuracy", 0.98, 0.61,
              0.5, 0.7, 2.0),
    TaskCheck("reuters_r8", "data changed", "none", "its test split's rows are not the ones", "accuracy", 0.9),
    TaskCheck("squad", "refused", "none", "its artefact was refused: \x1b[31mcorrupt\x00 <&>"),
]


def parsed(checks: list[TaskCheck]) -> ElementTree.Element:
    root = ElementTree.fromstring(junit_xml(RunCheck(Path("runs/r"), ENVIRONMENT, checks, 5.25)))
    assert root.tag == "testsuites" and len(root.findall("testsuite")) == 1
    return root.find("testsuite")


def test_each_task_is_a_testcase_and_each_kind_of_verdict_is_counted_as_dashboards_count_it():
    suite = parsed(CHECKS)
    assert {key: suite.get(key) for key in ("tests", "failures", "errors", "skipped", "time")} == {
        "tests": "4", "failures": "2", "errors": "1", "skipped": "0", "time": "5.250"}
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert list(cases) == ["test_preserved[trec]", "test_preserved[sms_spam]", "test_preserved[reuters_r8]",
                           "test_preserved[squad]"]
    assert cases["test_preserved[trec]"].find("failure") is None and cases["test_preserved[trec]"].get("time") == "1.500"
    failure = cases["test_preserved[sms_spam]"].find("failure")
    assert failure.get("type") == "changed" and failure.get("message") == (
        "sms_spam: changed: accuracy 0.9800 when learned, 0.6100 now; [tolerance] largest output difference 0.5 > 0.001")
    error = cases["test_preserved[reuters_r8]"].find("error")
    assert error.get("type") == "data changed" and "not measured now; its test split's rows" in error.get("message")
    assert {p.get("name"): p.get("value") for p in suite.iter("property")} == {"run_dir": "runs/r", "device": "cpu",
                                                                               "torch": "2.13.0", "torch_threads": "2"}


def test_characters_no_xml_document_may_hold_are_replaced_and_markup_is_escaped():
    refused = parsed(CHECKS)[-1].find("failure")  # parsing at all proves the document well formed
    assert refused.get("message") == "squad: refused: its artefact was refused: \ufffd[31mcorrupt\ufffd <&>"


def test_the_file_is_replaced_atomically(tmp_path):
    report = tmp_path / "verify.xml"
    report.write_text("an old report")
    write_junit(report, RunCheck(Path("runs/r"), ENVIRONMENT, CHECKS[:1], 1.0))
    assert ElementTree.parse(report).getroot().get("tests") == "1"
    assert [path.name for path in tmp_path.iterdir()] == ["verify.xml"]  # no temporary file left beside it
