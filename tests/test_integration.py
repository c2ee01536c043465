"""The real thing, small: packaged all-MiniLM-L6-v2 and two real bundled tasks."""

from collections import Counter

import pytest
from hydra import compose, initialize_config_dir

from seqadapt.data import SplitSizes, build_splits, load_task_spec, read_source
from seqadapt.cli.train import CONFIG_DIR, run

pytestmark = pytest.mark.integration


def majority_share(task: str, sizes: SplitSizes) -> float:
    spec = load_task_spec(task)
    test = build_splits(spec, read_source(spec), sizes).test
    return max(Counter(test["label"]).values()) / len(test)


def test_minilm_learns_two_real_tasks_without_forgetting(tmp_path):
    overrides = [
        "tasks.order=[trec,reuters_r8]",
        "data.train_size=600",
        "data.val_size=100",
        "data.test_size=300",
        "trainer.max_epochs=2",
        "+trainer.enable_progress_bar=false",
    ]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    results = run(cfg, tmp_path).to_dict()

    sizes = SplitSizes(train=600, val=100, test=300, seed=cfg.data.split_seed)
    final = results["score_matrix"][-1]
    for j, task in enumerate(["trec", "reuters_r8"]):
        majority = majority_share(task, sizes)
        assert final[j] >= majority + 0.2, f"{task}: accuracy {final[j]:.3f} vs majority class {majority:.3f}"
    assert results["metrics"]["bwt"] == 0.0
    assert all(stage["guard"]["passed"] for stage in results["stages"])
