"""Lightning DDP through the config: two CPU processes (gloo) run a stream; rank 0 alone verifies and writes."""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from seqadapt.distributed import is_rank_zero, share_from_rank_zero
from seqadapt.stream import StreamCallback
from seqadapt.serving import load_stream
from tests.wandb_reader import read_offline_run
from tests.cli.test_train import FAST


def test_rank_zero_is_read_from_the_launchers_environment(monkeypatch):
    for name in ("RANK", "SLURM_PROCID", "NODE_RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert is_rank_zero()  # a plain single process
    monkeypatch.setenv("LOCAL_RANK", "1")  # a child Lightning's launcher started
    assert not is_rank_zero()
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("NODE_RANK", "1")  # the first process of the second node
    assert not is_rank_zero()
    monkeypatch.setenv("SLURM_PROCID", "0")  # SLURM's and torchrun's global ranks win
    assert is_rank_zero()
    monkeypatch.setenv("RANK", "3")
    assert not is_rank_zero()
    assert share_from_rank_zero({"a": 1}) == {"a": 1}  # no process group: the value as is


def test_two_task_stream_on_two_ddp_processes_gives_the_same_guard_verdicts(toy_task_dir, tmp_path):
    command = [sys.executable, "-m", "seqadapt.cli.train", *FAST, f"task_dir={toy_task_dir}",
               "tasks.order=[colors,animals]", "logger=wandb"]
    runs = {}
    for name, extra in (("single", []), ("ddp", ["trainer.strategy=ddp", "trainer.devices=2", "verbose=true"])):
        out = tmp_path / name
        done = subprocess.run([*command, *extra, f"hydra.run.dir={out}"], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        runs[name] = (out, json.loads((out / "results.json").read_text()), done.stderr)

    (_, single, _), (ddp_dir, ddp, ddp_log) = runs["single"], runs["ddp"]
    assert "MEMBER: 2/2" in ddp_log  # Lightning started a second process and both joined one group (verbose shows it)
    assert [s["train_processes"] for s in ddp["stages"]] == [2, 2]
    assert [s["train_processes"] for s in single["stages"]] == [1, 1]
    assert ddp["config"]["trainer"]["strategy"] == "ddp" and ddp["completed_stages"] == 2

    def verdicts(results):
        return [{key: s["guard"][key] for key in ("passed", "checked", "kind", "violations")} for s in results["stages"]]

    assert verdicts(ddp) == verdicts(single) == [
        {"passed": True, "checked": [], "kind": "full", "violations": []},
        {"passed": True, "checked": ["colors"], "kind": "full", "violations": []},
    ]
    assert ddp["metrics"]["bwt"] == 0.0
    # rank 0 alone wrote: one W&B run, finished; one artefact per task, and they load and serve
    (wandb_run,) = (ddp_dir / "wandb").glob("offline-run-*")
    assert read_offline_run(wandb_run)["exit_code"] == 0
    stream = load_stream(ddp_dir)
    assert stream.tasks == ["colors", "animals"]
    assert len(stream.predict(["a red car", "a small puppy"], selector="prototype")) == 2


def test_ddp_leaves_frozen_and_earlier_task_tensors_unwritten_so_tensor_checks_pass(toy_task_dir, tmp_path):
    # DDP would broadcast every tensor from rank 0 in place at each fit; the module tells it to skip frozen ones
    out = tmp_path / "run"
    command = [sys.executable, "-m", "seqadapt.cli.train", *FAST, f"task_dir={toy_task_dir}",
               "tasks.order=[colors,animals,weather]", "trainer.strategy=ddp", "trainer.devices=2",
               "guard.full_check_every=null", f"hydra.run.dir={out}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    stages = json.loads((out / "results.json").read_text())["stages"]
    assert [(s["guard"]["kind"], s["guard"]["passed"]) for s in stages] == [("full", True), ("rotating", True), ("full", True)]
    assert [s["train_processes"] for s in stages] == [2, 2, 2]


class TamperOnRankZero(StreamCallback):
    """Broken on purpose: on global rank 0 only, writes to the first task's adapter weights before stage 2.
    Its last hook on rank 0 takes longer than Lightning's 5 s watch over the other ranks (as finishing a W&B run
    may), then leaves a file: it is cut short if a rank exits before rank 0 is done."""

    def on_stage_start(self, run, stage) -> None:
        if stage.number == 2 and is_rank_zero():
            next(run.module.adapters.task_parameters(run.module.tasks[0])).data.add_(0.5)

    def on_stream_finish(self, run, failed) -> None:
        if is_rank_zero():
            time.sleep(6)
            (run.output_dir / "rank0-finished").write_text(f"failed={failed}\n")


def test_a_guard_failure_on_rank_zero_stops_every_rank_with_its_message(toy_task_dir, tmp_path):
    command = [sys.executable, "-m", "seqadapt.cli.train", *FAST, f"task_dir={toy_task_dir}",
               "tasks.order=[colors,animals,weather]", "trainer.strategy=ddp", "trainer.devices=2",
               "+callbacks.tamper._target_=tests.test_distributed.TamperOnRankZero", f"hydra.run.dir={tmp_path / 'run'}"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}  # the callback's module
    # its own session: the rank Lightning starts is in the same process group, so none can outlive the check
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=300)  # a rank waiting for the others forever never gets here
    finally:
        alive = _group_alive(process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode != 0
    # each rank stops with the guard's own error (rank 1's tensors were never touched: it has rank 0's verdict)
    assert stderr.count("ForgettingError: forgetting guard failed after stage 2 (trained 'animals')") == 2, stderr[-3000:]
    assert re.search(r"task 'colors': (accuracy|test logits) changed", stderr), stderr[-3000:]
    assert not alive  # no rank left behind
    assert (tmp_path / "run" / "rank0-finished").read_text() == "failed=True\n"  # rank 0 finished its hooks
    stages = json.loads((tmp_path / "run" / "results.json").read_text())["stages"]
    assert [s["guard"]["passed"] for s in stages] == [True, False]  # rank 0 wrote the failing stage, then all stopped


def _group_alive(group: int) -> bool:
    """Whether any process of process group ``group`` still runs (zombies of it reaped first)."""
    deadline = time.monotonic() + 10  # ranks exiting after the main process get a moment
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.2)
    return True
