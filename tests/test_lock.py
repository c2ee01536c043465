"""One writer per run folder: a second is refused naming the holder; a dead holder's lock is taken over."""

import subprocess
import sys

import pytest

from seqadapt.cli.train import run
from seqadapt.lock import RunLock, RunLockedError
from tests.cli.test_train import FAST, compose_train

HOLD = "import sys, time; from seqadapt.lock import RunLock\nwith RunLock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)"


def test_a_second_writer_is_refused_naming_the_holder(toy_task_dir, tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        cfg = compose_train([*FAST, f"task_dir={toy_task_dir}", "tasks.order=[colors]"])
        with pytest.raises(RunLockedError, match=rf"being written by another seqadapt run \(pid {holder.pid} on .*started"):
            run(cfg, tmp_path)
        assert not (tmp_path / "results.json").exists()  # refused before any work
    finally:
        holder.kill()
        holder.wait()
    with RunLock(tmp_path):  # the killed holder's lock is taken over
        pass


def test_the_lock_is_released_when_the_run_ends(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(RunLockedError):
            with RunLock(tmp_path):
                pass
    with RunLock(tmp_path):
        pass
