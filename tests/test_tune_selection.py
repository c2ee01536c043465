"""The held-out tuning of the selection settings scores rows that are never validation or test rows."""

import json

from bench import tune_selection
from seqadapt.build import build_tasks
from tests.cli.test_train import FAST, compose_train

OVERRIDES = [*FAST, "tasks.order=[colors,animals,weather]", "data.train_size=40", "data.val_size=8", "data.test_size=24"]


def test_held_out_rows_follow_the_training_split_and_never_touch_validation_or_test(toy_task_dir):
    overrides = [*OVERRIDES, f"task_dir={toy_task_dir}"]
    stream = build_tasks(compose_train(overrides))
    enlarged = build_tasks(compose_train([*overrides, "data.train_size=70"]))
    for task, big in zip(stream, enlarged):
        held = tune_selection.held_out_split(big, 40)
        assert held.train.to_dict() == task.train.to_dict()  # the stream's training split exactly
        assert held.test.to_dict() == task.test.to_dict()
        scored = set(held.val["text"])
        assert len(held.val) == 30 and not scored & set(task.val["text"]) - set(task.train["text"])
        assert held.val.to_dict() != task.val.to_dict()


def test_tuning_writes_the_whole_grid(toy_task_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(tune_selection, "OUT", tmp_path)
    monkeypatch.setattr(tune_selection, "PROJECTION_DIMS", (16,))
    tune_selection.main(["--held-out", "30", *OVERRIDES, f"task_dir={toy_task_dir}"])
    (written,) = tmp_path.glob("*.json")
    result = json.loads(written.read_text())
    assert result["held_out"] == 30 and result["val_sizes"] == [30, 30, 30]
    assert [g["layers"] for g in result["layer_sets"]] == [[2], [0, 2], [0, 1, 2], [0, 1, 2]]
    for grid in result["layer_sets"]:
        assert all(0.0 <= acc <= 1.0 for acc in grid["mahalanobis"].values()) and 0.0 <= grid["prototype"] <= 1.0
    assert set(result["ranpac"]) == {"16"} and result["ranpac"]["16"]["bytes_per_task"] > 0
    assert "held-out training-pool rows" in written.with_suffix(".md").read_text()


def test_output_names_stay_short_and_say_what_was_tuned():
    assert tune_selection.output_name([], 2000) == "default"
    assert tune_selection.output_name(["experiment=kinds"], 0) == "kinds-val"
    long = tune_selection.output_name(["tasks=mixed_domains", *OVERRIDES, "task_dir=/a/very/long/path" * 20], 2000)
    assert long.startswith("mixed_domains-") and len(long) == len("mixed_domains-") + 8
