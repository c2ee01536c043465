"""The default guard on a longer stream (conf/train.yaml: full_check_every=null, rotating=1): each stage checks
every earlier task's tensors, hashes the backbone and re-evaluates one earlier task in rotation; the last stage
re-evaluates all. A change to an earlier task must be caught at the very stage after it, though that task is
not the one re-evaluated there."""

import csv
import random
import re

import pytest
import yaml

from seqadapt.model import SeqAdaptModule
from seqadapt.stream import StreamCallback
from tests.conftest import FILLER
from tests.stream.test_run import stream

# scores: stage 1 learns colors, 2 animals, 3 size (a regression head: it has buffers), 4 weather (last).
# Rotation (tests/stream/test_plan.py, by hand): stage 2 re-evaluates colors, stage 3 colors, stage 4 animals
# as its own check and then the rest (the end of the stream).
LONG = ["colors", "animals", "size", "weather"]


def write_regression_task(task_dir, name="size", n=160):
    """A toy regression task: the score is how many 'big' words the sentence holds."""
    rng = random.Random(name)
    for split, count in (("train", n), ("test", n // 2)):
        with open(task_dir / f"{name}_{split}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["sentence", "score"])
            for _ in range(count):
                big = rng.randrange(4)
                writer.writerow([" ".join(rng.sample(FILLER, 5) + ["huge"] * big), big / 3])
    definition = {"name": name, "type": "regression", "text_field": "sentence", "label_field": "score",
                  "source": {"kind": "local_files", "format": "csv",
                             "files": {"train": f"{name}_train.csv", "test": f"{name}_test.csv"}}}
    (task_dir / f"{name}.yaml").write_text(yaml.safe_dump(definition), encoding="utf-8")


class Tamper(StreamCallback):
    """Writes to what task ``size`` (stage 3) computes with, after it was learned and before stage 4 trains:
    by ``.data``, which leaves PyTorch's version counters as they were."""

    def __init__(self, what: str) -> None:
        self.what = what

    def on_stage_start(self, run, stage) -> None:
        if stage.number != 4:
            return
        module = run.module
        target = {
            "adapter": lambda: next(module.adapters.task_parameters("size")),
            "head buffer": lambda: module.heads["size"].mean,
            "selection statistic": lambda: module.selection["size"].centroids,
            "backbone": lambda: module.backbone.embeddings.word_embeddings.weight,
        }[self.what]()
        target.data.add_(0.25)


def long_stream(task_dir, tokenizer, out, **kwargs):
    write_regression_task(task_dir)
    return stream(SeqAdaptModule, task_dir, tokenizer, out, order=LONG, full_check_every=None, rotating=1,
                  selectors=[], **kwargs)


def test_the_rotating_guard_re_evaluates_in_turn_and_ends_with_a_full_check(toy_task_dir, tokenizer, tmp_path):
    record = long_stream(toy_task_dir, tokenizer, tmp_path / "run").run().to_dict()
    guards = [stage["guard"] for stage in record["stages"]]
    assert [g["kind"] for g in guards] == ["full", "rotating", "rotating", "full"]
    assert [g["re_evaluated"] for g in guards] == [[], ["colors"], ["colors"], []]
    assert all(g["passed"] for g in guards) and guards[3]["checked"] == LONG[:3]
    third = record["stages"][2]
    assert [e["task"] for e in third["evaluations"]] == ["colors", "size"] and list(third["carried"]) == ["animals"]
    assert [e["task"] for e in record["stages"][3]["evaluations"]] == LONG
    assert record["stages"][3]["end_check_seconds"] > 0 == record["stages"][2]["end_check_seconds"]
    assert record["metrics"]["bwt"] == 0.0 and record["guard"] == {"mode": "strict", "full_check_every": None,
                                                                 "rotating": 1}


# Each write is to task `size` (or the backbone) before stage 4, whose own rotating check re-evaluates `animals`
# only: the tensor check (by value) or the backbone's hash must name it there, before the end-of-stream check.
@pytest.mark.parametrize(("what", "own_check"), [
    ("adapter", r"task 'size': \d+ of its own tensor\(s\) changed"),
    ("head buffer", r"task 'size': 1 of its own tensor\(s\) changed, e.g. \['heads.size.mean'\]"),
    ("selection statistic", r"task 'size': 1 of its own tensor\(s\) changed, e.g. \['selection.tasks.size.centroids'\]"),
    ("backbone", r"backbone weights changed: sha256"),
])
def test_a_write_to_a_task_outside_the_rotation_is_caught_by_the_stage_s_own_check(what, own_check, toy_task_dir,
                                                                                   tokenizer, tmp_path, monkeypatch):
    run = long_stream(toy_task_dir, tokenizer, tmp_path / "run", guard_mode="report", callbacks=[Tamper(what)])
    seen = []
    original = run.verifier._check
    monkeypatch.setattr(run.verifier, "_check", lambda stage, kind, learned: seen.append(
        (stage.number, kind, result := original(stage, kind, learned))) or result)
    run.run()
    number, kind, (evaluations, carried, verdict) = seen[-1]
    assert (number, kind, verdict.re_evaluated) == (4, "rotating", ["animals"]) and "size" in carried
    assert re.search(own_check, "\n".join(verdict.violations)), verdict.violations
    final = run.record.stages[-1].guard
    assert not final.passed and final.kind == "full" and re.search(own_check, "\n".join(final.violations))


def test_no_stage_but_the_last_re_evaluates_more_than_rotating_tasks(toy_task_dir, tokenizer, tmp_path):
    run = long_stream(toy_task_dir, tokenizer, tmp_path / "run")
    evaluated = []
    original = run.verifier.evaluate
    run.verifier.evaluate = lambda tasks: evaluated.append([t.spec.name for t in tasks]) or original(tasks)
    run.run()
    assert evaluated == [[], ["colors"], ["colors"], ["animals"], ["colors", "size"]]  # stage 4: own, then the end
