"""Lightning DDP through the config: two CPU processes (gloo) run a stream; rank 0 alone verifies and writes."""

import json
import subprocess
import sys

from seqadapt.distributed import is_rank_zero, share_from_rank_zero
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
    assert [(s["guard"]["kind"], s["guard"]["passed"]) for s in stages] == [("full", True), ("tensors", True), ("full", True)]
    assert [s["train_processes"] for s in stages] == [2, 2, 2]
