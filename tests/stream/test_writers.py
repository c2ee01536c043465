"""The standard writers: a picture that cannot be drawn never costs a stage its results or its artefact."""

import json

from seqadapt.artefacts import has_artefact
from seqadapt.model import SeqAdaptModule
from seqadapt.stream import writers
from tests.stream.test_run import ORDER, stream


def test_a_failing_plot_is_logged_and_the_stage_still_saves_its_results_and_artefact(
    toy_task_dir, tokenizer, tmp_path, monkeypatch, caplog
):
    def no_disk_for_pictures(record, output_dir):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writers, "write_run_plots", no_disk_for_pictures)
    record = stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path, order=ORDER[:2], selectors=[]).run()
    assert record.finished and all(has_artefact(tmp_path, task) for task in ORDER[:2])
    assert json.loads((tmp_path / "results.json").read_text())["completed_stages"] == 2
    assert "could not draw the plots of stage 2" in caplog.text and not list(tmp_path.glob("*.png"))


def test_a_finetune_first_stage_reads_as_a_changed_backbone_not_a_failed_check(toy_task_dir, tokenizer, tmp_path, caplog):
    caplog.set_level("INFO", logger="seqadapt")
    stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path, strategy="finetune", guard_mode="report",
           order=ORDER[:1], selectors=[]).run()
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stage 1/1")]
    assert "backbone changed (nothing earlier to check)" in line and "FAILED" not in line and "recorded" not in line
