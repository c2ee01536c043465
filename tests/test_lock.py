"""One writer or many readers per run folder: a second writer is refused naming the holder, readers share, a dead
holder's lock is taken over, and the lock file is never opened through a link."""

import errno
import json
import os
import socket
import subprocess
import sys

import pytest

import seqadapt.lock
from seqadapt.cli.train import run
from seqadapt.io import NotARegularFileError
from seqadapt.lock import LOCK_FILE, RunLock, RunLockedError
from tests.cli.test_train import FAST, compose_train

HOLD = ("import sys, time; from seqadapt.lock import RunLock\n"
        "with RunLock(sys.argv[1], shared=sys.argv[2] == 'shared'):\n    print('held', flush=True); time.sleep(60)")
WRITER_HOLDS = r"being written by another seqadapt run \(pid {pid} on .*started"
READERS_HOLD = r"being read by another process \(seqadapt-predict holds a shared lock"


@pytest.fixture
def holder(tmp_path):
    """Start a process that holds ``tmp_path``'s lock (``holder("shared")`` for a reader); killed at the end."""
    processes = []

    def start(kind: str = "exclusive") -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), kind], stdout=subprocess.PIPE, text=True)
        processes.append(process)
        assert process.stdout.readline().strip() == "held"
        return process

    yield start
    for process in processes:
        process.kill()
        process.wait()


def test_a_second_writer_is_refused_naming_the_holder(toy_task_dir, tmp_path, holder):
    writer = holder()
    cfg = compose_train([*FAST, f"task_dir={toy_task_dir}", "tasks.order=[colors]"])
    with pytest.raises(RunLockedError, match=WRITER_HOLDS.format(pid=writer.pid)):
        run(cfg, tmp_path)
    assert not (tmp_path / "results.json").exists()  # refused before any work
    writer.kill()
    writer.wait()
    with RunLock(tmp_path):  # the killed holder's lock is taken over
        pass


def test_the_lock_is_released_when_the_run_ends(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(RunLockedError, match=WRITER_HOLDS.format(pid=os.getpid())):
            with RunLock(tmp_path):
                pass
    with RunLock(tmp_path):
        pass


def test_readers_share_the_folder_and_a_writer_waits_for_them(tmp_path, holder):
    holder("shared")
    with RunLock(tmp_path, shared=True):  # a second reader at the same time
        with pytest.raises(RunLockedError, match=rf"{READERS_HOLD}.*Wait for the readers to finish"):
            with RunLock(tmp_path):
                pass


def test_a_reader_is_refused_while_a_writer_holds_the_folder_naming_it(tmp_path, holder):
    writer = holder()
    refusal = WRITER_HOLDS.format(pid=writer.pid) + ".*Read it when that run has finished"
    with pytest.raises(RunLockedError, match=refusal):
        with RunLock(tmp_path, shared=True):
            pass


def test_a_reader_leaves_the_lock_file_as_it_was(tmp_path):
    lock = tmp_path / LOCK_FILE
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "yesterday"}))  # a killed writer's record
    before = lock.read_bytes()
    with RunLock(tmp_path, shared=True):
        assert lock.read_bytes() == before
    assert lock.read_bytes() == before


def test_a_writer_blocked_by_readers_after_a_killed_writer_does_not_name_the_dead_one(tmp_path, holder):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    record = {"pid": int(dead.stdout), "host": socket.gethostname(), "started": "x"}  # a writer killed on this host
    (tmp_path / LOCK_FILE).write_text(json.dumps(record))
    holder("shared")
    with pytest.raises(RunLockedError, match=READERS_HOLD):
        with RunLock(tmp_path):
            pass


def test_a_reader_of_a_folder_it_cannot_write_reads_without_a_lock(tmp_path, monkeypatch):
    def read_only(path, flags):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(seqadapt.lock, "open_regular", read_only)  # root may write anywhere: simulate the folder
    with RunLock(tmp_path, shared=True):
        pass
    with pytest.raises(PermissionError, match="Permission denied"):  # a writer still needs the file
        with RunLock(tmp_path):
            pass


@pytest.mark.parametrize("shared", [False, True], ids=["writer", "reader"])
def test_a_linked_lock_file_is_refused_and_its_target_left_alone(tmp_path, shared):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / LOCK_FILE).symlink_to(target)
    with pytest.raises(NotARegularFileError, match=rf"{LOCK_FILE} is a symbolic link.*Remove the link"):
        with RunLock(run_dir, shared=shared):
            pass
    assert target.read_text() == "keep me"


def test_a_hard_linked_lock_file_is_refused_for_writing_and_its_other_name_left_alone(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    os.link(target, run_dir / LOCK_FILE)
    with pytest.raises(NotARegularFileError, match=rf"{LOCK_FILE} has 1 other hard link\(s\), which writing it"):
        with RunLock(run_dir):
            pass
    assert target.read_text() == "keep me"
    with RunLock(run_dir, shared=True):  # a reader writes nothing
        pass


def test_a_fifo_as_lock_file_is_refused_rather_than_waited_on(tmp_path):
    os.mkfifo(tmp_path / LOCK_FILE)
    with pytest.raises(NotARegularFileError, match=rf"{LOCK_FILE} is not a regular file"):
        with RunLock(tmp_path, shared=True):
            pass


def test_a_hostile_holder_record_is_read_as_text_only(tmp_path, holder):
    holder()
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": "9" * 500, "host": "\x1b[2Jbox"}))  # written over the holder's
    with pytest.raises(RunLockedError, match=rf"pid {'9' * 80} on \[2Jbox, started \?\)") as refused:
        with RunLock(tmp_path, shared=True):
            pass
    assert "\x1b" not in str(refused.value)
