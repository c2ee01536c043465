"""Every task kind a full citizen of one stream: real offline tasks of each kind, a tiny random backbone."""

import json
import shutil

import pytest

from seqadapt.cli.predict import main as predict
from seqadapt.cli.report import main as report
from seqadapt.cli.train import resume_target, run
from seqadapt.record import RunRecord
from seqadapt.selection import selectors_for
from tests.cli.test_train import compose_train

KINDS = {"trec": "accuracy", "epistemic_reasoning": "accuracy", "lee_similarity": "pearson",
         "wnut16": "entity_f1", "disfl_qa": "f1"}
SMALL = ["backbone=tiny_random", "logger=none", "+trainer.enable_progress_bar=false", "trainer.max_epochs=1",
         "data.train_size=32", "data.val_size=8", "data.test_size=16", "data.max_length=96",
         f"selection.selectors=[{','.join(selectors_for('encoder'))}]", "selection.projection_dim=64", f"tasks.order=[{','.join(KINDS)}]",
         "guard.full_check_every=1"]  # every kind's outputs re-evaluated after every stage, not in rotation


@pytest.fixture(scope="module")
def kinds_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("kinds") / "run"
    return run(compose_train(SMALL), directory), directory


def test_a_stream_of_every_kind_keeps_every_earlier_task_bit_identical(kinds_run):
    record, directory = kinds_run
    assert RunRecord.load(directory / "results.json").to_dict() == record.to_dict()
    assert all(stage.guard.passed and stage.guard.kind == "full" for stage in record.stages)
    assert record.metrics["bwt"] == 0.0 and record.metrics["forgetting"] == 0.0
    final = record.stages[-1]
    assert {e.task: e.metric for e in final.evaluations} == KINDS
    for evaluation in final.evaluations:
        assert evaluation.metrics[evaluation.metric] == evaluation.score
        assert -1.0 <= evaluation.score <= 1.0
    selection = final.task_selection
    assert set(selection["candidates"]) == set(KINDS) and set(selection["selectors"]) == set(selectors_for("encoder"))
    for name, result in selection["selectors"].items():  # every kind is a candidate every selector can score
        assert 0.0 <= result["task_id_accuracy"] <= 1.0 and sum(map(sum, result["confusion"])) == selection["examples"]


def answers(directory, task, *requests, capsys):
    predict([str(directory), "--task", task, *[json.dumps(r) for r in requests]])
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_predict_answers_each_kind_in_its_own_fields(kinds_run, capsys):
    _, directory = kinds_run
    (pair,) = answers(directory, "epistemic_reasoning", {"premise": "A knows B.", "hypothesis": "B."}, capsys=capsys)
    assert pair["label"] in ("entailment", "non-entailment") and set(pair["probabilities"]) == {"entailment", "non-entailment"}
    (score,) = answers(directory, "lee_similarity", {"doc_a": "rain in Sydney", "doc_b": "storms hit Sydney"}, capsys=capsys)
    assert isinstance(score["score"], float)
    tokens = ["John", "lives", "in", "New", "York"]
    (tagged,) = answers(directory, "wnut16", {"tokens": tokens}, capsys=capsys)
    assert len(tagged["tags"]) == len(tokens)
    assert all(tokens[e["start"]:e["end"]] == e["words"] for e in tagged["entities"])
    context = "The river Thames flows through London. " * 12  # longer than max_length: several windows
    (qa,) = answers(directory, "disfl_qa", {"context": context, "question": "What flows through London?"}, capsys=capsys)
    assert qa["answer"] == ("" if qa["start"] is None else context[qa["start"]:qa["end"]])


def test_a_request_without_the_tasks_fields_names_the_line(kinds_run, capsys):
    _, directory = kinds_run
    with pytest.raises(SystemExit):
        predict([str(directory), "--task", "disfl_qa", json.dumps({"question": "Who?"})])
    assert 'input line 1: "context" is missing' in capsys.readouterr().err


def test_the_report_names_each_tasks_metric(kinds_run, capsys):
    _, directory = kinds_run
    report([str(directory)])
    out = capsys.readouterr().out
    assert all(f"{task} ({metric})" in out for task, metric in KINDS.items())


def test_resume_restores_every_kind_from_its_artefacts_bit_for_bit(kinds_run, tmp_path):
    """Stages 4 and 5 lost: resume reinstalls trec, the pair and the regression head (with its target statistics)
    from their artefacts, the guard re-verifies them, and the retrained stages equal the uninterrupted ones."""
    record, directory = kinds_run
    killed = tmp_path / "killed"
    shutil.copytree(directory, killed)
    for task in ("wnut16", "disfl_qa"):
        shutil.rmtree(killed / "artefacts" / task)
    cfg, target = resume_target(compose_train([*SMALL, f"resume={killed}"]), tmp_path / "unused")
    resumed = run(cfg, target)
    assert resumed.resumed["stages_restored"] == 3
    assert resumed.score_matrix == record.score_matrix
    fingerprints = [[(e.task, e.logits_sha256, e.selection_sha256) for e in s.evaluations] for s in resumed.stages]
    assert fingerprints == [[(e.task, e.logits_sha256, e.selection_sha256) for e in s.evaluations] for s in record.stages]


@pytest.mark.parametrize("selector", ["mahalanobis", "ranpac"])
def test_predict_selects_among_the_tasks_that_read_each_input_for_every_kind(kinds_run, selector, capsys):
    _, directory = kinds_run
    requests = [{"tokens": ["Going", "to", "Paris"]}, {"context": "The Thames flows through London.", "question": "What flows?"}]
    for request in requests:
        predict([str(directory), "--select", selector, json.dumps(request)])
        (line,) = [json.loads(out) for out in capsys.readouterr().out.splitlines()]
        assert line["selected_by"] == selector
        assert line["task"] == ("wnut16" if "tokens" in request else "disfl_qa")  # the only task that reads it
