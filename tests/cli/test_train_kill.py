"""A run SIGKILLed while stage 2 trains, then resumed, ends exactly as an uninterrupted run: the same
artefacts byte for byte, the same score matrix and the same output hashes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from seqadapt.artefacts import ARTEFACTS, has_artefact, seal_line
from seqadapt.stream import StreamCallback
from tests.cli.test_train import FAST
from tests.conftest import TOY_TASKS

REPO = Path(__file__).resolve().parents[2]
PAUSE_MARKER = "SEQADAPT_TEST_PAUSE_MARKER"  # where PauseInStage2Training writes; unset, it does nothing
RUN_KEY = "written_by_run"  # the only manifest key allowed to differ: which run wrote it (a new id per run)
PAUSE_AFTER_STEPS = 2  # of stage 2's 3 training steps (48 examples, batches of 16, one epoch)


class PauseInStage2Training(StreamCallback):
    """With ``$SEQADAPT_TEST_PAUSE_MARKER`` set (and no file there yet): after ``PAUSE_AFTER_STEPS`` training
    forward passes of stage 2, writes that file and holds the process inside the training step, so a kill
    lands mid-stage. Otherwise it does nothing, so every run of a test can carry it in the same config."""

    def on_stage_start(self, run, stage) -> None:
        marker = os.environ.get(PAUSE_MARKER)
        if stage.number != 2 or not marker or Path(marker).exists():
            return
        steps = []

        def count(module, args) -> None:
            if torch.is_grad_enabled():  # a training step; evaluation and statistics run without gradients
                steps.append(1)
                if len(steps) == PAUSE_AFTER_STEPS:
                    Path(marker).write_text(f"stage {stage.number}, training step {len(steps)}\n")
                    time.sleep(600)

        run.module.backbone.register_forward_pre_hook(count)


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_resume_after_sigkill_while_stage_2_trains_equals_an_uninterrupted_run(toy_task_dir, tmp_path):
    order = list(TOY_TASKS)
    command = [sys.executable, "-m", "seqadapt.cli.train", *FAST, f"task_dir={toy_task_dir}",
               f"tasks.order=[{','.join(order)}]", "+callbacks.pause._target_=tests.cli.test_train_kill.PauseInStage2Training"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # the callback's module, wherever pytest was started
    env.pop(PAUSE_MARKER, None)
    full, killed, marker = tmp_path / "full", tmp_path / "killed", tmp_path / "stage2-training"
    done = subprocess.run([*command, f"hydra.run.dir={full}"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

    process = subprocess.Popen([*command, f"hydra.run.dir={killed}"], env={**env, PAUSE_MARKER: str(marker)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert marker.read_text() == f"stage 2, training step {PAUSE_AFTER_STEPS}\n"
    finally:
        process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert [has_artefact(killed, task) for task in order] == [True, False, False]  # killed inside stage 2
    assert json.loads((killed / "results.json").read_text())["completed_stages"] == 1

    resumed = subprocess.run([*command, f"resume={killed}", f"hydra.run.dir={tmp_path / 'log'}"], env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resume: restored 1 finished stage(s)" in resumed.stdout + resumed.stderr
    expected, actual = (json.loads((run / "results.json").read_text()) for run in (full, killed))
    assert actual["resumed"]["stages_restored"] == 1 and actual["completed_stages"] == 3
    expected_files, actual_files = files_under(full / ARTEFACTS), files_under(killed / ARTEFACTS)
    assert sorted(actual_files) == sorted(expected_files) == sorted(
        f"{task}/{name}" for task in order for name in ("adapter.safetensors", "manifest.json", "manifest.sha256",
                                                  "reference_outputs.safetensors"))
    for task in order:  # weights and sealed reference outputs byte for byte; each manifest whole but its run key
        for name in (f"{task}/adapter.safetensors", f"{task}/reference_outputs.safetensors"):
            assert actual_files[name] == expected_files[name], name
        manifests = [json.loads(files[f"{task}/manifest.json"]) for files in (expected_files, actual_files)]
        assert [m.pop(RUN_KEY) for m in manifests] == [expected["run_id"], actual["run_id"]]  # resumed: the same run
        assert manifests[0] == manifests[1], task
        for files in (expected_files, actual_files):  # each seal is its own manifest's
            assert files[f"{task}/manifest.sha256"].decode() == seal_line(files[f"{task}/manifest.json"])
    assert actual["score_matrix"] == expected["score_matrix"]
    assert [s["evaluations"] for s in actual["stages"]] == [s["evaluations"] for s in expected["stages"]]  # output hashes
