"""Each per-task method in a guarded stream run as users run it (``adapter=lora``...): BWT 0 under the strict
guard, artefacts that record the method and serve the learned scores back, a ledger that counts its parameters,
and ``seqadapt-predict`` refusing a run config whose method settings were edited after the run."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from seqadapt.artefacts import read_manifest, task_artefact_dir
from seqadapt.cli.train import run
from seqadapt.serving import load_stream
from tests.cli.test_predict import refused, served_test_split
from tests.cli.test_train import FAST, compose_train

EDITS = {"lora": ("rank: 4", "rank: 2", "adapter.rank", "2", "4"),
         "parallel": ("scaling: 4.0", "scaling: 2.0", "adapter.scaling", "2.0", "4.0"),
         "ia3": ("- ffn", "- value", "adapter.targets", "('key', 'value', 'value')", "('key', 'value', 'ffn')")}


@pytest.mark.parametrize("method", sorted(EDITS))
def test_a_method_streams_guarded_serves_what_it_learned_and_refuses_edited_settings(toy_task_dir, tmp_path, method, capsys):
    overrides = {"lora": ["adapter.rank=4"], "parallel": ["adapter.bottleneck=8"], "ia3": []}[method]
    cfg = compose_train([*FAST, f"adapter={method}", *overrides, f"task_dir={toy_task_dir}",
                         "tasks.order=[colors,animals]", "selection.selectors=[mahalanobis]"])
    results = run(cfg, tmp_path / "run").to_dict()
    assert results["completed_stages"] == 2 and results["metrics"]["bwt"] == 0.0
    stream = load_stream(tmp_path / "run")
    manifest = read_manifest(task_artefact_dir(tmp_path / "run", "colors"))
    assert manifest["adapter"]["method"] == method
    budget = manifest["budget"]
    own = sum(p.numel() for p in stream.module.adapters.task_parameters("colors"))
    assert budget["adapter_params"] == own > 0 and budget["trainable_params"] == budget["total_params"]
    for task in stream.tasks:
        served_test_split(stream, tmp_path / "run", toy_task_dir, cfg, task)
    line, edited, key, configured, saved = EDITS[method]
    config = tmp_path / "run" / "run_config.yaml"
    assert f"  {line}\n" in config.read_text()
    config.write_text(config.read_text().replace(f"  {line}\n", f"  {edited}\n"))
    capsys.readouterr()  # the run's own progress output
    err = refused([tmp_path / "run", "--task", "colors", "a red apple"], capsys)
    assert f"{key} is {configured} there" in err and f"trained with {saved}" in err
    edited = OmegaConf.load(config)
    edited.adapter = {"method": "bottleneck", "bottleneck": 8}  # a valid config of another method
    OmegaConf.save(edited, config)
    err = refused([tmp_path / "run", "--task", "colors", "a red apple"], capsys)
    assert "adapter.method is 'bottleneck' there" in err and f"trained with '{method}'" in err
