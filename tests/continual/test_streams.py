"""Each continual method runs a whole toy stream in report mode, keeps what it says it keeps, and is refused
where it cannot go (serving)."""

import json

import pytest
from safetensors.torch import load_file

from seqadapt.artefacts import ArtefactError
from seqadapt.serving import load_stream
from tests.continual.streams import method_stream
from tests.stream.test_run import ORDER

METHODS = ["ewc", "lwf", "replay", "agem", "olora"]


@pytest.mark.parametrize("strategy", METHODS)
def test_a_method_runs_a_stream_and_records_what_it_keeps(strategy, toy_task_dir, tokenizer, tmp_path):
    settings = {"rows_per_task": 5} if strategy in ("replay", "agem") else {}
    run = method_stream(toy_task_dir, tokenizer, tmp_path / "run", strategy, order=ORDER[:2], **settings)
    record = run.run()
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["strategy"] == strategy and saved["completed_stages"] == 2
    assert all(value is not None for value in saved["score_matrix"][-1])
    assert saved["guard"]["mode"] == "report"
    ledger = saved["params_per_task"]
    assert set(ledger) == set(record.tasks)
    if strategy in ("replay", "agem"):
        memory = json.loads((tmp_path / "run" / "continual" / "replay_memory.json").read_text())
        assert {task: len(rows) for task, rows in memory["rows"].items()} == {t: 5 for t in record.tasks}
        for task in record.tasks:  # the ledger counts the bytes of each task's stored rows
            stored = len(json.dumps(memory["rows"][task], ensure_ascii=False).encode())
            assert ledger[task]["method_bytes"] == stored > 0
    elif strategy == "ewc":  # one Fisher and one anchor over the backbone, counted once, for the first task
        backbone = sum(p.numel() for p in run.module.backbone.parameters() if p.is_floating_point())
        assert [ledger[t]["method_bytes"] for t in record.tasks] == [2 * 4 * backbone, 0]
    else:
        assert all(ledger[t]["method_bytes"] == 0 for t in record.tasks)
    if strategy == "ewc":  # the Fisher, for a resume: one tensor per shared weight, of its shape
        fisher = load_file(tmp_path / "run" / "continual" / "ewc_fisher.safetensors")
        assert {k: v.shape for k, v in fisher.items()} == {
            k: p.shape for k, p in run.module.backbone.named_parameters() if p.is_floating_point()}
    elif strategy not in ("replay", "agem"):  # a method that keeps nothing beyond the model leaves no folder for it
        assert not (tmp_path / "run" / "continual").exists()


@pytest.mark.parametrize("strategy", ["ewc", "olora"])
def test_a_method_run_is_not_served_and_says_why(strategy, tmp_path):
    (tmp_path / "run_config.yaml").write_text(f"strategy:\n  name: {strategy}\n")
    why = "sums every task's LoRA into every task's outputs" if strategy == "olora" else "changes shared weights"
    with pytest.raises(ArtefactError, match=f"is a strategy={strategy} run: it {why}.* cannot be served"):
        load_stream(tmp_path)
